/* sluice-api: the context every handler reaches through its request, and the
 * configuration it was built from. Built by api_new() (api.c), wired by
 * main.c. The files, by layer:
 *
 *   routes      auth.c (login), users.c (users, the first admin), streams.c
 *               (streams, keys), sessions.c, live.c (what is live),
 *               recordings.c (the recordings index), audit.c (the audit
 *               log), internal.c (authtable, authorize)
 *   plumbing    call.c (a request's life: bearer auth, replies, errors),
 *               events.c (sluice:events), records.c (rows as JSON),
 *               authsync.c (the authtable and callers in memory, kept by
 *               the events),
 *               migrations.c (the schema), config.c (options)
 *   services    db.c (PostgreSQL, the only user of libpq), workpool.c
 *               (threads for password hashing), throttle.c (login limits per process),
 *               throttle_redis.c (login limits shared in Redis)
 *   pure        requests.c (bodies), jwt_auth.c (tokens), password.c
 *               (scrypt), keys.c (stream keys, session ids), b64.c,
 *               authcache.c (the authtable's rules)
 */
#ifndef SLUICE_API_API_H
#define SLUICE_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sluice/config.h"
#include "sluice/http.h"

struct daemon;
struct db;
struct redis;
struct workpool;
struct throttle;
struct metric;
struct event;
struct authsync;
struct live;

struct api_config {
    char *listen;
    char *admin_listen;
    char *database_url;
    char *jwt_secret;
    char *internal_token;
    char *admin_user;
    char *admin_password;
    int64_t db_connections, db_queue, db_timeout_ms, db_connect_timeout_ms;
    int64_t db_backoff_max_ms;
    int64_t jwt_ttl_ms, session_ttl_ms;
    int64_t password_cost, hash_threads, hash_queue;
    int64_t login_max_failures, login_window_ms, login_lockout_ms;
    int64_t login_redis_wait_ms;
    int64_t max_body;
    bool trust_proxy;
    char *edge_url;
    bool live_public;
    bool auth_cache;
    int64_t auth_reload_ms;
};

extern const struct config_opt api_opts[];

/* Checks what the table cannot express (secret lengths, pairs of options).
 * Returns 0, or -1 with a malloc'd message in *<err>. */
int api_config_check(const struct api_config *cfg, char **err);

enum api_metric {
    AM_LOGINS, AM_AUTHORIZE, AM_EVENTS, AM_REDIS_UP, AM_HASH_QUEUE, AM_AUTHORIZE_FROM,
    AM_AUTHCACHE_LOADS, AM_AUTHCACHE_UP, AM_CALLER_FROM, AM_PASSWORD_CHECKS,
    AM_THROTTLE_HITS, AM_THROTTLE_FALLBACKS, AM_COUNT
};

struct api {
    struct daemon *d;
    const struct api_config *cfg;
    struct http_server *http;
    struct db *db;
    struct redis *redis;
    struct workpool *hashers;
    struct throttle *throttle;
    struct event *drain_timer;
    char dummy_hash[128];          /* verified against for unknown users */
    char edge_url[208];            /* cfg->edge_url without trailing '/' */
    struct bootstrap *bootstrap;   /* the first admin, until created */
    struct authsync *sync;         /* the authtable in memory; NULL if auth-cache off */
    struct live *live;             /* the live list's flights */
    struct metric *m[AM_COUNT];
};

/* Builds everything and starts listening. NULL (logged) on failure. */
struct api *api_new(struct daemon *d, const struct api_config *cfg);

/* The daemon's stop hook: stops accepting and drains pending requests. */
void api_stop(void *arg);

/* Frees everything; pending requests are answered 503. */
void api_free(struct api *api);

/* Counts one event in a labelled api counter. */
void api_count(struct api *api, enum api_metric m, const char *label);

/* Route tables, one per file. */
extern const struct http_route auth_routes[];
extern const struct http_route users_routes[];
extern const struct http_route streams_routes[];
extern const struct http_route sessions_routes[];
extern const struct http_route live_routes[];
extern const struct http_route recordings_routes[];
extern const struct http_route audit_routes[];
extern const struct http_route internal_routes[];

/* Every table the API port serves, NULL-terminated: what api_new() routes and
 * what `sluice-api --routes` prints (tests compare it with docs/openapi.yaml). */
extern const struct http_route *const api_route_tables[];

/* Prints one "METHOD /pattern" line per route of api_route_tables (HEAD,
 * implied by GET, is not listed). Returns 0, or -1 on an output error. */
int api_print_routes(FILE *out);

/* live.c: the flights of GET /v1/live. live_free answers the calls waiting
 * for a flight (503); call it before db_free and redis_free, which land the
 * flight in the air. */
int live_start(struct api *api);
void live_free(struct api *api);

/* users.c: creates the admin of SLUICE_ADMIN_USER once the database is up. */
int bootstrap_start(struct api *api);
void bootstrap_db_up(struct api *api);
/* Whether <username> (NULL: whoever it is) is the configured admin and is
 * not in the database yet (its password still hashing, or its insert not
 * done): a login for it must wait (503) rather than be told the user does
 * not exist (401), and the api is not ready. */
bool bootstrap_pending(const struct api *api, const char *username);
void bootstrap_free(struct api *api);

#endif
