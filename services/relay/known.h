/* Known publishers: stream name -> the publisher id this relay last accepted
 * for it, and when that publisher was last seen here (accepted, or lost).
 *
 * While Redis cannot be asked, a PUBLISH from the id known for its name is
 * accepted (policy.c's publish_decide): a lease holder whose link to the
 * relay broke may come back even after its stream ended here (the grace ran
 * out). An entry lasts known-publisher-ttl from its publisher's last sighting;
 * an answer from Redis overrules it (a lease held by another id, or by
 * nobody, drops it), and an EOS ends it. It lives in memory only: a relay
 * restarted while Redis is down knows nobody.
 *
 * Bounded: at most <max> names; when full, the entry seen longest ago makes
 * room. Lookups scan the array, which is fine for the few thousand names a
 * relay holds at most: they happen per PUBLISH and per lost publisher, never
 * per frame. Pure: no I/O, no clock (callers pass the time).
 */
#ifndef RELAY_KNOWN_H
#define RELAY_KNOWN_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/names.h"
#include "sluice/slp-t.h"

struct known_publisher {
    uint32_t hash;                     /* of name, compared first */
    int64_t seen_ms;                   /* last seen publishing */
    char name[STREAM_NAME_MAX + 1];
    char id[SLP_ID_MAX + 1];
};

struct known {
    struct known_publisher *v;
    size_t n, cap;
    size_t max;                        /* the bound on n */
    int64_t ttl_ms;                    /* 0: remember nothing */
};

/* An empty table of at most <max> names, each remembered <ttl_ms>. */
void known_init(struct known *k, size_t max, int64_t ttl_ms);

/* Frees the entries; the table is empty (and usable) again. */
void known_fini(struct known *k);

/* <id> publishes <name> at <now_ms>: the entry of <name> is now <id>, seen
 * then. Returns 0, or -1 on allocation failure (nothing remembered). With a
 * ttl of 0, remembers nothing and returns 0. */
int known_seen(struct known *k, const char *name, const char *id, int64_t now_ms);

/* The id known for <name> at <now_ms>, or NULL (none, or expired). The
 * pointer is valid until the next change to the table. */
const char *known_get(const struct known *k, const char *name, int64_t now_ms);

/* Redis says <holder> holds the lease of <name> (NULL: nobody does): an
 * entry of <name> for any other id is dropped. */
void known_overruled(struct known *k, const char *name, const char *holder);

/* Drops the entry of <name>, if any (its publisher ended the stream). */
void known_forget(struct known *k, const char *name);

/* Drops the entries expired at <now_ms>. */
void known_expire(struct known *k, int64_t now_ms);

#endif
