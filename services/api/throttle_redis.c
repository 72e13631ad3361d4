/* Login throttling shared through Redis: see throttle_redis.h.
 *
 * An attempt lives from throttle_redis_begin until the caller has ended it and
 * Redis has answered whatever was sent for it: the begin script (answered by
 * Redis, or given up on after login-redis-wait), then the end script. */
#include "throttle_redis.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "api.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/log.h"
#include "sluice/redis.h"

/* KEYS: the user's hash, the address's. ARGV: max failures, window (ms).
 * Returns {the PTTL of the user's lock, of the address's} (0 for one not
 * locked) when either is locked, -1 when failures plus attempts in flight
 * reach the limit, or 0 once the attempt is reserved. */
static const char BEGIN_SCRIPT[] =
    "local locks, any = {0, 0}, false\n"
    "for i = 1, 2 do\n"
    "  if redis.call('HEXISTS', KEYS[i], 'locked') == 1 then\n"
    "    locks[i] = math.max(0, redis.call('PTTL', KEYS[i]))\n"
    "    any = any or locks[i] > 0\n"
    "  end\n"
    "end\n"
    "if any then return locks end\n"
    "for i = 1, 2 do\n"
    "  local h = redis.call('HMGET', KEYS[i], 'failures', 'inflight')\n"
    "  if (tonumber(h[1]) or 0) + (tonumber(h[2]) or 0) >= tonumber(ARGV[1]) then\n"
    "    return -1\n"
    "  end\n"
    "end\n"
    "for i = 1, 2 do\n"
    "  redis.call('HINCRBY', KEYS[i], 'inflight', 1)\n"
    "  if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end\n"
    "end\n"
    "return 0\n";

/* KEYS: as above. ARGV: the user's outcome and the address's (F, S or N),
 * whether the attempt was reserved (1 or 0), max failures, window (ms),
 * lockout (ms). Returns 1 if the user got locked, 2 the address, 3 both. */
static const char END_SCRIPT[] =
    "local locked = 0\n"
    "for i = 1, 2 do\n"
    "  local k, o = KEYS[i], ARGV[i]\n"
    "  if redis.call('HEXISTS', k, 'locked') == 0 then\n"
    "    if ARGV[3] == '1' and tonumber(redis.call('HGET', k, 'inflight') or '0') > 0 then\n"
    "      redis.call('HINCRBY', k, 'inflight', -1)\n"
    "    end\n"
    "    if o == 'S' then\n"
    "      redis.call('DEL', k)\n"
    "    elseif o == 'F' then\n"
    "      local n = redis.call('HINCRBY', k, 'failures', 1)\n"
    "      if redis.call('PTTL', k) < 0 then redis.call('PEXPIRE', k, ARGV[5]) end\n"
    "      if n >= tonumber(ARGV[4]) then\n"
    "        redis.call('DEL', k)\n"
    "        redis.call('HSET', k, 'locked', 1)\n"
    "        redis.call('PEXPIRE', k, ARGV[6])\n"
    "        locked = locked + i\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return locked\n";

struct throttle_redis_attempt {
    struct api *api;
    char ukey[THROTTLE_REDIS_KEY_MAX], akey[THROTTLE_REDIS_KEY_MAX];
    char local_ukey[THROTTLE_KEY_MAX], local_akey[THROTTLE_KEY_MAX];
    char who[80], client[80];          /* escaped for logs */
    throttle_redis_cb cb;
    void *arg;
    struct event *timer;               /* the bound on the begin script's answer */
    bool asking;                       /* the begin script is in flight */
    bool answered;                     /* <cb> has run */
    bool reserved;                     /* Redis counts the attempt in flight */
    bool ended;                        /* throttle_redis_end has run */
    bool cancelled;                    /* Redis is being freed: send nothing */
    enum throttle_outcome out_user, out_addr;
};

/* ---- pure parts --------------------------------------------------------- */

static bool key_byte_plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '@' || c == ':' || c == '-';
}

