/* Login throttling: after <max_failures> failed attempts for one key (a user
 * name, a client address) within <window_ms>, the key is locked for
 * <lockout_ms>. Attempts in flight count against the limit, so parallel
 * guesses cannot overshoot it.
 *
 * The table is per process: each replica counts on its own, and
 * throttle_redis.h shares the count between replicas through Redis. This
 * table stays the first check of every attempt (it needs no I/O) and the only
 * one while Redis is unreachable or slow. It is bounded: when full it forgets stale keys first, then the key whose last
 * failure is oldest among those not locked and not in flight; if every entry
 * is locked or in flight, new keys go uncounted. Filling it takes
 * max_entries * max_failures slow password checks, which the hashing workers
 * pace to a few dozen per second. Event-loop only (not thread-safe). */
#ifndef SLUICE_API_THROTTLE_H
#define SLUICE_API_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define THROTTLE_KEY_MAX 96
#define THROTTLE_FAILURES_MAX 16

struct throttle;

struct throttle_options {
    size_t max_entries;
    unsigned max_failures;        /* 1..THROTTLE_FAILURES_MAX */
    int64_t window_ms, lockout_ms;
};

/* Constructor; NULL on allocation failure. */
struct throttle *throttle_new(const struct throttle_options *o);
void throttle_free(struct throttle *t);

/* Starts an attempt for <key> at <now_ms>. Returns 0 (the attempt is counted
 * as in flight until throttle_end), or the milliseconds to wait (> 0) when the
 * key is locked or its failures plus attempts in flight reach the limit. */
int64_t throttle_begin(struct throttle *t, const char *key, int64_t now_ms);

enum throttle_outcome {
    THROTTLE_FAILURE,   /* counts; may lock the key */
    THROTTLE_SUCCESS,   /* forgets the key's failures */
    THROTTLE_NEUTRAL,   /* only ends the attempt (aborted, or a success that
                           must not wipe the count, as for an address) */
};

/* Ends an attempt begun with throttle_begin. Returns true when this failure
 * locked the key. */
bool throttle_end(struct throttle *t, const char *key, int64_t now_ms,
                  enum throttle_outcome outcome);

/* Keys currently tracked. */
size_t throttle_size(const struct throttle *t);

#endif
