/* GET /v1/live: what is live now, by name, paged (?limit, ?after).
 *
 * Live streams are the relay's records sluice:stream:<name> (docs/redis.md),
 * found with SCAN (never KEYS, which would stall Redis), read with MGET, and
 * joined with their title and category from PostgreSQL; each gets its HLS
 * playback URL, <edge-url>/live/<name>/index.m3u8.
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
 * Redis down: 503. PostgreSQL down: 503 (titles are part of the answer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "call.h"
#include "db.h"
#include "sluice/http.h"
#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/names.h"
#include "sluice/redis.h"

#define LIVE_PAGE 100
#define LIVE_PAGE_MAX 1000
#define LIVE_MAX 10000          /* live streams looked at per call */
#define SCAN_COUNT "1000"
#define SCAN_ROUNDS_MAX 10000   /* 10 M keys at SCAN_COUNT */
#define STREAM_KEY_PREFIX "sluice:stream:"
#define FIELD_MAX 256           /* bytes of a field taken from a record */

struct live_call {
    struct call call;
    bool anonymous;
    int limit;
    char after[STREAM_NAME_MAX + 1];
    char cursor[32];            /* SCAN's */
    unsigned rounds;
    json_t *names;              /* SCAN: names found (strings), then the page's */
    json_t *records;            /* MGET: the page's records, in name order */
    bool more;                  /* a page follows this one */
};

static void live_cleanup(struct call *c)
{
    struct live_call *l = (struct live_call *)c;
    json_decref(l->names);
    json_decref(l->records);
    l->names = l->records = NULL;
}

static void scan(struct live_call *l);

/* ---- the answer --------------------------------------------------------- */

/* A string field of a record, if it is a short printable string. */
static json_t *field(const json_t *rec, const char *key)
{
    const char *v;
    if (json_get_str(rec, key, &v) != 0 || strlen(v) > FIELD_MAX)
        return json_null();
    for (const char *p = v; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return json_null();
    }
    return json_string(v);
}

/* The entry of record <rec>, with database row <row> of <res> (-1: none). */
static json_t *entry(struct live_call *l, const json_t *rec, const struct db_result *res,
                     int row)
{
    const char *name = json_string_value(json_object_get(rec, "name"));
    const char *started;
    char url[512];
    snprintf(url, sizeof(url), "%s/live/%s/index.m3u8", l->call.api->edge_url, name);
    bool started_ok = json_get_str(rec, "started_at", &started) == 0 &&
                      rfc3339_valid(started);
    const char *title = row >= 0 ? db_value(res, row, 1) : NULL;
    const char *category = row >= 0 ? db_value(res, row, 2) : NULL;
    json_t *e = json_pack("{s:s, s:o, s:o, s:o, s:s}", "name", name,
                          "title", title ? json_string(title) : json_null(),
                          "category", category ? json_string(category) : json_null(),
                          "started_at", started_ok ? json_string(started) : json_null(),
                          "playback_url", url);
    const char *mine = row >= 0 ? db_value(res, row, 4) : NULL;
    bool full = !l->anonymous && (call_is_admin(&l->call) || (mine && strcmp(mine, "t") == 0));
    if (e == NULL || !full)
        return e;
    const char *owner = row >= 0 ? db_value(res, row, 3) : NULL;
    static const char *const ops[] = { "protocol", "client", "ingest", "relay", "relay_id",
                                       "publisher" };
    json_object_set_new(e, "owner", owner ? json_string(owner) : json_null());
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        json_object_set_new(e, ops[i], field(rec, ops[i]));
    return e;
}

static void on_streams(const struct db_result *res, void *arg)
{
    struct live_call *l = arg;
    struct call *c = &l->call;
    if (db_status(res) != DB_OK) {
        call_db_error(c, res, "reading live streams' titles");
        return;
    }
    json_t *out = json_array();
    size_t i;
    json_t *rec;
    int rows = db_nrows(res);
    json_array_foreach(l->records, i, rec) {
        const char *name = json_string_value(json_object_get(rec, "name"));
        int row = -1;
        for (int k = 0; k < rows && row == -1; k++) {
            const char *v = db_value(res, k, 0);
            if (v && strcmp(v, name) == 0)
                row = k;
        }
        if (row == -1 && (l->anonymous || !call_is_admin(c)))
            continue;   /* not a stream (any more): only admins see such records */
        json_array_append_new(out, entry(l, rec, res, row));
    }
    const char *next = l->more ? json_string_value(json_array_get(l->names, l->limit - 1))
                               : NULL;
    call_reply(c, 200, json_pack("{s:o, s:o}", "streams", out, "next",
                                 next ? json_string(next) : json_null()));
}