int throttle_redis_key(char *out, size_t len, const char *prefix, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(prefix);
    if (n >= len)
        return -1;
    memcpy(out, prefix, n);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (key_byte_plain(*p)) {
            if (n + 1 >= len)
                return -1;
            out[n++] = (char)*p;
        } else {
            if (n + 3 >= len)
                return -1;
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
    return 0;
}

int64_t throttle_retry_after_s(int64_t wait_ms)
{
    int64_t s = wait_ms / 1000 + (wait_ms % 1000 > 0);
    return s < 1 ? 1 : s;
}

/* ---- the attempt -------------------------------------------------------- */

static void attempt_free(struct throttle_redis_attempt *a)
{
    if (a->timer)
        event_free(a->timer);
    free(a);
}

static void fallback(struct throttle_redis_attempt *a, const char *reason)
{
    api_count(a->api, AM_THROTTLE_FALLBACKS, reason);
    log_debug("login: %s from %s: throttled by this replica alone (Redis %s)", a->who,
              a->client, reason);
}

/* Copies a shared lock of the user (<user>) or the address, which ends in
 * <ms>, into this replica's table, which keeps it while Redis is away. */
static void lock_here(const struct throttle_redis_attempt *a, bool user, int64_t ms)
{
    int64_t now = clock_mono_ms();
    const char *key = user ? a->local_ukey : a->local_akey;
    if (throttle_lock(a->api->throttle, key, now, now + ms) == -1)
        log_warn("login: no room to keep the lock of %s %s on this replica",
                 user ? "user" : "address", user ? a->who : a->client);
}

static void log_lock(const struct throttle_redis_attempt *a, const char *what,
                     const char *name)
{
    const struct api_config *cfg = a->api->cfg;
    log_warn("login: %s %s locked on every replica for %lld s after %lld failures "
             "within %lld s", what, name,
             (long long)throttle_retry_after_s(cfg->login_lockout_ms),
             (long long)cfg->login_max_failures,
             (long long)throttle_retry_after_s(cfg->login_window_ms));
}

static void on_ended(const struct redis_reply *reply, const char *err, void *arg)
{
    struct throttle_redis_attempt *a = arg;
    if (err != NULL) {
        if (strcmp(err, "cancelled") != 0)
            log_warn("login: the shared throttle did not take an outcome: %s", err);
    } else if (redis_reply_type(reply) == REDIS_R_INTEGER) {
        long long locked = redis_reply_int(reply);
        int64_t lockout = a->api->cfg->login_lockout_ms;
        if (locked & 1) {
            lock_here(a, true, lockout);
            log_lock(a, "user", a->who);
        }
        if (locked & 2) {
            lock_here(a, false, lockout);
            log_lock(a, "address", a->client);
        }
    }
    attempt_free(a);
}

static const char *outcome_arg(enum throttle_outcome o)
{
    return o == THROTTLE_FAILURE ? "F" : o == THROTTLE_SUCCESS ? "S" : "N";
}

/* Sends the end script if there is anything to tell, then frees <a> (at once,
 * or in on_ended). */
static void finish(struct throttle_redis_attempt *a)
{
    const struct api_config *cfg = a->api->cfg;
    bool news = a->reserved || a->out_user != THROTTLE_NEUTRAL ||
                a->out_addr != THROTTLE_NEUTRAL;
    if (a->cancelled || !news) {
        attempt_free(a);
        return;
    }
    char max[24], window[24], lockout[24];
    snprintf(max, sizeof(max), "%lld", (long long)cfg->login_max_failures);
    snprintf(window, sizeof(window), "%lld", (long long)cfg->login_window_ms);
    snprintf(lockout, sizeof(lockout), "%lld", (long long)cfg->login_lockout_ms);
    if (redis_command(a->api->redis, on_ended, a, "EVAL %s 2 %s %s %s %s %s %s %s %s",
                      END_SCRIPT, a->ukey, a->akey, outcome_arg(a->out_user),
                      outcome_arg(a->out_addr), a->reserved ? "1" : "0", max, window,
                      lockout) == -1) {
        log_debug("login: the outcome for %s from %s stays local (Redis unavailable)",
                  a->who, a->client);
        attempt_free(a);
    }
}

/* Hands <wait_ms> to the caller, once. <a> may be gone afterwards. */
static void answer(struct throttle_redis_attempt *a, int64_t wait_ms)
{
    a->answered = true;
    a->cb(wait_ms, a->arg);
}

/* The PTTL in the begin script's array of locks at <i>, or -1 if it is not one. */
static int64_t lock_at(const struct redis_reply *reply, size_t i)
{
    const struct redis_reply *r = redis_reply_at(reply, i);
    if (r == NULL || redis_reply_type(r) != REDIS_R_INTEGER || redis_reply_int(r) < 0)
        return -1;
    return redis_reply_int(r);
}

/* The verdict of the begin script's reply: a wait (>= 0), or -1 (with
 * *<reason>) when the reply is not one the script gives. A lock's PTTL goes
 * to <lock>: the user's, the address's (0 when not locked). */
static int64_t verdict(const struct redis_reply *reply, const char *err, const char **reason,
                       int64_t lock[2])
{
    if (err != NULL) {
        *reason = strcmp(err, "timeout") == 0        ? "slow"
                  : strcmp(err, "disconnected") == 0 ? "down"
                                                     : "error";
        return -1;
    }
    if (redis_reply_type(reply) == REDIS_R_ARRAY && redis_reply_len(reply) == 2) {
        lock[0] = lock_at(reply, 0);
        lock[1] = lock_at(reply, 1);
        if (lock[0] != -1 && lock[1] != -1 && lock[0] + lock[1] > 0)
            return lock[0] > lock[1] ? lock[0] : lock[1];
        lock[0] = lock[1] = 0;
    }
    if (redis_reply_type(reply) != REDIS_R_INTEGER || redis_reply_int(reply) < -1) {
        *reason = "error";
        return -1;
    }
    long long v = redis_reply_int(reply);
    return v == -1 ? THROTTLE_REDIS_BUSY_MS : v;
}

static void on_begun(const struct redis_reply *reply, const char *err, void *arg)
{
    struct throttle_redis_attempt *a = arg;
    a->asking = false;
    evtimer_del(a->timer);
    if (err != NULL && strcmp(err, "cancelled") == 0) {
        /* the api is going away: nothing more goes to Redis */
        a->cancelled = true;
        if (!a->answered) {
            answer(a, -1);
            attempt_free(a);
        } else if (a->ended) {
            attempt_free(a);
        }
        return;
    }
    const char *reason = NULL;
    int64_t lock[2] = { 0, 0 };
    int64_t wait = verdict(reply, err, &reason, lock);
    if (wait == -1 && strcmp(reason, "error") == 0)
        log_warn("login: the shared throttle failed: %s", err ? err : "unexpected reply");
    for (int i = 0; i < 2; i++) {   /* even when too late for this attempt */
        if (lock[i] > 0)
            lock_here(a, i == 0, lock[i]);
    }
    a->reserved = wait == 0;
    if (a->answered) {   /* too late: the attempt went on locally */
        if (a->ended)
            finish(a);
        return;
    }
    if (wait == -1) {
        fallback(a, reason);
        wait = 0;
    }
    answer(a, wait);
}

static void on_wait_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct throttle_redis_attempt *a = arg;
    fallback(a, "slow");
    answer(a, 0);
}

