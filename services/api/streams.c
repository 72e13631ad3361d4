/* Streams and their keys: POST/GET /v1/streams, GET/PATCH/DELETE
 * /v1/streams/{name}, POST /v1/streams/{name}/key.
 *
 * Publishers see and change only their own streams (another's is a 404, so
 * names are not probed); admins see all. Every change is one SQL statement
 * (data-modifying CTEs), so it is atomic without a transaction spanning round
 * trips, and bumps auth_state.version in that same statement; the change is
 * then published on sluice:events, and only then answered. A key is shown
 * once, in the answer that made it; the database keeps its SHA-256. Each
 * change writes its audit row in its statement too (audit.h): the caller's
 * id, name and address are always the last three parameters. The change also
 * goes into the in-memory authtable (authsync.h) before the reply.
 *
 * The two reads (GET /v1/streams and /v1/streams/{name}) add each stream's
 * live state: after the query, one MGET of the page's relay records
 * sluice:stream:<name> (liverec.h, as GET /v1/live reads them). Redis down or
 * failing does not fail the read: the streams come with "live": null. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"
#include "audit.h"
#include "authsync.h"
#include "call.h"
#include "db.h"
#include "events.h"
#include "keys.h"
#include "liverec.h"
#include "records.h"
#include "sluice/http.h"
#include "sluice/log.h"
#include "sluice/names.h"
#include "sluice/redis.h"

#define STREAMS_PAGE 100
#define STREAMS_PAGE_MAX 1000

/* The owner filter: $2 is NULL for an admin, else the caller's id. */
#define OWNED "($2::bigint IS NULL OR owner_id = $2)"

/* Bumps the version only if the statement will find the stream. */
#define BUMP_IF_FOUND                                                          \
    "v AS (UPDATE auth_state SET version = version + 1"                        \
    " WHERE EXISTS (SELECT 1 FROM streams WHERE name = $1 AND " OWNED ")"      \
    " RETURNING version)"

/* The answer of every change: the stream and its new auth entry. */
#define CHANGED_ROW                                                            \
    " SELECT " STREAM_COLUMNS ", " AUTH_COLUMNS                                \
    " FROM s JOIN users u ON u.id = s.owner_id JOIN stream_keys k ON k.stream_id = s.id"

static const char sql_create[] =
    "WITH v AS (UPDATE auth_state SET version = version + 1 RETURNING version),"
    " o AS (SELECT id FROM users WHERE username = $4),"
    " s AS (INSERT INTO streams (name, title, category, owner_id, passphrase, disabled,"
    "   record, auth_version)"
    "   SELECT $1, $2, $3, o.id, $5, $6, $7, v.version FROM o, v RETURNING *),"
    " ins AS (INSERT INTO stream_keys (key_sha256, stream_id)"
    "   SELECT decode($8, 'hex'), s.id FROM s RETURNING key_sha256, stream_id),"
    " audit AS (" AUDIT_INSERT(AUDIT_STREAM_CREATED, "s.name",
                               "jsonb_build_object('owner', $4::text, 'title', s.title,"
                               " 'category', s.category, 'passphrase', s.passphrase IS NOT NULL,"
                               " 'disabled', s.disabled, 'record', s.record)",
                               "s", "$9", "$10", "$11") ")"
    " SELECT " STREAM_COLUMNS ", " AUTH_COLUMNS
    " FROM s JOIN users u ON u.id = s.owner_id JOIN ins k ON k.stream_id = s.id";

static const char sql_list[] =
    "SELECT " STREAM_COLUMNS " FROM streams s JOIN users u ON u.id = s.owner_id"
    " WHERE ($1::bigint IS NULL OR s.owner_id = $1) AND s.name > $2"
    " ORDER BY s.name LIMIT $3";

static const char sql_get[] =
    "SELECT " STREAM_COLUMNS " FROM streams s JOIN users u ON u.id = s.owner_id"
    " WHERE s.name = $1 AND ($2::bigint IS NULL OR s.owner_id = $2)";