/* ---- the steps: SCAN, MGET, PostgreSQL ---------------------------------- */

static void read_titles(struct live_call *l)
{
    static const char sql[] =
        "SELECT s.name, s.title, s.category, u.username, s.owner_id = $2"
        " FROM streams s JOIN users u ON u.id = s.owner_id WHERE s.name = ANY($1::text[])";
    struct call *c = &l->call;
    size_t n = json_array_size(l->records), len = 3;
    for (size_t i = 0; i < n; i++)
        len += strlen(json_string_value(json_object_get(json_array_get(l->records, i),
                                                        "name"))) + 3;
    /* each name quoted: a stream may be called NULL */
    char *list = malloc(len), *p = list;
    if (list == NULL) {
        call_unavailable(c, "memory");
        return;
    }
    *p++ = '{';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s\"%s\"", i ? "," : "",
                     json_string_value(json_object_get(json_array_get(l->records, i), "name")));
    strcpy(p, "}");
    const char *params[] = { list, l->anonymous ? NULL : c->who.id_text };
    int rc = db_query(c->api->db, sql, 2, params, on_streams, l);
    free(list);
    if (rc == -1)
        call_unavailable(c, "the database");
}

/* Keeps the record of <name> if it is one: a JSON object naming that stream. */
static void take_record(struct live_call *l, const char *name, const char *text, size_t len)
{
    char err[80];
    json_t *rec = json_parse(text, len, err, sizeof(err));
    const char *inner;
    if (rec == NULL || !json_is_object(rec) || json_get_str(rec, "name", &inner) != 0 ||
        strcmp(inner, name) != 0) {
        log_warn("live: %s%s is not a stream record (%s); skipped", STREAM_KEY_PREFIX, name,
                 rec ? "not an object naming it" : err);
        json_decref(rec);
        return;
    }
    json_array_append_new(l->records, rec);
}