static struct throttle_redis_attempt *attempt_new(struct api *api,
                                                  const struct throttle_subjects *s)
{
    struct throttle_redis_attempt *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->api = api;
    snprintf(a->local_ukey, sizeof(a->local_ukey), "%s", s->local_user);
    snprintf(a->local_akey, sizeof(a->local_akey), "%s", s->local_addr);
    if (throttle_redis_key(a->ukey, sizeof(a->ukey), THROTTLE_REDIS_USER, s->user) == -1 ||
        throttle_redis_key(a->akey, sizeof(a->akey), THROTTLE_REDIS_ADDR, s->addr) == -1 ||
        (a->timer = evtimer_new(api->d->base, on_wait_over, a)) == NULL) {
        attempt_free(a);
        return NULL;
    }
    log_escape(a->who, sizeof(a->who), s->user, strlen(s->user));
    log_escape(a->client, sizeof(a->client), s->addr, strlen(s->addr));
    return a;
}

enum throttle_redis_start throttle_redis_begin(struct api *api,
                                               const struct throttle_subjects *s,
                                               throttle_redis_cb cb, void *arg,
                                               struct throttle_redis_attempt **out)
{
    struct throttle_redis_attempt *a = *out = attempt_new(api, s);
    if (a == NULL) {
        log_warn("login: out of memory for the shared throttle");
        return THROTTLE_REDIS_LOCAL;
    }
    a->cb = cb;
    a->arg = arg;
    char max[24], window[24];
    snprintf(max, sizeof(max), "%lld", (long long)api->cfg->login_max_failures);
    snprintf(window, sizeof(window), "%lld", (long long)api->cfg->login_window_ms);
    if (redis_command(api->redis, on_begun, a, "EVAL %s 2 %s %s %s %s", BEGIN_SCRIPT,
                      a->ukey, a->akey, max, window) == -1) {
        a->answered = true;
        fallback(a, "down");
        return THROTTLE_REDIS_LOCAL;
    }
    a->asking = true;
    struct timeval tv = clock_tv_ms(api->cfg->login_redis_wait_ms);
    evtimer_add(a->timer, &tv);
    return THROTTLE_REDIS_ASKED;
}

void throttle_redis_end(struct throttle_redis_attempt *a, enum throttle_outcome user,
                        enum throttle_outcome addr)
{
    if (a == NULL)
        return;
    a->ended = true;
    a->out_user = user;
    a->out_addr = addr;
    if (!a->asking)
        finish(a);
}
