/* GET /v1/live: what is live now, by name, paged (?limit, ?after).
 *
 * Live streams are the relay's records sluice:stream:<name> (docs/redis.md),
 * found with SCAN (never KEYS, which would stall Redis), read with MGET, and
 * joined with their title, category and owner from PostgreSQL; each gets its
 * HLS playback URL, <edge-url>/live/<name>/index.m3u8.
 *
 * Who sees what (docs/api.md): without a token (when live-public, the
 * default), the public fields of every live stream that exists in the
 * database: name, title, category, started_at, playback_url. With a token,
 * the same, plus the operational fields (owner, protocol, client, ingest,
 * relay, relay_id, publisher) on the caller's own streams, or on every stream
 * for an admin, who also sees live records whose stream is not in the
 * database (title null). A token only ever adds to what the public sees; a bad
 * token is a 401, never a fall back to the public view.
 *
 * Flights. The list is read by a flight (SCAN, MGET, one query), which
 * answers every call that was waiting when it started; calls that arrive while
 * a flight runs wait for the next one, which starts when it lands. So however
 * many ask, Redis and PostgreSQL see at most one flight at a time, and every
 * answer was read after its call arrived: nothing is cached.
 *
 * Redis down: 503. PostgreSQL down: 503 (titles are part of the answer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "api.h"
#include "call.h"
#include "db.h"
#include "liverec.h"
#include "records.h"
#include "sluice/http.h"
#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/names.h"
#include "sluice/redis.h"

#define LIVE_PAGE 100
#define LIVE_PAGE_MAX 1000
#define LIVE_MAX 10000          /* live streams a flight reads */
#define SCAN_COUNT "1000"
#define SCAN_ROUNDS_MAX 10000   /* 10 M keys at SCAN_COUNT */

struct live_call {
    struct call call;
    bool anonymous;
    int limit;
    char after[STREAM_NAME_MAX + 1];
    TAILQ_ENTRY(live_call) link;
};
TAILQ_HEAD(live_queue, live_call);

/* One read of the whole list, for the calls in <riders>. */
struct flight {
    struct live *live;
    struct live_queue riders;
    char cursor[32];            /* SCAN's */
    unsigned rounds;
    json_t *names;              /* SCAN: names found; then sorted, unique */
    json_t *items;              /* by name: {"name", "rec", and from PostgreSQL
                                   "title", "category", "owner", "owner_id"} */
};

struct live {
    struct api *api;
    struct flight *flying;      /* the flight in the air, or NULL */
    struct live_queue next;     /* calls for the next flight */
};

static void scan(struct flight *f);

/* ---- one call's answer, from a landed flight ---------------------------- */

static json_t *copy(const json_t *item, const char *key)
{
    json_t *v = json_object_get(item, key);
    return v ? json_incref(v) : json_null();
}

/* The entry <l> sees for <item>, or NULL if it does not see it. */
static json_t *entry(const struct live_call *l, const json_t *item)
{
    const json_t *rec = json_object_get(item, "rec");
    const json_t *owner_id = json_object_get(item, "owner_id");
    bool known = json_object_get(item, "title") != NULL;
    bool admin = !l->anonymous && call_is_admin(&l->call);
    if (!known && !admin)
        return NULL;   /* not a stream (any more): only admins see such records */
    const char *name = json_string_value(json_object_get(item, "name"));
    const char *started = liverec_started_at(rec);
    char url[512];
    snprintf(url, sizeof(url), "%s/live/%s/index.m3u8", l->call.api->edge_url, name);
    json_t *e = json_pack("{s:s, s:o, s:o, s:o, s:s}", "name", name,
                          "title", copy(item, "title"), "category", copy(item, "category"),
                          "started_at", started ? json_string(started) : json_null(),
                          "playback_url", url);
    bool mine = !l->anonymous && owner_id && json_integer_value(owner_id) == l->call.who.id;
    if (e == NULL || !(admin || mine))
        return e;
    if (json_object_set_new(e, "owner", copy(item, "owner")) == -1 ||
        liverec_set_ops(e, rec) == -1) {
        json_decref(e);
        return NULL;
    }
    return e;
}

