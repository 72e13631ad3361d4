/* Keeping the in-memory authtable current: see authsync.h. */
#include "authsync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "api.h"
#include "authcache.h"
#include "db.h"
#include "events.h"
#include "records.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/redis.h"

#define RETRY_MS 1000   /* after a failed load */
#define USERS_MAX 10000 /* cached users; past it, the cache starts over */

struct authsync {
    struct api *api;
    struct authcache *table;
    unsigned gen;         /* (re)subscriptions so far */
    unsigned loaded;      /* the subscription the table was loaded under; 0: none */
    bool loading;
    bool reload;          /* load again once the load in flight ends */
    bool redis_up;
    struct event *timer;  /* the next load: periodic, or a retry */
    json_t *users;        /* "<id>": {"name", "role"} */
    unsigned user_epoch;  /* users forgotten so far */
};

/* One load: the subscription it started under. */
struct load {
    struct authsync *s;
    unsigned gen;
};

static void load(struct authsync *s);

static void arm(struct authsync *s, int64_t ms)
{
    struct timeval tv = clock_tv_ms(ms);
    evtimer_add(s->timer, &tv);
}

static bool trusted(const struct authsync *s)
{
    return s && s->redis_up && s->loaded != 0 && s->loaded == s->gen;
}

const struct authcache *authsync_table(const struct api *api)
{
    return trusted(api->sync) ? api->sync->table : NULL;
}

/* ---- users -------------------------------------------------------------- */

static void forget_users(struct authsync *s)
{
    json_object_clear(s->users);
    s->user_epoch++;
}

bool authsync_user(const struct api *api, int64_t id, char *name, size_t namelen,
                   char *role, size_t rolelen)
{
    char key[24];
    if (!trusted(api->sync))
        return false;
    snprintf(key, sizeof(key), "%lld", (long long)id);
    const json_t *u = json_object_get(api->sync->users, key);
    if (u == NULL)
        return false;
    snprintf(name, namelen, "%s", json_string_value(json_object_get(u, "name")));
    snprintf(role, rolelen, "%s", json_string_value(json_object_get(u, "role")));
    return true;
}

unsigned authsync_user_epoch(const struct api *api)
{
    return api->sync ? api->sync->user_epoch : 0;
}

void authsync_user_loaded(struct api *api, unsigned epoch, int64_t id, const char *name,
                          const char *role)
{
    struct authsync *s = api->sync;
    char key[24];
    if (!trusted(s) || epoch != s->user_epoch)
        return;
    if (json_object_size(s->users) >= USERS_MAX)
        json_object_clear(s->users);   /* nothing lost but a query each */
    snprintf(key, sizeof(key), "%lld", (long long)id);
    json_object_set_new(s->users, key, json_pack("{s:s, s:s}", "name", name, "role", role));
}

void authsync_user_deleted(struct api *api, int64_t id)
{
    struct authsync *s = api->sync;
    char key[24];
    if (s == NULL)
        return;
    snprintf(key, sizeof(key), "%lld", (long long)id);
    json_object_del(s->users, key);
    s->user_epoch++;
}

/* ---- the authtable ------------------------------------------------------ */

static void on_loaded(const struct db_result *res, void *arg)
{
    struct load *l = arg;
    struct authsync *s = l->s;
    unsigned gen = l->gen;
    free(l);
    s->loading = false;
    if (s->api == NULL) {   /* freed while this load ran (authsync_free) */
        free(s);
        return;
    }
    json_t *entries = json_array();
    int n = db_nrows(res);
    for (int i = 0; db_status(res) == DB_OK && i < n; i++) {
        if (db_value(res, i, 1) != NULL)   /* the LEFT JOIN row of an empty table */
            json_array_append_new(entries, auth_entry_json(res, i, 1));
    }
    if (db_status(res) != DB_OK || n < 1 ||
        authcache_load(s->table, db_int(res, 0, 0), entries) == -1) {
        json_decref(entries);
        log_warn("authsync: cannot load the authtable (%s); authorize asks PostgreSQL, "
                 "retrying", db_status(res) == DB_OK ? "malformed" : db_message(res));
        api_count(s->api, AM_AUTHCACHE_LOADS, "failed");
        arm(s, RETRY_MS);
        return;
    }
    json_decref(entries);
    api_count(s->api, AM_AUTHCACHE_LOADS, "ok");
    if (gen == s->gen && s->loaded != gen)
        log_info("authsync: %zu streams at version %lld; authorize decides from memory",
                 authcache_size(s->table), (long long)authcache_version(s->table));
    if (gen == s->gen)
        s->loaded = gen;
    if (s->reload || gen != s->gen) {   /* subscribed again meanwhile */
        s->reload = false;
        load(s);
        return;
    }
    arm(s, s->api->cfg->auth_reload_ms);
}

