/* Login throttling: after <max_failures> failed attempts for one key (a user
 * name, a client address) within <window_ms>, the key is locked for
 * <lockout_ms>. Attempts in flight count against the limit, so parallel
 * guesses cannot overshoot it.
 *
 * An address is counted by its subject (throttle_addr_subject): an IPv4
 * address alone, an IPv6 address by its /64, since one client usually holds
 * a whole /64 and could otherwise rotate through it, a fresh address per guess.
 *
 * The table is per process: each replica counts on its own, and
 * throttle_redis.h shares the count between replicas through Redis. This
 * table stays the first check of every attempt (it needs no I/O) and the only
 * one while Redis is unreachable or slow. A lock that Redis reports (set by
 * any replica) is copied here with throttle_lock, so that a replica that has
 * seen it keeps it while Redis is away.
 *
 * It is bounded: when full it forgets stale keys first, then the key whose
 * last failure is oldest among those not locked and not in flight; if every
 * entry is locked or in flight, new keys go uncounted. Filling it takes
 * max_entries * max_failures slow password checks, which the hashing workers
 * pace to a few dozen per second. Event-loop only (not thread-safe). */
#ifndef SLUICE_API_THROTTLE_H
#define SLUICE_API_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define THROTTLE_KEY_MAX 96
#define THROTTLE_FAILURES_MAX 16
/* A subject's text: INET6_ADDRSTRLEN and "/64", with room to spare. */
#define THROTTLE_SUBJECT_MAX 64

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

/* Locks <key> until <until_ms> (a lock learnt elsewhere: Redis), unless it is
 * locked longer already; its failures start afresh once the lock ends, as
 * after a lock of its own. Attempts in flight stay counted. Returns 0 (also
 * when <until_ms> is not after <now_ms>: nothing to do), or -1 when the table
 * has no room for the key (full of locks and attempts in flight). */
int throttle_lock(struct throttle *t, const char *key, int64_t now_ms, int64_t until_ms);

/* The subject a client address <addr> (text, no port) is throttled as, into
 * <out> of <len> bytes (at least THROTTLE_SUBJECT_MAX to hold any address):
 *   IPv4            the address, canonical ("192.0.2.7");
 *   IPv4-mapped     the IPv4 address ("::ffff:192.0.2.7" -> "192.0.2.7");
 *   other IPv6      its /64, canonical ("2001:db8:1:2:a::1" -> "2001:db8:1:2::/64").
 * Anything else (a zone id, a name, garbage) is its own subject: <addr> as
 * given, cut to fit. Pure. Returns true when <addr> parsed as an address. */
bool throttle_addr_subject(const char *addr, char *out, size_t len);

/* Keys currently tracked. */
size_t throttle_size(const struct throttle *t);

#endif