static const char sql_patch[] =
    "WITH " BUMP_IF_FOUND ","
    " s AS (UPDATE streams SET"
    "   title = coalesce($3, title),"
    "   category = coalesce($4, category),"
    "   passphrase = CASE $5::text WHEN 'set' THEN $6 WHEN 'clear' THEN NULL"
    "     ELSE passphrase END,"
    "   disabled = coalesce($7::boolean, disabled),"
    "   record = coalesce($8::boolean, record),"
    "   updated_at = now(), auth_version = v.version"
    "   FROM v WHERE name = $1 AND " OWNED " RETURNING streams.*),"
    " audit AS (" AUDIT_INSERT(AUDIT_STREAM_UPDATED, "s.name",
                               "jsonb_strip_nulls(jsonb_build_object('title', $3::text,"
                               " 'category', $4::text, 'passphrase', CASE $5::text"
                               " WHEN 'set' THEN 'set' WHEN 'clear' THEN 'removed' END,"
                               " 'disabled', $7::boolean, 'record', $8::boolean))",
                               "s", "$9", "$10", "$11") ")"
    CHANGED_ROW;

static const char sql_rotate[] =
    "WITH " BUMP_IF_FOUND ","
    " s AS (UPDATE streams SET updated_at = now(), auth_version = v.version"
    "   FROM v WHERE name = $1 AND " OWNED " RETURNING streams.*),"
    " ins AS (INSERT INTO stream_keys (key_sha256, stream_id)"
    "   SELECT decode($3, 'hex'), s.id FROM s"
    "   ON CONFLICT (stream_id) DO UPDATE"
    "   SET key_sha256 = excluded.key_sha256, created_at = now()"
    "   RETURNING key_sha256, stream_id),"
    " audit AS (" AUDIT_INSERT(AUDIT_KEY_ROTATED, "s.name", "NULL", "s", "$4", "$5", "$6") ")"
    " SELECT " STREAM_COLUMNS ", " AUTH_COLUMNS
    " FROM s JOIN users u ON u.id = s.owner_id JOIN ins k ON k.stream_id = s.id";

static const char sql_delete[] =
    "WITH " BUMP_IF_FOUND ","
    " d AS (DELETE FROM streams s USING v WHERE s.name = $1 AND " OWNED
    "   RETURNING s.name, v.version),"
    " audit AS (" AUDIT_INSERT(AUDIT_STREAM_DELETED, "d.name", "NULL", "d", "$3", "$4", "$5") ")"
    " SELECT name, version FROM d";

struct stream_call {
    struct call call;
    const char *name;                /* the path's, or the body's */
    union {
        struct stream_req create;
        struct stream_patch patch;
    } in;
    char key[KEY_LEN + 1];           /* a new key, shown once */
    int limit;
    json_t *body;                    /* a read's answer, waiting for live state */
    json_t *streams;                 /* its stream objects (a reference) */
};

static const char *boolean_param(bool set, bool value)
{
    return set ? (value ? "t" : "f") : NULL;
}

/* Changes that reach ingest need Redis to announce them: refuse before
 * changing anything rather than change silently. Returns 0, or -1 after
 * replying 503. */
static int need_redis(struct call *c)
{
    if (redis_is_up(c->api->redis))
        return 0;
    call_unavailable(c, "Redis (needed to announce the change)");
    return -1;
}

/* The path's stream name; replies 404 for one no stream could have. */
static bool path_name(struct stream_call *s)
{
    s->name = s->call.req->params[0];
    if (stream_name_valid(s->name))
        return true;
    call_error(&s->call, 404, "not_found", "no such stream");
    return false;
}

/* Publishes <type> with the auth entry of <res> (a CHANGED_ROW), then replies
 * <status>: {"stream", "key"} when a key was made, else the stream. */
static void announce(struct stream_call *s, const struct db_result *res, const char *type,
                     int status)
{
    json_t *stream = stream_json(res, 0, 0);
    json_t *auth = auth_entry_json(res, 0, STREAM_NCOLS);
    long long version = db_int(res, 0, STREAM_NCOLS + 4);
    if (stream == NULL || auth == NULL) {
        json_decref(stream);
        json_decref(auth);
        call_error(&s->call, 500, "internal", "internal error");
        return;
    }
    json_t *body = s->key[0] ? json_pack("{s:o, s:s}", "stream", stream, "key", s->key)
                             : stream;
    OPENSSL_cleanse(s->key, sizeof(s->key));
    authsync_changed(s->call.api, s->name, version, auth);
    log_info("streams: %s %s by %s", type, s->name, s->call.who.name);
    event_publish_then_reply(&s->call, event_message(type, s->name, version, auth), status,
                             body);
}

