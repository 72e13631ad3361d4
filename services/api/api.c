/* sluice-api's context: building it, readiness, draining, freeing. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "authsync.h"
#include "db.h"
#include "migrations.h"
#include "password.h"
#include "sluice/admin.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/http.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/redis.h"
#include "throttle.h"
#include "workpool.h"

#define THROTTLE_ENTRIES 10000
#define DRAIN_POLL_MS 20

static const struct metric_def api_metric_defs[] = {
    [AM_LOGINS] = { "sluice_api_logins_total", METRIC_COUNTER, "Login attempts by result",
                    { "result" } },
    [AM_AUTHORIZE] = { "sluice_api_authorize_total", METRIC_COUNTER,
                       "Internal authorize decisions by result", { "result" } },
    [AM_EVENTS] = { "sluice_api_events_total", METRIC_COUNTER,
                    "Messages to sluice:events by result", { "result" } },
    [AM_REDIS_UP] = { "sluice_api_redis_up", METRIC_GAUGE, "1 while Redis is connected" },
    [AM_HASH_QUEUE] = { "sluice_api_hash_queue_depth", METRIC_GAUGE,
                        "Password hashes queued or running" },
    [AM_AUTHORIZE_FROM] = { "sluice_api_authorize_source_total", METRIC_COUNTER,
                            "Internal authorize decisions by where they were looked up",
                            { "source" } },
    [AM_AUTHCACHE_LOADS] = { "sluice_api_authcache_loads_total", METRIC_COUNTER,
                             "Loads of the in-memory authtable by result", { "result" } },
    [AM_AUTHCACHE_UP] = { "sluice_api_authcache_up", METRIC_GAUGE,
                          "1 while authorize decides from the in-memory authtable" },
    [AM_CALLER_FROM] = { "sluice_api_callers_total", METRIC_COUNTER,
                         "Authenticated callers by where they were looked up", { "source" } },
    [AM_PASSWORD_CHECKS] = { "sluice_api_password_checks_total", METRIC_COUNTER,
                             "Password hashes computed for logins, by whether the user "
                             "exists (an unknown user is checked against a dummy hash)",
                             { "user" } },
    [AM_THROTTLE_HITS] = { "sluice_api_login_throttle_hits_total", METRIC_COUNTER,
                           "Logins refused (429) by this replica's table (local) or by "
                           "the failures counted in Redis for every replica (shared)",
                           { "scope" } },
    [AM_THROTTLE_FALLBACKS] = { "sluice_api_login_throttle_fallbacks_total", METRIC_COUNTER,
                                "Logins throttled by this replica's table alone because "
                                "Redis was down, slow or failing", { "reason" } },
    [AM_COUNT] = { NULL },
};

void api_count(struct api *api, enum api_metric m, const char *label)
{
    if (api->m[0])
        metric_add(metric_at(api->m[m], label), 1);
}

static void on_collect(void *arg)
{
    struct api *api = arg;
    metric_set(metric_at(api->m[AM_REDIS_UP]), redis_is_up(api->redis));
    metric_set(metric_at(api->m[AM_HASH_QUEUE]), workpool_depth(api->hashers));
    metric_set(metric_at(api->m[AM_AUTHCACHE_UP]), authsync_table(api) != NULL);
}

static void on_redis_state(bool up, void *arg)
{
    authsync_redis_state(arg, up);
}

static bool ready(json_t *checks, void *arg)
{
    struct api *api = arg;
    bool pg = db_is_up(api->db), rd = redis_is_up(api->redis);
    json_object_set_new(checks, "postgres", json_string(db_state_text(api->db)));
    json_object_set_new(checks, "redis", json_string(rd ? "ok" : "disconnected"));
    bool admin = !bootstrap_pending(api, NULL);
    json_object_set_new(checks, "admin", json_string(admin ? "ok" : "being created"));
    return pg && rd && admin;
}

static void on_db_state(bool up, void *arg)
{
    if (up)
        bootstrap_db_up(arg);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg);

/* ---- routes ------------------------------------------------------------- */

const struct http_route *const api_route_tables[] = {
    auth_routes, users_routes, streams_routes, sessions_routes, live_routes,
    recordings_routes, audit_routes, internal_routes, NULL,
};

int api_print_routes(FILE *out)
{
    static const struct { unsigned bit; const char *name; } methods[] = {
        { HTTP_GET, "GET" }, { HTTP_POST, "POST" }, { HTTP_PUT, "PUT" },
        { HTTP_PATCH, "PATCH" }, { HTTP_DELETE, "DELETE" }, { HTTP_OPTIONS, "OPTIONS" },
    };
    for (size_t t = 0; api_route_tables[t]; t++) {
        for (const struct http_route *r = api_route_tables[t]; r->pattern; r++) {
            for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
                if ((r->methods & methods[m].bit) &&
                    fprintf(out, "%s %s\n", methods[m].name, r->pattern) < 0)
                    return -1;
            }
        }
    }
    return fflush(out) == 0 ? 0 : -1;
}

/* ---- building ----------------------------------------------------------- */

