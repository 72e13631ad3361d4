/* sluice-relay: SLP fan-out with a GOP cache, bounded subscriber queues and
 * a Redis stream registry. main() only wires the daemon: see relay.h. */
#include <stdio.h>
#include <stdlib.h>

#include "relay.h"
#include "sluice/daemon.h"

int main(int argc, char **argv)
{
    struct relay_config cfg = { 0 };
    int rc;
    struct daemon *d = daemon_new("relay", relay_opts, &cfg, argc, argv, &rc);
    if (d == NULL)
        return rc;
    char *err = NULL;
    struct relay *r = NULL;
    if (relay_config_check(&cfg, &err) == -1)
        fprintf(stderr, "sluice-relay: configuration error: %s\n", err ? err : "?");
    else
        r = relay_new(d, &cfg);
    free(err);
    if (r != NULL) {
        daemon_on_stop(d, relay_stop, r);
        daemon_run(d);
    }
    relay_free(r);
    rc = daemon_free(d, relay_opts, &cfg);
    return r != NULL ? rc : 1;
}