/* A change found nothing (or failed). Returns true if it replied. */
static bool change_failed(struct stream_call *s, const struct db_result *res,
                          const char *what)
{
    if (db_status(res) != DB_OK) {
        call_db_error(&s->call, res, what);
        return true;
    }
    if (db_nrows(res) == 0) {
        call_error(&s->call, 404, "not_found", "no such stream");
        return true;
    }
    return false;
}

/* ---- POST /v1/streams --------------------------------------------------- */

static void on_created(const struct db_result *res, void *arg)
{
    struct stream_call *s = arg;
    if (db_status(res) == DB_FAILED && strcmp(db_sqlstate(res), DB_UNIQUE_VIOLATION) == 0) {
        call_error(&s->call, 409, "conflict", "a stream with this name exists");
        return;
    }
    if (db_status(res) != DB_OK) {
        call_db_error(&s->call, res, "creating a stream");
        return;
    }
    if (db_nrows(res) == 0) {
        call_error(&s->call, 400, "bad_request", "owner: no such user");
        return;
    }
    announce(s, res, "stream.created", 201);
}

static void create_stream(struct call *c)
{
    struct stream_call *s = (struct stream_call *)c;
    struct stream_req *in = &s->in.create;
    char err[160], hash[SHA256_HEX_LEN + 1];
    if (req_stream(c->body, in, err, sizeof(err)) == -1) {
        call_error(c, 400, "bad_request", "%s", err);
        return;
    }
    if (!call_is_admin(c) && in->owner && strcmp(in->owner, c->who.name) != 0) {
        call_error(c, 403, "forbidden", "publishers create streams for themselves only");
        return;
    }
    if (need_redis(c) == -1)
        return;
    if (key_generate(KEY_PREFIX, s->key, sizeof(s->key)) == -1) {
        call_error(c, 500, "internal", "internal error");
        return;
    }
    s->name = in->name;
    key_sha256_hex(s->key, strlen(s->key), hash);
    struct audit_by by;
    audit_by(c, &by);
    const char *params[] = { in->name, in->title, in->category,
                             in->owner ? in->owner : c->who.name, in->passphrase,
                             boolean_param(true, in->disabled),
                             boolean_param(true, in->record), hash,
                             by.params[0], by.params[1], by.params[2] };
    if (db_query(c->api->db, sql_create, 11, params, on_created, s) == -1)
        call_unavailable(c, "the database");
}

static void post_streams(struct http_request *req)
{
    struct stream_call *s = call_new(req, sizeof(*s));
    if (s && call_read_body(&s->call) == 0)
        call_authenticate(&s->call, ROLES_ANY, create_stream);
}

/* ---- live state of GET /v1/streams and /v1/streams/{name} -------------- */

/* Sets on <stream> its live state: "live" null when unknown (<known> false),
 * else whether <rec> is a record; with a record, its started_at and
 * operational fields (the caller owns the stream, or is an admin, so sees
 * them as in GET /v1/live). Returns 0 or -1 (memory). */
static int set_live(json_t *stream, bool known, const json_t *rec)
{
    if (!known)
        return json_object_set_new(stream, "live", json_null());
    if (json_object_set_new(stream, "live", json_boolean(rec != NULL)) == -1)
        return -1;
    if (rec == NULL)
        return 0;
    const char *started = liverec_started_at(rec);
    if (json_object_set_new(stream, "started_at",
                            started ? json_string(started) : json_null()) == -1)
        return -1;
    return liverec_set_ops(stream, rec);
}

/* Replies 200 with the body, every stream of which has its live state from
 * <reply> (an MGET of their records), or null when <reply> is NULL. */
static void reply_with_live(struct stream_call *s, const struct redis_reply *reply)
{
    size_t n = json_array_size(s->streams);
    json_t *body = s->body;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *stream = json_array_get(s->streams, i);
        json_t *rec = reply ? liverec_from_reply(reply, i, json_string_value(
                                                     json_object_get(stream, "name")))
                            : NULL;
        rc = set_live(stream, reply != NULL, rec);
        json_decref(rec);
    }
    json_decref(s->streams);
    s->streams = NULL;
    s->body = NULL;
    if (rc == -1) {
        json_decref(body);
        call_error(&s->call, 500, "internal", "internal error");
        return;
    }
    call_reply(&s->call, 200, body);
}

