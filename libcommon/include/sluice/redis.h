/* Redis glue on hiredis 0.14 (async, libevent adapter). This is the only module
 * that touches hiredis; it adds what hiredis 0.14 lacks:
 *  - name resolution with evdns (hiredis would block in getaddrinfo);
 *  - a connect timeout and a per-command timeout; a command that times out
 *    also drops the connection, since a server that stopped answering one
 *    command will not answer the next;
 *  - a cap on pending commands, so a stalled Redis cannot grow memory;
 *  - reconnection with exponential backoff, and a PING every few seconds so a
 *    silent server is noticed even when idle;
 *  - a second connection for SUBSCRIBE, resubscribed after every reconnect,
 *    with a callback after each (re)subscription so the caller reloads state
 *    (pub/sub loses what is sent while it is away);
 *  - lease scripts (acquire, renew, release, take over) that only the holder
 *    can renew or release, reloaded transparently after NOSCRIPT.
 * While disconnected, redis_command() fails at once: callers keep working from
 * what they know and catch up when the state callback reports Redis is back.
 */
#ifndef SLUICE_REDIS_H
#define SLUICE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct redis;
struct redis_reply;   /* a view of a reply, valid during the callback only */

struct redis_options {
    const char *url;            /* redis://[:password@]host[:port][/db] */
    int connect_timeout_ms;     /* 0 = 2000 */
    int command_timeout_ms;     /* 0 = 2000 */
    unsigned max_pending;       /* 0 = 10000 */
    int backoff_min_ms;         /* 0 = 100 */
    int backoff_max_ms;         /* 0 = 5000 */
    int ping_interval_ms;       /* 0 = 2000 */
};

/* A reply, or NULL with <err>: "timeout", "disconnected", "cancelled", or the
 * server's error text. Called exactly once per accepted command. */
typedef void (*redis_reply_cb)(const struct redis_reply *reply, const char *err,
                               void *arg);
typedef void (*redis_state_cb)(bool up, void *arg);
typedef void (*redis_message_cb)(const char *channel, const char *msg, size_t len,
                                 void *arg);
typedef void (*redis_subscribed_cb)(void *arg);

/* Starts connecting at once. NULL (logged) if the URL is malformed. */
struct redis *redis_new(struct event_base *base, struct evdns_base *dns,
                        const struct redis_options *opts);

/* Pending callbacks run with "cancelled". Do not call from a redis callback. */
void redis_free(struct redis *r);

/* Called on every change between up and down, the first connection included
 * (a good moment to load state). */
void redis_set_state_cb(struct redis *r, redis_state_cb cb, void *arg);

/* True when the command connection is up (connected and authenticated). */
bool redis_is_up(const struct redis *r);

/* Commands pending a reply. */
unsigned redis_pending(const struct redis *r);

/* Sends a command (hiredis format: %s for a C string, %b for bytes + size_t).
 * Returns 0; or -1 when Redis is down or the pending cap is reached, in which
 * case <cb> is not called. <cb> may be NULL to ignore the reply. */
int redis_command(struct redis *r, redis_reply_cb cb, void *arg, const char *fmt, ...);
int redis_commandv(struct redis *r, redis_reply_cb cb, void *arg,
                   int argc, const char **argv, const size_t *argvlen);

/* Subscribes to <channel> on the subscriber connection (opened on first use).
 * <on_msg> gets every message; <on_subscribed> (may be NULL) runs after each
 * successful (re)subscription. Returns 0 or -1. */
int redis_subscribe(struct redis *r, const char *channel, redis_message_cb on_msg,
                    redis_subscribed_cb on_subscribed, void *arg);

/* Reply accessors. */
enum redis_reply_type {
    REDIS_R_STRING, REDIS_R_ARRAY, REDIS_R_INTEGER, REDIS_R_NIL, REDIS_R_STATUS,
    REDIS_R_ERROR,
};
enum redis_reply_type redis_reply_type(const struct redis_reply *r);
/* String, status or error text (not NUL-safe: use <len>), or NULL. */
const char *redis_reply_str(const struct redis_reply *r, size_t *len);
long long redis_reply_int(const struct redis_reply *r);
size_t redis_reply_len(const struct redis_reply *r);                 /* arrays */
const struct redis_reply *redis_reply_at(const struct redis_reply *r, size_t i);

/* Leases: a key whose value is the holder id, with a TTL. */
enum lease_result {
    LEASE_HELD,      /* <holder> holds it now */
    LEASE_OTHER,     /* someone else holds it (named in <other>) */
    LEASE_ERROR,     /* Redis down, timeout or error: state unknown */
};
/* <other> is the current holder for LEASE_OTHER (and for takeover, the one
 * displaced, if any), else NULL. */
typedef void (*redis_lease_cb)(enum lease_result res, const char *other, void *arg);

/* Takes <key> for <holder> for <ttl_ms> if free, or extends it if <holder>
 * already has it. */
int redis_lease_acquire(struct redis *r, const char *key, const char *holder,
                        int64_t ttl_ms, redis_lease_cb cb, void *arg);
/* Extends <key> only if <holder> has it; LEASE_OTHER if not (lost or taken). */
int redis_lease_renew(struct redis *r, const char *key, const char *holder,
                      int64_t ttl_ms, redis_lease_cb cb, void *arg);
/* Deletes <key> only if <holder> has it. <cb> may be NULL. */
int redis_lease_release(struct redis *r, const char *key, const char *holder,
                        redis_lease_cb cb, void *arg);
/* Sets <key> to <holder> whoever held it (publish takeover); LEASE_HELD, with
 * the previous holder in <other> when there was one. */
int redis_lease_takeover(struct redis *r, const char *key, const char *holder,
                         int64_t ttl_ms, redis_lease_cb cb, void *arg);

#endif
