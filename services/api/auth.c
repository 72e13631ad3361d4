/* POST /v1/auth/login: a user name and password for a bearer token.
 *
 * The password check (scrypt) runs on a worker thread. Unknown users are
 * checked against a dummy hash, so the answer takes as long either way, and
 * both count against the throttle: 5 failures (login-max-failures) for a user
 * name or a client address within login-window lock it for login-lockout. An
 * address counts by its subject (throttle_addr_subject): IPv4 alone, IPv6 by
 * its /64.
 *
 * An attempt is checked first against this replica's table (throttle.h), then
 * against the count every replica shares in Redis (throttle_redis.h), before
 * the user is looked up and the slow hash starts; its outcome goes to both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"
#include "call.h"
#include "db.h"
#include "jwt_auth.h"
#include "password.h"
#include "records.h"
#include "sluice/clock.h"
#include "sluice/http.h"
#include "sluice/log.h"
#include "sluice/redis.h"
#include "throttle.h"
#include "throttle_redis.h"
#include "workpool.h"

struct login {
    struct call call;
    struct login_req in;
    char ukey[THROTTLE_KEY_MAX], akey[THROTTLE_KEY_MAX];
    struct throttle_redis_attempt *shared;   /* NULL once ended */
    char client[64];
    char subject[THROTTLE_SUBJECT_MAX];   /* the client's, for the throttle */
    char who[80];                   /* the user name as given, escaped for logs */
    int64_t user_id;
    char role[16];
    char hash[PASSWORD_HASH_MAX];   /* the user's, or the dummy */
    char *password;                 /* a copy for the worker; cleansed, freed */
    size_t pwlen;
    bool match;                     /* written by the worker */
};

static void free_password(struct login *l)
{
    if (l->password) {
        OPENSSL_cleanse(l->password, l->pwlen);
        free(l->password);
        l->password = NULL;
    }
}

/* Logs a lock of this replica's table. Redis, when up, has the same failures
 * and logs its own lock once for every replica (throttle_redis.c), so this
 * one is a debug line then. */
static void log_local_lock(struct login *l, const char *what, const char *name)
{
    const struct api_config *cfg = l->call.api->cfg;
    log_at(redis_is_up(l->call.api->redis) ? LOGL_DEBUG : LOGL_WARN,
           "login: %s %s locked on this replica for %lld s after %lld failures", what, name,
           (long long)throttle_retry_after_s(cfg->login_lockout_ms),
           (long long)cfg->login_max_failures);
}

/* Ends both throttle attempts, here and in Redis: on a success only the
 * user's count is wiped, so an attacker's own account cannot reset the count
 * of its address. */
static void end_attempts(struct login *l, enum throttle_outcome user,
                         enum throttle_outcome addr)
{
    struct api *api = l->call.api;
    int64_t now = clock_mono_ms();
    if (throttle_end(api->throttle, l->ukey, now, user))
        log_local_lock(l, "user", l->who);
    if (throttle_end(api->throttle, l->akey, now, addr))
        log_local_lock(l, "address", l->subject);
    throttle_redis_end(l->shared, user, addr);
    l->shared = NULL;
    free_password(l);
}

/* Refuses the attempt (ended, or never begun). <scope> names what refused it:
 * "local" or "shared". The lock itself was logged when it was set. */
static void too_many(struct login *l, int64_t wait_ms, const char *scope)
{
    char secs[24];
    snprintf(secs, sizeof(secs), "%lld", (long long)throttle_retry_after_s(wait_ms));
    api_count(l->call.api, AM_LOGINS, "throttled");
    api_count(l->call.api, AM_THROTTLE_HITS, scope);
    log_debug("login: %s from %s refused (%s): too many failures", l->who, l->client,
              scope);
    http_header(l->call.req, "Retry-After", secs);
    call_error(&l->call, 429, "too_many_requests",
               "too many failed logins; try again in %s s", secs);
}

static void grant(struct login *l)
{
    struct api *api = l->call.api;
    struct jwt_claims claims = { .user_id = l->user_id };
    snprintf(claims.name, sizeof(claims.name), "%s", l->in.username);
    snprintf(claims.role, sizeof(claims.role), "%s", l->role);
    char *token = jwt_auth_sign((const uint8_t *)api->cfg->jwt_secret,
                                strlen(api->cfg->jwt_secret), &claims,
                                clock_wall_us() / 1000000, api->cfg->jwt_ttl_ms / 1000);
    if (token == NULL) {
        call_error(&l->call, 500, "internal", "internal error");
        return;
    }
    char expires[32];
    clock_rfc3339(expires, sizeof(expires), claims.exp * 1000000);
    api_count(api, AM_LOGINS, "ok");
    log_info("login: %s (%s) from %s", l->who, l->role, l->client);
    json_t *body = json_pack("{s:s, s:s, s:{s:I, s:s, s:s}}", "token", token,
                             "expires_at", expires, "user", "id", (json_int_t)l->user_id,
                             "username", l->in.username, "role", l->role);
    free(token);
    call_reply(&l->call, 200, body);
}

