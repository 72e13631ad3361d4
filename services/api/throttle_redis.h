/* Login throttling shared by every api replica: the failures of a user name
 * or a client address counted in Redis, next to the per-process table of
 * throttle.h, which still decides alone while Redis is unreachable or slow.
 *
 * Each subject (the user name; the address's subject, throttle_addr_subject:
 * an IPv4 address, an IPv6 /64) has one hash in Redis, under the keys
 * THROTTLE_REDIS_USER / THROTTLE_REDIS_ADDR followed by the escaped name
 * (throttle_redis_key), in one of two states:
 *
 *   counting  {failures, inflight}, TTL login-window from its first attempt:
 *             failures recorded by any replica, and attempts that replicas
 *             have begun and not ended yet (reserved at the start, so that
 *             parallel guesses spread over replicas cannot overshoot);
 *   locked    {locked: 1}, TTL login-lockout: set by the failure that brought
 *             the count to login-max-failures.
 *
 * An attempt begins with one script (throttle_redis_begin) that refuses it if
 * either subject is locked (the wait is the lock's PTTL) or has failures plus
 * attempts in flight at the limit (wait a second), and else reserves it on
 * both; it ends with one script (throttle_redis_end) that releases the
 * reservation and applies the outcome: a failure counts and may lock, a
 * success deletes the count (the user's only: an address's success is
 * neutral, as in throttle.h), a neutral end only releases.
 *
 * A shared lock is copied into this replica's table (throttle_lock) whenever
 * this replica learns of it: from the begin script, which names each locked
 * subject with its PTTL, and from the end script, when this replica's failure
 * set it (for login-lockout). So a replica that has seen a lock keeps it if
 * Redis goes away before it ends; one that has not counts on its own.
 *
 * Fail to local: when Redis is down, answers an error, or does not answer the
 * begin script within login-redis-wait, the attempt goes on with the local
 * table alone (counted in sluice_api_login_throttle_fallbacks_total{reason});
 * it is neither refused (fail closed) nor let through unthrottled (fail open).
 * Its outcome is still recorded when Redis takes the end script. A
 * reservation whose end never reaches Redis (a replica that died, Redis lost
 * in between) holds until the hash's window runs out.
 *
 * Event-loop only. */
#ifndef SLUICE_API_THROTTLE_REDIS_H
#define SLUICE_API_THROTTLE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "throttle.h"

struct api;
struct throttle_redis_attempt;

#define THROTTLE_REDIS_USER "sluice:throttle:login:user:"
#define THROTTLE_REDIS_ADDR "sluice:throttle:login:addr:"
/* A prefix and a name of up to 64 bytes, each escaped to at most 3. */
#define THROTTLE_REDIS_KEY_MAX 256
/* The wait (ms) when attempts in flight, not failures, reach the limit. */
#define THROTTLE_REDIS_BUSY_MS 1000

/* <prefix> then <name>, each byte outside [A-Za-z0-9_.@:-] as %XX (so that
 * any user name a client sends makes one key, and no two names the same),
 * into <out> of <len> bytes. Pure. Returns 0, or -1 if it does not fit. */
int throttle_redis_key(char *out, size_t len, const char *prefix, const char *name);

/* The Retry-After of a wait of <wait_ms> (> 0): whole seconds, rounded up,
 * at least 1. Pure. */
int64_t throttle_retry_after_s(int64_t wait_ms);

/* The answer to throttle_redis_begin: <wait_ms> 0 to go on, > 0 to refuse
 * (429) for that long, or -1 when the api is shutting down (reply 503; the
 * attempt is gone, do not end it). */
typedef void (*throttle_redis_cb)(int64_t wait_ms, void *arg);

enum throttle_redis_start {
    THROTTLE_REDIS_ASKED,   /* the answer comes through <cb>, exactly once */
    THROTTLE_REDIS_LOCAL,   /* Redis is unusable now: go on at once (a fallback) */
};

/* An attempt's subjects, and their keys in this replica's table (api->throttle),
 * where shared locks are copied. */
struct throttle_subjects {
    const char *user;         /* the user name as the client gave it */
    const char *addr;         /* the address's subject (throttle_addr_subject) */
    const char *local_user, *local_addr;   /* at most THROTTLE_KEY_MAX - 1 bytes */
};

/* Begins the shared attempt of <s> (names escaped here). *<out> is the
 * attempt, to end with throttle_redis_end in either case (unless <cb> got
 * -1); NULL only when out of memory, and then the attempt is not shared.
 * Never calls <cb> before returning. */
enum throttle_redis_start throttle_redis_begin(struct api *api,
                                               const struct throttle_subjects *s,
                                               throttle_redis_cb cb, void *arg,
                                               struct throttle_redis_attempt **out);

/* Ends <a> (NULL is fine) with the outcome for its user and its address, and
 * frees it (now, or once Redis has answered what it still waits for). */
void throttle_redis_end(struct throttle_redis_attempt *a, enum throttle_outcome user,
                        enum throttle_outcome addr);

#endif