static int start_db(struct api *api)
{
    const struct api_config *cfg = api->cfg;
    struct db_options o = {
        .url = cfg->database_url,
        .connections = (unsigned)cfg->db_connections,
        .max_queue = (unsigned)cfg->db_queue,
        .query_timeout_ms = (int)cfg->db_timeout_ms,
        .connect_timeout_ms = (int)cfg->db_connect_timeout_ms,
        .backoff_max_ms = (int)cfg->db_backoff_max_ms,
        .setup = migrations_setup,
        .metrics = api->d->metrics,
    };
    char *err = NULL;
    api->db = db_new(api->d->base, api->d->dns, &o, &err);
    if (api->db == NULL) {
        log_error("%s", err ? err : "cannot set up the database pool");
        free(err);
        return -1;
    }
    db_set_state_cb(api->db, on_db_state, api);
    return 0;
}

static int start_http(struct api *api)
{
    struct http_server_options o = {
        .name = "api",
        .max_body = (size_t)api->cfg->max_body,
        .metrics = api->d->metrics,
    };
    api->http = http_server_new(api->d->base, &o);
    if (api->http == NULL)
        return -1;
    for (size_t i = 0; api_route_tables[i]; i++) {
        if (http_server_routes(api->http, api_route_tables[i], api) == -1) {
            log_error("api: too many route tables");
            return -1;
        }
    }
    char *err = NULL;
    if (http_server_listen(api->http, api->cfg->listen, &err) == -1) {
        log_error("%s", err ? err : "cannot listen");
        free(err);
        return -1;
    }
    log_info("API on %s", api->cfg->listen);
    return 0;
}

static int start_admin(struct api *api)
{
    char *err = NULL;
    if (admin_start(api->d, api->cfg->admin_listen, ready, api, &err) == NULL) {
        log_error("%s", err ? err : "cannot start the admin port");
        free(err);
        return -1;
    }
    return 0;
}

/* A hash of a random password: unknown users are checked against it, so that
 * a login takes as long whether the user exists or not. */
static int make_dummy_hash(struct api *api)
{
    char pw[33];
    snprintf(pw, sizeof(pw), "%016llx%016llx", (unsigned long long)clock_mono_us(),
             (unsigned long long)(uintptr_t)api);
    return password_hash(pw, strlen(pw), (unsigned)api->cfg->password_cost,
                         api->dummy_hash, sizeof(api->dummy_hash));
}

static int start_parts(struct api *api)
{
    const struct api_config *cfg = api->cfg;
    struct redis_options ro = { .url = api->d->common.redis_url };
    struct throttle_options to = {
        .max_entries = THROTTLE_ENTRIES,
        .max_failures = (unsigned)cfg->login_max_failures,
        .window_ms = cfg->login_window_ms,
        .lockout_ms = cfg->login_lockout_ms,
    };
    if (metrics_register(api->d->metrics, api_metric_defs, api->m) == 0)
        metrics_on_collect(api->d->metrics, on_collect, api);
    if ((api->redis = redis_new(api->d->base, api->d->dns, &ro)) == NULL)
        return -1;
    redis_set_state_cb(api->redis, on_redis_state, api);
    if ((api->throttle = throttle_new(&to)) == NULL ||
        (api->hashers = workpool_new(api->d->base, (unsigned)cfg->hash_threads,
                                     (unsigned)cfg->hash_queue)) == NULL ||
        (api->drain_timer = evtimer_new(api->d->base, on_drain_tick, api)) == NULL ||
        live_start(api) == -1 ||
        make_dummy_hash(api) == -1)
        return -1;
    return 0;
}

struct api *api_new(struct daemon *d, const struct api_config *cfg)
{
    char *err = NULL;
    if (api_config_check(cfg, &err) == -1) {
        log_error("configuration: %s", err ? err : "?");
        free(err);
        return NULL;
    }
    struct api *api = calloc(1, sizeof(*api));
    if (api == NULL)
        return NULL;
    api->d = d;
    api->cfg = cfg;
    snprintf(api->edge_url, sizeof(api->edge_url), "%s", cfg->edge_url);
    for (size_t n = strlen(api->edge_url); n > 0 && api->edge_url[n - 1] == '/'; n--)
        api->edge_url[n - 1] = '\0';
    if (start_parts(api) == -1 || start_db(api) == -1 || authsync_start(api) == -1 ||
        bootstrap_start(api) == -1 || start_http(api) == -1 || start_admin(api) == -1) {
        api_free(api);
        return NULL;
    }
    return api;
}

/* ---- stopping ----------------------------------------------------------- */

/* Polls until no request waits for a reply; then lets the daemon end. */
static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct api *api = arg;
    if (http_server_pending(api->http) == 0) {
        log_info("api: every request answered");
        daemon_release(api->d);
        return;
    }
    struct timeval tv = clock_tv_ms(DRAIN_POLL_MS);
    evtimer_add(api->drain_timer, &tv);
}

void api_stop(void *arg)
{
    struct api *api = arg;
    http_server_stop_accepting(api->http);
    daemon_hold(api->d);
    on_drain_tick(-1, 0, api);
}

void api_free(struct api *api)
{
    if (api == NULL)
        return;
    /* what handlers wait on goes first, so that their callbacks still have a
     * server to answer through (see http.h) */
    workpool_free(api->hashers);
    live_free(api);
    authsync_free(api);
    db_free(api->db);
    redis_free(api->redis);
    bootstrap_free(api);   /* after what could still call it back */
    http_server_free(api->http);
    throttle_free(api->throttle);
    if (api->drain_timer)
        event_free(api->drain_timer);
    free(api);
}
