/* A lease kept for as long as its holder works (docs/redis.md, "Leases"),
 * on top of the redis_lease_* scripts:
 *  - taken once Redis answers: acquired, or taken over when <takeover> is set
 *    (the publish lease: a new publisher with a valid key wins);
 *  - renewed every third of its TTL;
 *  - while Redis is down the holder keeps working; when Redis is back the
 *    lease is acquired again (it stops only if someone else holds it by then);
 *  - lost when a renewal or re-acquisition finds another holder;
 *  - released at the end, only if still ours.
 * Many leases may share one struct redis: the owner forwards its state
 * callback with leasekeep_redis_state(), so a lease is re-taken at once when
 * Redis returns rather than at its next retry.
 *
 *   struct leasekeep_options o = { .key = "sluice:lease:publish:cam1",
 *                                  .holder = "ingest-1/2a", .ttl_ms = 10000,
 *                                  .takeover = true };
 *   l = leasekeep_start(base, redis, &o, on_lease, conn);
 *   ... on_lease(LK_HELD, previous, conn): publish
 *   ... on_lease(LK_LOST, other, conn): stop publishing
 *   leasekeep_release(l);  ... on_lease(LK_RELEASED): leasekeep_free(l)
 */
#ifndef SLUICE_LEASEKEEP_H
#define SLUICE_LEASEKEEP_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct redis;
struct leasekeep;

enum leasekeep_event {
    LK_HELD,        /* first taken; <other> is the holder displaced by a takeover */
    LK_REFUSED,     /* never taken: <other> holds it, or (NULL) wait_ms ran out */
    LK_LOST,        /* held, then found held by <other> */
    LK_RELEASED,    /* leasekeep_release() is done (or gave up: the TTL ends it) */
};

/* <other> is valid during the call only. The lease may be released or freed
 * from the callback. */
typedef void (*leasekeep_cb)(enum leasekeep_event ev, const char *other, void *arg);

struct leasekeep_options {
    const char *key;          /* copied */
    const char *holder;       /* copied */
    int64_t ttl_ms;
    bool takeover;            /* take it whoever holds it (first take only) */
    int64_t wait_ms;          /* LK_REFUSED if not taken by then; 0 = keep trying */
    int64_t retry_ms;         /* while Redis is down or in trouble; 0 = 500 */
};

/* Starts taking the lease. NULL if out of memory. */
struct leasekeep *leasekeep_start(struct event_base *base, struct redis *r,
                                  const struct leasekeep_options *o, leasekeep_cb cb,
                                  void *arg);

/* The owner's Redis state changed (forward redis_set_state_cb's calls). */
void leasekeep_redis_state(struct leasekeep *l, bool up);

/* True while the lease is believed ours (taken, and not found lost). */
bool leasekeep_held(const struct leasekeep *l);

/* Releases the lease if it may be ours; LK_RELEASED follows, from the loop
 * (never from inside this call), at the latest after a 2 s bound. */
void leasekeep_release(struct leasekeep *l);

/* Frees at once: a reply still on its way is ignored, nothing is released
 * (the TTL ends the lease), no callback runs. NULL is fine. */
void leasekeep_free(struct leasekeep *l);

#endif