static void on_mget(const struct redis_reply *reply, const char *err, void *arg)
{
    struct live_call *l = arg;
    struct call *c = &l->call;
    if (err != NULL || redis_reply_type(reply) != REDIS_R_ARRAY ||
        redis_reply_len(reply) != json_array_size(l->names)) {
        log_warn("live: MGET failed: %s", err ? err : "unexpected reply");
        call_unavailable(c, "Redis");
        return;
    }
    size_t n = redis_reply_len(reply);
    for (size_t i = 0; i < n && (int)i < l->limit; i++) {
        const struct redis_reply *v = redis_reply_at(reply, i);
        size_t len;
        const char *text = redis_reply_type(v) == REDIS_R_STRING ? redis_reply_str(v, &len)
                                                                 : NULL;
        if (text)   /* nil: expired since SCAN saw it */
            take_record(l, json_string_value(json_array_get(l->names, i)), text, len);
    }
    if (json_array_size(l->records) == 0) {
        json_t *next = l->more ? json_incref(json_array_get(l->names, l->limit - 1))
                               : json_null();
        call_reply(c, 200, json_pack("{s:[], s:o}", "streams", "next", next));
        return;
    }
    read_titles(l);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts the names found, keeps those after the cursor, one page of them (and
 * whether more follow), and reads their records. */
static void read_page(struct live_call *l)
{
    struct call *c = &l->call;
    size_t n = json_array_size(l->names), kept = 0;
    const char **v = malloc((n ? n : 1) * sizeof(*v));
    json_t *page = json_array();
    l->records = json_array();
    if (v == NULL || page == NULL || l->records == NULL) {
        free(v);
        json_decref(page);
        call_unavailable(c, "memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_string_value(json_array_get(l->names, i));
    qsort(v, n, sizeof(*v), by_name);
    for (size_t i = 0; i < n; i++) {
        if ((i > 0 && strcmp(v[i], v[i - 1]) == 0) || strcmp(v[i], l->after) <= 0)
            continue;   /* SCAN may return a key twice */
        if ((int)kept == l->limit) {
            l->more = true;
            break;
        }
        json_array_append_new(page, json_string(v[i]));
        kept++;
    }
    free(v);
    json_decref(l->names);
    l->names = page;
    if (kept == 0) {
        call_reply(c, 200, json_pack("{s:[], s:n}", "streams", "next"));
        return;
    }
    const char **argv = malloc((kept + 1) * sizeof(*argv));
    char (*keys)[sizeof(STREAM_KEY_PREFIX) + STREAM_NAME_MAX] = malloc(kept * sizeof(*keys));
    int rc = -1;
    if (argv && keys) {
        argv[0] = "MGET";
        for (size_t i = 0; i < kept; i++) {
            snprintf(keys[i], sizeof(keys[i]), STREAM_KEY_PREFIX "%s",
                     json_string_value(json_array_get(page, i)));
            argv[i + 1] = keys[i];
        }
        rc = redis_commandv(c->api->redis, on_mget, l, (int)kept + 1, argv, NULL);
    }
    free(argv);
    free(keys);
    if (rc == -1)
        call_unavailable(c, "Redis");
}

static void on_scan(const struct redis_reply *reply, const char *err, void *arg)
{
    struct live_call *l = arg;
    const struct redis_reply *cur = NULL, *keys = NULL;
    size_t len = 0;
    const char *cursor = NULL;
    if (err == NULL && redis_reply_type(reply) == REDIS_R_ARRAY &&
        redis_reply_len(reply) == 2) {
        cur = redis_reply_at(reply, 0);
        keys = redis_reply_at(reply, 1);
        cursor = redis_reply_str(cur, &len);
    }
    if (cursor == NULL || len == 0 || len >= sizeof(l->cursor) ||
        redis_reply_type(keys) != REDIS_R_ARRAY) {
        log_warn("live: SCAN failed: %s", err ? err : "unexpected reply");
        call_unavailable(&l->call, "Redis");
        return;
    }
    for (size_t i = 0; i < redis_reply_len(keys); i++) {
        size_t klen;
        const char *k = redis_reply_str(redis_reply_at(keys, i), &klen);
        size_t plen = sizeof(STREAM_KEY_PREFIX) - 1;
        if (k && klen > plen && stream_name_validn(k + plen, klen - plen))
            json_array_append_new(l->names, json_stringn(k + plen, klen - plen));
    }
    memcpy(l->cursor, cursor, len);
    l->cursor[len] = '\0';
    bool done = strcmp(l->cursor, "0") == 0;
    if (!done && (json_array_size(l->names) >= LIVE_MAX || ++l->rounds >= SCAN_ROUNDS_MAX)) {
        log_warn("live: more than %d live streams or %d SCAN rounds; listing those found",
                 LIVE_MAX, SCAN_ROUNDS_MAX);
        done = true;
    }
    if (done)
        read_page(l);
    else
        scan(l);
}

static void scan(struct live_call *l)
{
    if (redis_command(l->call.api->redis, on_scan, l, "SCAN %s MATCH %s* COUNT %s",
                      l->cursor, STREAM_KEY_PREFIX, SCAN_COUNT) == -1)
        call_unavailable(&l->call, "Redis");
}

static void list_live(struct call *c)
{
    struct live_call *l = (struct live_call *)c;
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
    if ((l->names = json_array()) == NULL) {
        call_unavailable(c, "memory");
        return;
    }
    snprintf(l->cursor, sizeof(l->cursor), "0");
    scan(l);
}

static void get_live(struct http_request *req)
{
    struct live_call *l = call_new(req, sizeof(*l));
    if (l == NULL)
        return;
    l->call.cleanup = live_cleanup;
    if (http_request_header(req, "Authorization") == NULL && l->call.api->cfg->live_public) {
        l->anonymous = true;
        list_live(&l->call);
        return;
    }
    call_authenticate(&l->call, ROLES_ANY, list_live);
}

const struct http_route live_routes[] = {
    { HTTP_GET, "/v1/live", get_live },
    { 0 },
};
