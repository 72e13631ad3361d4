/* sluice-api: users, login, streams and keys, sessions, the live list,
 * recordings, the audit log, and the internal endpoints. main() only wires
 * the daemon: see api.h.
 *
 * `sluice-api --routes` prints the routes the API port serves and exits
 * (tests/integration/test_api_openapi.py holds docs/openapi.yaml to them). */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "sluice/daemon.h"

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--routes") == 0)
        return api_print_routes(stdout) == 0 ? 0 : 1;
    struct api_config cfg = { 0 };
    int rc;
    struct daemon *d = daemon_new("api", api_opts, &cfg, argc, argv, &rc);
    if (d == NULL)
        return rc;
    struct api *api = api_new(d, &cfg);
    if (api != NULL) {
        daemon_on_stop(d, api_stop, api);
        daemon_run(d);
    }
    api_free(api);
    rc = daemon_free(d, api_opts, &cfg);
    return api != NULL ? rc : 1;
}
