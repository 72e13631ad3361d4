/* The object cache: request path -> immutable body, in memory, bounded in
 * bytes, least recently used evicted first.
 *
 * An entry is fresh until <fresh_until> (segments: forever; playlists: a
 * fraction of their target duration), then stale: still kept, so that it can
 * be served while the origin cannot be reached (stale-if-error), until
 * <stale_until>, when cache_sweep() or the next cache_get() drops it. Times
 * are monotonic milliseconds, given by the caller, so the cache itself has no
 * clock and no I/O.
 *
 * The cache holds one reference to each body it stores; a reader that keeps
 * a body beyond the current callback takes its own (body_ref). The bytes
 * counted are each body's length plus a fixed overhead per entry, so a flood
 * of tiny objects is bounded too.
 */
#ifndef SLUICE_EDGE_CACHE_H
#define SLUICE_EDGE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "table.h"

struct body;

#define CACHE_FOREVER INT64_MAX
#define CACHE_ENTRY_OVERHEAD 256   /* bytes charged per entry besides its body */

struct cache_entry {
    struct table_node node;
    struct cache_entry *prev, *next;   /* LRU list, most recently used first */
    struct body *body;
    int64_t fresh_until, stale_until;  /* monotonic ms */
    int64_t stored_at;                 /* monotonic ms */
    size_t charge;                     /* bytes counted for this entry */
    size_t keylen;
    char key[];
};

struct cache_stats {
    size_t bytes, capacity;
    size_t entries;
    uint64_t evictions;     /* entries dropped to make room */
    uint64_t expirations;   /* entries dropped past their stale bound */
};

/* A cache of at most <capacity> bytes, or NULL. */
struct cache *cache_new(size_t capacity);

/* Drops every entry (and its body reference) and frees the cache. */
void cache_free(struct cache *c);

/* The entry for <key> (fresh or stale), marked as most recently used; or
 * NULL when absent or past its stale bound (then dropped). */
struct cache_entry *cache_get(struct cache *c, const char *key, size_t len, int64_t now);

static inline bool cache_fresh(const struct cache_entry *e, int64_t now)
{
    return now < e->fresh_until;
}

/* Stores <b> under <key> (taking a reference), replacing any entry there, and
 * evicts least recently used entries until the cache fits. Returns 0, or -1
 * when the object alone exceeds the capacity or memory runs out (the cache
 * then holds no entry for <key>). */
int cache_put(struct cache *c, const char *key, size_t len, struct body *b,
              int64_t fresh_until, int64_t stale_until, int64_t now);

/* Drops the entry for <key>, if any. */
void cache_remove(struct cache *c, const char *key, size_t len);

/* Drops entries past their stale bound. Returns how many. */
size_t cache_sweep(struct cache *c, int64_t now);

void cache_get_stats(const struct cache *c, struct cache_stats *out);

#endif
