/* sluice-api: users, login, streams and keys, sessions, and the internal
 * authorization endpoints. main() only wires the daemon: see api.h. */
#include "api.h"
#include "sluice/daemon.h"

int main(int argc, char **argv)
{
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