/* The first item named after <after>. */
static size_t first_after(const json_t *items, const char *after)
{
    size_t lo = 0, hi = json_array_size(items);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *n = json_string_value(json_object_get(json_array_get(items, mid), "name"));
        if (strcmp(n, after) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void answer(struct live_call *l, const json_t *items)
{
    json_t *out = json_array();
    const char *next = NULL;
    size_t n = json_array_size(items);
    for (size_t i = first_after(items, l->after); i < n; i++) {
        json_t *e = entry(l, json_array_get(items, i));
        if (e == NULL)
            continue;
        if ((int)json_array_size(out) == l->limit) {
            json_decref(e);
            next = json_string_value(json_object_get(json_array_get(out, l->limit - 1),
                                                     "name"));
            break;
        }
        json_array_append_new(out, e);
    }
    call_reply(&l->call, 200, json_pack("{s:o, s:o}", "streams", out, "next",
                                        next ? json_string(next) : json_null()));
}

/* ---- flights ------------------------------------------------------------ */

static void flight_start(struct live *live);

/* Ends the flight: answers its riders from <items> (NULL: 503, "what" is
 * unavailable), then takes off again for whoever waits. */
static void land(struct flight *f, const char *what)
{
    struct live *live = f->live;
    struct live_call *l;
    live->flying = NULL;
    while ((l = TAILQ_FIRST(&f->riders)) != NULL) {
        TAILQ_REMOVE(&f->riders, l, link);
        if (what)
            call_unavailable(&l->call, what);
        else
            answer(l, f->items);
    }
    json_decref(f->names);
    json_decref(f->items);
    free(f);
    if (live->api == NULL)   /* live_free ran while this flight was in the air */
        free(live);
    else if (!TAILQ_EMPTY(&live->next))
        flight_start(live);
}

static void on_titles(const struct db_result *res, void *arg)
{
    struct flight *f = arg;
    if (db_status(res) != DB_OK) {
        if (db_status(res) == DB_FAILED)
            log_error("live: reading titles: %s (SQLSTATE %s)", db_message(res),
                      db_sqlstate(res));
        land(f, "the database");
        return;
    }
    /* rows come by name, as the items are: one merge */
    size_t i = 0, n = json_array_size(f->items);
    int rows = db_nrows(res);
    for (int k = 0; k < rows; k++) {
        const char *name = db_value(res, k, 0);
        while (i < n && name && strcmp(json_string_value(json_object_get(
                                           json_array_get(f->items, i), "name")), name) < 0)
            i++;
        if (i == n)
            break;
        json_t *item = json_array_get(f->items, i);
        if (strcmp(json_string_value(json_object_get(item, "name")), name) != 0)
            continue;
        const char *title = db_value(res, k, 1), *category = db_value(res, k, 2);
        const char *owner = db_value(res, k, 3);
        json_object_set_new(item, "title", json_string(title ? title : ""));
        json_object_set_new(item, "category", json_string(category ? category : ""));
        json_object_set_new(item, "owner", owner ? json_string(owner) : json_null());
        json_object_set_new(item, "owner_id", json_integer(db_int(res, k, 4)));
    }
    land(f, NULL);
}

static void read_titles(struct flight *f)
{
    static const char sql[] =
        "SELECT s.name, s.title, s.category, u.username, s.owner_id"
        " FROM streams s JOIN users u ON u.id = s.owner_id WHERE s.name = ANY($1::text[])"
        " ORDER BY s.name COLLATE \"C\"";
    size_t n = json_array_size(f->items), len = 3;
    for (size_t i = 0; i < n; i++)
        len += strlen(json_string_value(json_object_get(json_array_get(f->items, i),
                                                        "name"))) + 3;
    /* each name quoted: a stream may be called NULL */
    char *list = malloc(len), *p = list;
    if (list == NULL) {
        land(f, "memory");
        return;
    }
    *p++ = '{';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s\"%s\"", i ? "," : "",
                     json_string_value(json_object_get(json_array_get(f->items, i), "name")));
    strcpy(p, "}");
    const char *params[] = { list };
    int rc = db_query(f->live->api->db, sql, 1, params, on_titles, f);
    free(list);
    if (rc == -1)
        land(f, "the database");
}

static void on_mget(const struct redis_reply *reply, const char *err, void *arg)
{
    struct flight *f = arg;
    if (err != NULL || redis_reply_type(reply) != REDIS_R_ARRAY ||
        redis_reply_len(reply) != json_array_size(f->names)) {
        log_warn("live: MGET failed: %s", err ? err : "unexpected reply");
        land(f, "Redis");
        return;
    }
    size_t n = redis_reply_len(reply);
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(f->names, i));
        json_t *rec = liverec_from_reply(reply, i, name);
        if (rec)
            json_array_append_new(f->items, json_pack("{s:s, s:o}", "name", name, "rec", rec));
    }
    if (json_array_size(f->items) == 0)
        land(f, NULL);
    else
        read_titles(f);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts the names found (bytewise, as PostgreSQL's "C" collation), drops the
 * duplicates SCAN may return, and reads their records. */
static void read_records(struct flight *f)
{
    size_t n = json_array_size(f->names), kept = 0;
    const char **v = malloc((n ? n : 1) * sizeof(*v));
    json_t *sorted = json_array();
    f->items = json_array();
    int rc = -1;
    if (v && sorted && f->items) {
        for (size_t i = 0; i < n; i++)
            v[i] = json_string_value(json_array_get(f->names, i));
        qsort(v, n, sizeof(*v), by_name);
        for (size_t i = 0; i < n; i++) {
            if (kept > 0 && strcmp(v[i], v[kept - 1]) == 0)
                continue;
            json_array_append_new(sorted, json_string(v[i]));
            v[kept++] = v[i];
        }
        rc = kept == 0 ? 0 : liverec_mget(f->live->api->redis, v, kept, on_mget, f);
    }
    free(v);
    json_decref(f->names);
    f->names = sorted;
    if (rc == -1)
        land(f, sorted && f->items ? "Redis" : "memory");
    else if (kept == 0)
        land(f, NULL);
}

static void on_scan(const struct redis_reply *reply, const char *err, void *arg)
{
    struct flight *f = arg;
    const struct redis_reply *cur = NULL, *keys = NULL;
    size_t len = 0;
    const char *cursor = NULL;
    if (err == NULL && redis_reply_type(reply) == REDIS_R_ARRAY &&
        redis_reply_len(reply) == 2) {
        cur = redis_reply_at(reply, 0);
        keys = redis_reply_at(reply, 1);
        cursor = redis_reply_str(cur, &len);
    }
    if (cursor == NULL || len == 0 || len >= sizeof(f->cursor) ||
        redis_reply_type(keys) != REDIS_R_ARRAY) {
        log_warn("live: SCAN failed: %s", err ? err : "unexpected reply");
        land(f, "Redis");
        return;
    }
    for (size_t i = 0; i < redis_reply_len(keys); i++) {
        size_t klen;
        const char *k = redis_reply_str(redis_reply_at(keys, i), &klen);
        size_t plen = sizeof(LIVEREC_KEY_PREFIX) - 1;
        if (k && klen > plen && stream_name_validn(k + plen, klen - plen))
            json_array_append_new(f->names, json_stringn(k + plen, klen - plen));
    }
    memcpy(f->cursor, cursor, len);
    f->cursor[len] = '\0';
    bool done = strcmp(f->cursor, "0") == 0;
    if (!done && (json_array_size(f->names) >= LIVE_MAX || ++f->rounds >= SCAN_ROUNDS_MAX)) {
        log_warn("live: more than %d live streams or %d SCAN rounds; listing those found",
                 LIVE_MAX, SCAN_ROUNDS_MAX);
        done = true;
    }
    if (done)
        read_records(f);
    else
        scan(f);
}

static void scan(struct flight *f)
{
    if (redis_command(f->live->api->redis, on_scan, f, "SCAN %s MATCH %s* COUNT %s",
                      f->cursor, LIVEREC_KEY_PREFIX, SCAN_COUNT) == -1)
        land(f, "Redis");
}

/* Takes every waiting call aboard a new flight. */
static void flight_start(struct live *live)
{
    struct flight *f = calloc(1, sizeof(*f));
    struct live_call *l;
    if (f == NULL || (f->names = json_array()) == NULL) {
        free(f);
        while ((l = TAILQ_FIRST(&live->next)) != NULL) {
            TAILQ_REMOVE(&live->next, l, link);
            call_unavailable(&l->call, "memory");
        }
        return;
    }
    f->live = live;
    TAILQ_INIT(&f->riders);
    TAILQ_CONCAT(&f->riders, &live->next, link);
    snprintf(f->cursor, sizeof(f->cursor), "0");
    live->flying = f;
    scan(f);
}

/* ---- the handler -------------------------------------------------------- */

static void list_live(struct call *c)
{
    struct live_call *l = (struct live_call *)c;
    struct live *live = c->api->live;
    char *after = NULL;
    if (call_page(c, LIVE_PAGE, LIVE_PAGE_MAX, &l->limit, &after) == -1)
        return;
    if (after && !stream_name_valid(after)) {
        free(after);
        call_error(c, 400, "bad_request", "after: not a stream name");
        return;
    }
    snprintf(l->after, sizeof(l->after), "%s", after ? after : "");
    free(after);
    if (!redis_is_up(c->api->redis)) {
        call_unavailable(c, "Redis");
        return;
    }
    TAILQ_INSERT_TAIL(&live->next, l, link);
    if (live->flying == NULL)
        flight_start(live);
}

static void get_live(struct http_request *req)
{
    struct live_call *l = call_new(req, sizeof(*l));
    if (l == NULL)
        return;
    if (http_request_header(req, "Authorization") == NULL && l->call.api->cfg->live_public) {
        l->anonymous = true;
        list_live(&l->call);
        return;
    }
    call_authenticate(&l->call, ROLES_ANY, list_live);
}

int live_start(struct api *api)
{
    struct live *live = calloc(1, sizeof(*live));
    if (live == NULL)
        return -1;
    live->api = api;
    TAILQ_INIT(&live->next);
    api->live = live;
    return 0;
}

void live_free(struct api *api)
{
    struct live *live = api->live;
    struct live_call *l;
    if (live == NULL)
        return;
    while ((l = TAILQ_FIRST(&live->next)) != NULL) {
        TAILQ_REMOVE(&live->next, l, link);
        call_unavailable(&l->call, "the service (shutting down)");
    }
    api->live = NULL;
    if (live->flying)
        live->api = NULL;   /* its query is failed by db_free or redis_free: land frees */
    else
        free(live);
}

const struct http_route live_routes[] = {
    { HTTP_GET, "/v1/live", get_live },
    { 0 },
};
