/* The publish lease sluice:lease:publish:<name>, held by slpcat while it
 * publishes, kept by libcommon's leasekeep (on the redis_lease_* scripts):
 *  - taken (or, with takeover, taken over) once Redis is up, within the
 *    connect timeout;
 *  - renewed every third of its TTL; while Redis is down the holder keeps
 *    publishing and takes the lease again when Redis is back (DESIGN.md);
 *  - lost when a renewal finds another holder: publishing must stop;
 *  - released when slpcat ends.
 */
#ifndef SLPCAT_LEASE_H
#define SLPCAT_LEASE_H

#include <stdbool.h>
#include <stdint.h>

struct slpcat;
struct lease;

enum lease_event {
    LEASE_EV_HELD,        /* first taken: the publisher may connect */
    LEASE_EV_REFUSED,     /* someone else holds it (<other>) or Redis unreachable */
    LEASE_EV_LOST,        /* taken by <other> while we published */
    LEASE_EV_RELEASED,    /* lease_release() finished (or gave up) */
};

typedef void (*lease_cb)(enum lease_event ev, const char *other, void *arg);

/* Starts taking the lease on <stream> for <holder> (both copied). NULL after
 * printing why (bad Redis URL, allocation failure). */
struct lease *lease_start(struct slpcat *s, const char *stream, const char *holder,
                          lease_cb cb, void *arg);

/* Releases the lease if held; LEASE_EV_RELEASED follows (at once if there is
 * nothing to release, else after Redis answers or a 2 s bound). */
void lease_release(struct lease *l);

/* After the loop. */
void lease_free(struct lease *l);

#endif