static void on_records(const struct redis_reply *reply, const char *err, void *arg)
{
    struct stream_call *s = arg;
    if (err != NULL || redis_reply_type(reply) != REDIS_R_ARRAY ||
        redis_reply_len(reply) != json_array_size(s->streams)) {
        log_warn("streams: reading live records: %s; live state unknown",
                 err ? err : "unexpected reply");
        reply = NULL;
    }
    reply_with_live(s, reply);
}

/* Answers <body> (stolen) once the streams of <streams> (borrowed, objects in
 * <body>) have their live state, read in one MGET. */
static void reply_streams(struct stream_call *s, json_t *body, json_t *streams)
{
    size_t n = json_array_size(streams);
    const char **names = malloc((n ? n : 1) * sizeof(*names));
    s->body = body;
    s->streams = json_incref(streams);
    if (body == NULL || streams == NULL || names == NULL) {
        free(names);
        json_decref(s->streams);
        json_decref(s->body);
        s->streams = s->body = NULL;
        call_error(&s->call, 500, "internal", "internal error");
        return;
    }
    for (size_t i = 0; i < n; i++)
        names[i] = json_string_value(json_object_get(json_array_get(streams, i), "name"));
    int rc = n == 0 ? -1 : liverec_mget(s->call.api->redis, names, n, on_records, s);
    free(names);
    if (rc == -1)   /* nothing to read, or Redis down: at once */
        reply_with_live(s, NULL);
}

/* ---- GET /v1/streams ---------------------------------------------------- */

static void on_list(const struct db_result *res, void *arg)
{
    struct stream_call *s = arg;
    if (db_status(res) != DB_OK) {
        call_db_error(&s->call, res, "listing streams");
        return;
    }
    json_t *list = json_array();
    int n = db_nrows(res);
    for (int i = 0; i < n; i++)
        json_array_append_new(list, stream_json(res, i, 0));
    const char *last = n == s->limit ? db_value(res, n - 1, 0) : NULL;
    json_t *body = json_pack("{s:O, s:o}", "streams", list, "next",
                             last ? json_string(last) : json_null());
    reply_streams(s, body, list);
    json_decref(list);
}

static void list_streams(struct call *c)
{
    struct stream_call *s = (struct stream_call *)c;
    char *after = NULL, limit[16];
    if (call_page(c, STREAMS_PAGE, STREAMS_PAGE_MAX, &s->limit, &after) == -1)
        return;
    snprintf(limit, sizeof(limit), "%d", s->limit);
    const char *params[] = { call_owner_filter(c), after ? after : "", limit };
    int rc = db_query(c->api->db, sql_list, 3, params, on_list, s);
    free(after);
    if (rc == -1)
        call_unavailable(c, "the database");
}

static void get_streams(struct http_request *req)
{
    struct stream_call *s = call_new(req, sizeof(*s));
    if (s)
        call_authenticate(&s->call, ROLES_ANY, list_streams);
}

/* ---- GET /v1/streams/{name} --------------------------------------------- */

static void on_got(const struct db_result *res, void *arg)
{
    struct stream_call *s = arg;
    if (change_failed(s, res, "reading a stream"))
        return;
    json_t *stream = stream_json(res, 0, 0);
    json_t *one = json_array();
    if (stream && one)
        json_array_append(one, stream);
    reply_streams(s, stream, one);
    json_decref(one);
}

static void read_stream(struct call *c)
{
    struct stream_call *s = (struct stream_call *)c;
    if (!path_name(s))
        return;
    const char *params[] = { s->name, call_owner_filter(c) };
    if (db_query(c->api->db, sql_get, 2, params, on_got, s) == -1)
        call_unavailable(c, "the database");
}

static void get_stream(struct http_request *req)
{
    struct stream_call *s = call_new(req, sizeof(*s));
    if (s)
        call_authenticate(&s->call, ROLES_ANY, read_stream);
}

/* ---- PATCH /v1/streams/{name} ------------------------------------------- */

static void on_patched(const struct db_result *res, void *arg)
{
    struct stream_call *s = arg;
    if (!change_failed(s, res, "changing a stream"))
        announce(s, res, "stream.updated", 200);
}