/* On the loop, once the worker has compared. */
static void on_checked(void *arg, bool cancelled)
{
    struct login *l = arg;
    if (cancelled) {
        end_attempts(l, THROTTLE_NEUTRAL, THROTTLE_NEUTRAL);
        call_unavailable(&l->call, "the login service");
        return;
    }
    api_count(l->call.api, AM_PASSWORD_CHECKS, l->user_id > 0 ? "known" : "unknown");
    bool ok = l->match && l->user_id > 0;
    end_attempts(l, ok ? THROTTLE_SUCCESS : THROTTLE_FAILURE,
                 ok ? THROTTLE_NEUTRAL : THROTTLE_FAILURE);
    if (ok) {
        grant(l);
        return;
    }
    api_count(l->call.api, AM_LOGINS, "denied");
    log_info("login: %s from %s: bad user name or password", l->who, l->client);
    call_error(&l->call, 401, "unauthorized", "invalid user name or password");
}

/* On a worker thread: touches only <l>'s password and hash. */
static void check_password(void *arg)
{
    struct login *l = arg;
    l->match = password_verify(l->password, l->pwlen, l->hash);
}

static void on_user(const struct db_result *res, void *arg)
{
    struct login *l = arg;
    struct api *api = l->call.api;
    if (db_status(res) != DB_OK) {
        end_attempts(l, THROTTLE_NEUTRAL, THROTTLE_NEUTRAL);
        call_db_error(&l->call, res, "login");
        return;
    }
    const char *hash = db_value(res, 0, 2);
    l->user_id = db_nrows(res) == 1 ? db_int(res, 0, 0) : -1;
    snprintf(l->role, sizeof(l->role), "%s", db_value(res, 0, 1) ? db_value(res, 0, 1) : "");
    snprintf(l->hash, sizeof(l->hash), "%s", hash && l->user_id > 0 ? hash : api->dummy_hash);
    if (workpool_submit(api->hashers, check_password, on_checked, l) == -1) {
        end_attempts(l, THROTTLE_NEUTRAL, THROTTLE_NEUTRAL);
        call_unavailable(&l->call, "the login service (busy)");
    }
}

/* Looks the user up, then has a worker check the password. */
static void check_login(struct login *l)
{
    l->pwlen = strlen(l->in.password);
    l->password = strdup(l->in.password);
    const char *params[] = { l->in.username };
    if (l->password == NULL ||
        db_query(l->call.api->db,
                 "SELECT u.id, u.role, u.password_hash FROM users u WHERE u.username = $1",
                 1, params, on_user, l) == -1) {
        end_attempts(l, THROTTLE_NEUTRAL, THROTTLE_NEUTRAL);
        call_unavailable(&l->call, "the database");
    }
}

/* The answer of the count shared in Redis. */
static void on_shared(int64_t wait_ms, void *arg)
{
    struct login *l = arg;
    if (wait_ms == -1) {   /* shutting down: the attempt is gone */
        l->shared = NULL;
        end_attempts(l, THROTTLE_NEUTRAL, THROTTLE_NEUTRAL);
        call_unavailable(&l->call, "the login service");
        return;
    }
    if (wait_ms > 0) {
        end_attempts(l, THROTTLE_NEUTRAL, THROTTLE_NEUTRAL);
        too_many(l, wait_ms, "shared");
        return;
    }
    check_login(l);
}

/* Starts the attempt against both throttle keys in this replica's table.
 * Returns 0, or -1 after replying 429. */
static int begin_attempts(struct login *l)
{
    struct throttle *t = l->call.api->throttle;
    int64_t now = clock_mono_ms();
    int64_t wait = throttle_begin(t, l->akey, now);
    if (wait > 0) {
        too_many(l, wait, "local");
        return -1;
    }
    if ((wait = throttle_begin(t, l->ukey, now)) > 0) {
        throttle_end(t, l->akey, now, THROTTLE_NEUTRAL);
        too_many(l, wait, "local");
        return -1;
    }
    return 0;
}

static void post_login(struct http_request *req)
{
    struct login *l = call_new(req, sizeof(*l));
    char err[160];
    if (l == NULL || call_read_body(&l->call) == -1)
        return;
    if (req_login(l->call.body, &l->in, err, sizeof(err)) == -1) {
        call_error(&l->call, 400, "bad_request", "%s", err);
        return;
    }
    if (bootstrap_pending(l->call.api, l->in.username)) {
        /* the first admin is being created: it will exist in a moment */
        call_unavailable(&l->call, "the login of the first admin");
        return;
    }
    call_client_ip(&l->call, l->client, sizeof(l->client));
    log_escape(l->who, sizeof(l->who), l->in.username, strlen(l->in.username));
    snprintf(l->ukey, sizeof(l->ukey), "u:%s", l->in.username);
    throttle_addr_subject(l->client, l->subject, sizeof(l->subject));
    snprintf(l->akey, sizeof(l->akey), "a:%s", l->subject);
    if (begin_attempts(l) == -1)
        return;
    const struct throttle_subjects s = { .user = l->in.username, .addr = l->subject,
                                         .local_user = l->ukey, .local_addr = l->akey };
    if (throttle_redis_begin(l->call.api, &s, on_shared, l, &l->shared) ==
        THROTTLE_REDIS_LOCAL)
        check_login(l);
}

const struct http_route auth_routes[] = {
    { HTTP_POST, "/v1/auth/login", post_login },
    { 0 },
};
