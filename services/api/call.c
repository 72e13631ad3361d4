/* A request's life: see call.h. */
#include "call.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "authsync.h"
#include "db.h"
#include "jwt_auth.h"
#include "keys.h"
#include "sluice/clock.h"
#include "sluice/config.h"
#include "sluice/http.h"
#include "sluice/log.h"

void *call_new(struct http_request *req, size_t size)
{
    struct call *c = calloc(1, size);
    if (c == NULL) {
        http_error(req, 503, "unavailable", "out of memory");
        return NULL;
    }
    c->api = req->route_arg;
    c->req = req;
    return c;
}

static void call_free(struct call *c)
{
    json_decref(c->body);
    free(c);
}

void call_reply(struct call *c, int status, json_t *body)
{
    if (body == NULL)
        http_reply(c->req, status, NULL, NULL);
    else
        http_reply_json(c->req, status, body);
    call_free(c);
}

void call_error(struct call *c, int status, const char *code, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    http_error(c->req, status, code, "%s", msg);
    call_free(c);
}

void call_unavailable(struct call *c, const char *what)
{
    http_header(c->req, "Retry-After", "1");
    call_error(c, 503, "unavailable", "%s is unavailable, try again shortly", what);
}

void call_db_error(struct call *c, const struct db_result *res, const char *what)
{
    if (db_status(res) == DB_UNAVAILABLE) {
        call_unavailable(c, "the database");
        return;
    }
    log_error("%s: the database refused it: %s (SQLSTATE %s)", what, db_message(res),
              db_sqlstate(res));
    call_error(c, 500, "internal", "internal error");
}

int call_read_body(struct call *c)
{
    c->body = http_read_json(c->req);
    if (c->body == NULL) {
        call_free(c);   /* http_read_json replied */
        return -1;
    }
    return 0;
}

bool call_is_admin(const struct call *c)
{
    return c->who.role == ROLE_ADMIN;
}

const char *call_owner_filter(const struct call *c)
{
    return call_is_admin(c) ? NULL : c->who.id_text;
}

int call_page(struct call *c, int def, int max, int *limit, char **after)
{
    char *l = http_query_param(c->req, "limit");
    int64_t v = def;
    if (l != NULL && config_parse_int(l, 1, max, &v) == -1) {
        free(l);
        call_error(c, 400, "bad_request", "limit: must be an integer from 1 to %d", max);
        return -1;
    }
    free(l);
    *limit = (int)v;
    *after = http_query_param(c->req, "after");
    return 0;
}

/* ---- client address ----------------------------------------------------- */

static bool is_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The last entry of X-Forwarded-For: the one our proxy appended. */
static bool forwarded_for(const struct call *c, char *out, size_t len)
{
    const char *xff = http_request_header(c->req, "X-Forwarded-For");
    if (xff == NULL)
        return false;
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while (*last == ' ')
        last++;
    size_t n = strcspn(last, " ");
    if (n == 0 || n >= len)
        return false;
    memcpy(out, last, n);
    out[n] = '\0';
    return is_ip(out);
}

void call_client_ip(const struct call *c, char *out, size_t len)
{
    if (c->api->cfg->trust_proxy && forwarded_for(c, out, len))
        return;
    const char *peer = c->req->peer;
    const char *end = peer[0] == '[' ? strchr(peer, ']') : strrchr(peer, ':');
    const char *start = peer[0] == '[' ? peer + 1 : peer;
    size_t n = end && end > start ? (size_t)(end - start) : strlen(start);
    snprintf(out, len, "%.*s", (int)n, start);
}

/* ---- authentication ----------------------------------------------------- */

/* The token of "Authorization: Bearer <token>", or NULL. */
static const char *bearer_token(const struct call *c)
{
    const char *h = http_request_header(c->req, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

static void deny(struct call *c, const char *why)
{
    http_header(c->req, "WWW-Authenticate", "Bearer realm=\"sluice\"");
    call_error(c, 401, "unauthorized", "%s", why);
}

/* The caller is <name> with <role> (as the database says): checks the role
 * and runs what was waiting. */
static void authenticated(struct call *c, const char *name, const char *role)
{
    enum role r;
    if (name == NULL || role == NULL || role_parse(role, &r) == -1) {
        deny(c, "this user no longer exists");
        return;
    }
    c->who.role = r;
    snprintf(c->who.name, sizeof(c->who.name), "%s", name);
    if (!(c->roles & (1u << r))) {
        call_error(c, 403, "forbidden", "this needs the admin role");
        return;
    }
    c->then(c);
}

static void on_user_loaded(const struct db_result *res, void *arg)
{
    struct call *c = arg;
    if (db_status(res) != DB_OK) {
        call_db_error(c, res, "loading the caller");
        return;
    }
    const char *name = db_value(res, 0, 0), *role = db_value(res, 0, 1);
    if (name && role)
        authsync_user_loaded(c->api, c->user_epoch, c->who.id, name, role);
    authenticated(c, name, role);
}

int call_service_auth(struct call *c)
{
    const char *h = http_request_header(c->req, "Authorization");
    const char *token = h && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL;
    if (token && secret_equal(token, c->api->cfg->internal_token))
        return 0;
    log_warn("internal: %s from %s: %s service token", c->req->path, c->req->peer,
             token ? "wrong" : "no");
    http_header(c->req, "WWW-Authenticate", "Bearer realm=\"sluice-internal\"");
    call_error(c, 401, "unauthorized", "a valid service token is required");
    return -1;
}

void call_authenticate(struct call *c, unsigned roles, void (*then)(struct call *c))
{
    struct api *api = c->api;
    const char *token = bearer_token(c);
    if (token == NULL) {
        deny(c, "missing bearer token (Authorization: Bearer <token>)");
        return;
    }
    struct jwt_claims claims;
    enum jwt_verdict v = jwt_auth_verify(token, strlen(token),
                                         (const uint8_t *)api->cfg->jwt_secret,
                                         strlen(api->cfg->jwt_secret),
                                         clock_wall_us() / 1000000, &claims);
    if (v != JWT_VALID) {
        log_debug("auth: %s from %s", jwt_verdict_text(v), c->req->peer);
        deny(c, v == JWT_EXPIRED || v == JWT_NOT_YET_VALID ? jwt_verdict_text(v)
                                                            : "invalid token");
        return;
    }
    c->who.id = claims.user_id;
    snprintf(c->who.id_text, sizeof(c->who.id_text), "%lld", (long long)claims.user_id);
    c->roles = roles;
    c->then = then;
    char name[USERNAME_MAX + 1], role[16];
    if (authsync_user(api, c->who.id, name, sizeof(name), role, sizeof(role))) {
        api_count(api, AM_CALLER_FROM, "memory");
        authenticated(c, name, role);
        return;
    }
    api_count(api, AM_CALLER_FROM, "database");
    c->user_epoch = authsync_user_epoch(api);
    const char *params[] = { c->who.id_text };
    if (db_query(api->db, "SELECT username, role FROM users WHERE id = $1", 1, params,
                 on_user_loaded, c) == -1)
        call_unavailable(c, "the database");
}