static void load(struct authsync *s)
{
    /* one statement, one snapshot: the version matches the entries */
    static const char sql[] =
        "SELECT a.version, " AUTH_COLUMNS " FROM auth_state a"
        " LEFT JOIN (streams s JOIN stream_keys k ON k.stream_id = s.id) ON true";
    const char *none[1] = { NULL };
    if (s->loading) {
        s->reload = true;
        return;
    }
    struct load *l = malloc(sizeof(*l));
    if (l == NULL) {
        arm(s, RETRY_MS);
        return;
    }
    *l = (struct load){ s, s->gen };
    evtimer_del(s->timer);
    if (db_query(s->api->db, sql, 0, none, on_loaded, l) == -1) {
        free(l);
        arm(s, RETRY_MS);   /* the database is down: authorize answers 503 anyway */
        return;
    }
    s->loading = true;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    load(arg);
}

static void on_subscribed(void *arg)
{
    struct authsync *s = arg;
    s->gen++;   /* events may have been lost: untrusted until loaded again */
    forget_users(s);
    load(s);
}

/* user.deleted: {"type", "id", "username", "at"}. */
static void user_deleted(struct authsync *s, const json_t *ev)
{
    int64_t id;
    if (json_get_int(ev, "id", &id) != 0) {
        log_warn("authsync: a user.deleted event without an id; forgetting every user");
        forget_users(s);
        return;
    }
    authsync_user_deleted(s->api, id);
}

static void on_message(const char *channel, const char *msg, size_t len, void *arg)
{
    (void)channel;
    struct authsync *s = arg;
    json_t *ev = json_parse(msg, len, NULL, 0);
    const char *type, *stream;
    int64_t version;
    if (ev == NULL || json_get_str(ev, "type", &type) != 0) {
        log_warn("authsync: an unreadable message on " EVENTS_CHANNEL);
        json_decref(ev);
        return;
    }
    if (strcmp(type, "user.deleted") == 0) {
        user_deleted(s, ev);
        json_decref(ev);
        return;
    }
    bool created = strcmp(type, "stream.created") == 0 ||
                   strcmp(type, "stream.updated") == 0 || strcmp(type, "key.rotated") == 0;
    bool deleted = strcmp(type, "stream.deleted") == 0;
    if ((created || deleted) &&
        (json_get_str(ev, "stream", &stream) != 0 || json_get_int(ev, "version", &version) != 0 ||
         authcache_apply(s->table, stream, version,
                         deleted ? NULL : json_object_get(ev, "auth")) == -1)) {
        /* a change we cannot apply: the table may be wrong until reloaded */
        log_warn("authsync: a malformed %s event; reloading the authtable", type);
        s->loaded = 0;
        load(s);
    }
    json_decref(ev);
}

void authsync_changed(struct api *api, const char *name, int64_t version, const json_t *auth)
{
    struct authsync *s = api->sync;
    if (s && authcache_apply(s->table, name, version, auth) == -1) {
        log_error("authsync: cannot apply our own change to %s; reloading", name);
        s->loaded = 0;
        load(s);
    }
}

void authsync_redis_state(struct api *api, bool up)
{
    struct authsync *s = api->sync;
    if (s == NULL)
        return;
    s->redis_up = up;
    if (!up && s->loaded) {
        /* the subscriber goes with the command connection: whatever is
         * published now is lost to us until we resubscribe and reload */
        log_info("authsync: Redis is down; authorize and callers come from PostgreSQL");
        s->loaded = 0;
    }
    if (!up)
        forget_users(s);
}

int authsync_start(struct api *api)
{
    if (!api->cfg->auth_cache) {
        log_info("authsync: auth-cache is off; authorize asks PostgreSQL every time");
        return 0;
    }
    struct authsync *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    api->sync = s;
    s->api = api;
    s->redis_up = redis_is_up(api->redis);
    if ((s->table = authcache_new()) == NULL || (s->users = json_object()) == NULL ||
        (s->timer = evtimer_new(api->d->base, on_timer, s)) == NULL ||
        redis_subscribe(api->redis, EVENTS_CHANNEL, on_message, on_subscribed, s) == -1) {
        log_error("authsync: cannot set up");
        return -1;   /* authsync_free cleans up */
    }
    return 0;
}

void authsync_free(struct api *api)
{
    struct authsync *s = api->sync;
    if (s == NULL)
        return;
    if (s->timer)
        event_free(s->timer);
    authcache_free(s->table);
    json_decref(s->users);
    api->sync = NULL;
    if (s->loading)
        s->api = NULL;   /* the load's callback (db_free runs it) frees <s> */
    else
        free(s);
}
