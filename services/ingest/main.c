/* sluice-ingest: SRT publishers in, SLP to a relay out. main() only wires the
 * daemon: see ingest.h. */
#include "ingest.h"
#include "sluice/daemon.h"

int main(int argc, char **argv)
{
    struct ingest_config cfg = { 0 };
    int rc;
    struct daemon *d = daemon_new("ingest", ingest_opts, &cfg, argc, argv, &rc);
    if (d == NULL)
        return rc;
    struct ingest *ing = ingest_new(d, &cfg);
    if (ing != NULL) {
        daemon_on_stop(d, ingest_stop, ing);
        daemon_run(d);
    }
    ingest_free(ing);
    rc = daemon_free(d, ingest_opts, &cfg);
    return ing != NULL ? rc : 1;
}