static void patch_stream(struct call *c)
{
    struct stream_call *s = (struct stream_call *)c;
    struct stream_patch *in = &s->in.patch;
    char err[160];
    if (!path_name(s))
        return;
    if (req_stream_patch(c->body, in, err, sizeof(err)) == -1) {
        call_error(c, 400, "bad_request", "%s", err);
        return;
    }
    if (need_redis(c) == -1)
        return;
    static const char *const pass_ops[] = { "keep", "set", "clear" };
    struct audit_by by;
    audit_by(c, &by);
    const char *params[] = { s->name, call_owner_filter(c), in->title, in->category,
                             pass_ops[in->pass_op], in->passphrase,
                             boolean_param(in->disabled.set, in->disabled.value),
                             boolean_param(in->record.set, in->record.value),
                             by.params[0], by.params[1], by.params[2] };
    if (db_query(c->api->db, sql_patch, 11, params, on_patched, s) == -1)
        call_unavailable(c, "the database");
}

static void patch_streams(struct http_request *req)
{
    struct stream_call *s = call_new(req, sizeof(*s));
    if (s && call_read_body(&s->call) == 0)
        call_authenticate(&s->call, ROLES_ANY, patch_stream);
}

/* ---- DELETE /v1/streams/{name} ------------------------------------------ */

static void on_deleted(const struct db_result *res, void *arg)
{
    struct stream_call *s = arg;
    if (change_failed(s, res, "deleting a stream"))
        return;
    log_info("streams: stream.deleted %s by %s", s->name, s->call.who.name);
    authsync_changed(s->call.api, s->name, db_int(res, 0, 1), NULL);
    event_publish_then_reply(&s->call,
                             event_message("stream.deleted", s->name, db_int(res, 0, 1),
                                           NULL),
                             204, NULL);
}

static void delete_stream(struct call *c)
{
    struct stream_call *s = (struct stream_call *)c;
    if (!path_name(s) || need_redis(c) == -1)
        return;
    struct audit_by by;
    audit_by(c, &by);
    const char *params[] = { s->name, call_owner_filter(c), by.params[0], by.params[1],
                             by.params[2] };
    if (db_query(c->api->db, sql_delete, 5, params, on_deleted, s) == -1)
        call_unavailable(c, "the database");
}

static void delete_streams(struct http_request *req)
{
    struct stream_call *s = call_new(req, sizeof(*s));
    if (s)
        call_authenticate(&s->call, ROLES_ANY, delete_stream);
}

/* ---- POST /v1/streams/{name}/key ---------------------------------------- */

static void on_rotated(const struct db_result *res, void *arg)
{
    struct stream_call *s = arg;
    if (!change_failed(s, res, "rotating a key"))
        announce(s, res, "key.rotated", 200);
}

static void rotate_key(struct call *c)
{
    struct stream_call *s = (struct stream_call *)c;
    char hash[SHA256_HEX_LEN + 1];
    if (!path_name(s) || need_redis(c) == -1)
        return;
    if (key_generate(KEY_PREFIX, s->key, sizeof(s->key)) == -1) {
        call_error(c, 500, "internal", "internal error");
        return;
    }
    key_sha256_hex(s->key, strlen(s->key), hash);
    struct audit_by by;
    audit_by(c, &by);
    const char *params[] = { s->name, call_owner_filter(c), hash, by.params[0], by.params[1],
                             by.params[2] };
    if (db_query(c->api->db, sql_rotate, 6, params, on_rotated, s) == -1)
        call_unavailable(c, "the database");
}

static void post_key(struct http_request *req)
{
    struct stream_call *s = call_new(req, sizeof(*s));
    if (s)
        call_authenticate(&s->call, ROLES_ANY, rotate_key);
}

const struct http_route streams_routes[] = {
    { HTTP_GET, "/v1/streams", get_streams },
    { HTTP_POST, "/v1/streams", post_streams },
    { HTTP_GET, "/v1/streams/{}", get_stream },
    { HTTP_PATCH, "/v1/streams/{}", patch_streams },
    { HTTP_DELETE, "/v1/streams/{}", delete_streams },
    { HTTP_POST, "/v1/streams/{}/key", post_key },
    { 0 },
};
