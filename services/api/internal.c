/* The endpoints other daemons call with the service token (internal-token):
 *
 *   GET  /internal/v1/authtable   every stream's auth entry, with the version
 *   POST /internal/v1/authorize   one decision: allow (the canonical stream
 *                                 name and its passphrase) or deny (a code)
 *
 * Deny codes are those ingest answers SRT clients with: 1400 malformed, 1401
 * bad key or session, 1403 forbidden (disabled stream, session for the other
 * mode), 1404 no such stream. A request ingest should not have sent (not
 * JSON, missing fields) is a 400 instead. A session id is consumed by the
 * call that presents it, whatever the decision.
 *
 * Decisions come from the authtable in memory when it can be trusted
 * (authsync.h), else from PostgreSQL; both follow the same rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "authcache.h"
#include "authsync.h"
#include "call.h"
#include "db.h"
#include "keys.h"
#include "records.h"
#include "sessions.h"
#include "sluice/http.h"
#include "sluice/log.h"
#include "sluice/names.h"
#include "sluice/redis.h"

/* ---- GET /internal/v1/authtable ----------------------------------------- */

static void on_table(const struct db_result *res, void *arg)
{
    struct call *c = arg;
    if (db_status(res) != DB_OK || db_nrows(res) < 1) {
        call_db_error(c, res, "reading the authtable");
        return;
    }
    json_t *streams = json_array();
    int n = db_nrows(res);
    for (int i = 0; i < n; i++) {
        if (db_value(res, i, 1) != NULL)   /* the LEFT JOIN row of an empty table */
            json_array_append_new(streams, auth_entry_json(res, i, 1));
    }
    call_reply(c, 200, json_pack("{s:I, s:o}", "version", (json_int_t)db_int(res, 0, 0),
                                 "streams", streams));
}

static void get_authtable(struct http_request *req)
{
    struct call *c = call_new(req, sizeof(*c));
    if (c == NULL || call_service_auth(c) == -1)
        return;
    /* one statement, one snapshot: the version matches the entries */
    static const char sql[] =
        "SELECT a.version, " AUTH_COLUMNS " FROM auth_state a"
        " LEFT JOIN (streams s JOIN stream_keys k ON k.stream_id = s.id) ON true"
        " ORDER BY s.name";
    const char *none[1] = { NULL };
    if (db_query(c->api->db, sql, 0, none, on_table, c) == -1)
        call_unavailable(c, "the database");
}

/* ---- POST /internal/v1/authorize ---------------------------------------- */

struct authz {
    struct call call;
    struct authorize_req in;
    enum key_kind kind;
    char stream[80];     /* escaped, for logs */
    char client[80];     /* escaped, for logs */
};

static void deny(struct authz *a, int code, const char *reason, const char *msg)
{
    api_count(a->call.api, AM_AUTHORIZE, "deny");
    log_info("authorize: deny %d (%s) %s %s %s from %s", code, reason,
             protocol_name(a->in.protocol), mode_name(a->in.action), a->stream, a->client);
    call_reply(&a->call, 200, json_pack("{s:b, s:i, s:s, s:s}", "allow", 0, "code", code,
                                        "reason", reason, "message", msg));
}

static void allow(struct authz *a, const char *stream, const char *passphrase)
{
    api_count(a->call.api, AM_AUTHORIZE, "allow");
    log_info("authorize: allow %s %s %s by %s from %s", protocol_name(a->in.protocol),
             mode_name(a->in.action), stream, a->kind == KEY_SESSION ? "session" : "key",
             a->client);
    call_reply(&a->call, 200,
               json_pack("{s:b, s:s, s:s?, s:s, s:s}", "allow", 1, "stream", stream,
                         "passphrase", passphrase, "mode", mode_name(a->in.action),
                         "via", a->kind == KEY_SESSION ? "session" : "key"));
}

/* Rows of the lookups: name, passphrase, disabled, key matched. */
static void on_lookup(const struct db_result *res, void *arg)
{
    struct authz *a = arg;
    if (db_status(res) != DB_OK) {
        call_db_error(&a->call, res, "authorizing");
        return;
    }
    const char *name = db_value(res, 0, 0), *matched = db_value(res, 0, 3);
    const char *disabled = db_value(res, 0, 2);
    if (name == NULL && a->in.stream && a->kind == KEY_STREAM)
        deny(a, 1404, "no_stream", "no such stream");
    else if (name == NULL && a->kind == KEY_SESSION)
        deny(a, 1404, "no_stream", "the session's stream no longer exists");
    else if (name == NULL || matched == NULL || strcmp(matched, "t") != 0)
        deny(a, 1401, "bad_key", "the key does not match a stream");
    else if (disabled && strcmp(disabled, "t") == 0)
        deny(a, 1403, "disabled", "this stream is disabled");
    else
        allow(a, name, db_value(res, 0, 1));
}

/* The decision from the in-memory table: the rules of on_lookup. */
static void decide(struct authz *a, const struct authcache *t, const char *stream,
                   const char *hash)
{
    const json_t *e = stream ? authcache_by_name(t, stream) : authcache_by_key(t, hash);
    const char *key = json_string_value(json_object_get(e, "key_sha256"));
    api_count(a->call.api, AM_AUTHORIZE_FROM, "memory");
    if (e == NULL && stream && a->kind == KEY_STREAM)
        deny(a, 1404, "no_stream", "no such stream");
    else if (e == NULL && a->kind == KEY_SESSION)
        deny(a, 1404, "no_stream", "the session's stream no longer exists");
    else if (e == NULL || (a->kind == KEY_STREAM && strcmp(key, hash) != 0))
        deny(a, 1401, "bad_key", "the key does not match a stream");
    else if (json_is_true(json_object_get(e, "disabled")))
        deny(a, 1403, "disabled", "this stream is disabled");
    else
        allow(a, json_string_value(json_object_get(e, "name")),
              json_string_value(json_object_get(e, "passphrase")));
}

static void look_up(struct authz *a, const char *stream, const char *hash)
{
    const struct authcache *t = authsync_table(a->call.api);
    if (t != NULL) {
        decide(a, t, stream, hash);
        return;
    }
    api_count(a->call.api, AM_AUTHORIZE_FROM, "database");
    static const char by_stream[] =
        "SELECT s.name, s.passphrase, s.disabled, k.stream_id IS NOT NULL"
        " FROM streams s LEFT JOIN stream_keys k"
        "   ON k.stream_id = s.id AND k.key_sha256 = decode($2, 'hex')"
        " WHERE s.name = $1";
    static const char by_key[] =
        "SELECT s.name, s.passphrase, s.disabled, true"
        " FROM stream_keys k JOIN streams s ON s.id = k.stream_id"
        " WHERE k.key_sha256 = decode($1, 'hex')";
    static const char by_session[] =
        "SELECT s.name, s.passphrase, s.disabled, true FROM streams s WHERE s.name = $1";
    int rc;
    if (a->kind == KEY_SESSION) {
        const char *params[] = { stream };
        rc = db_query(a->call.api->db, by_session, 1, params, on_lookup, a);
    } else if (stream) {
        const char *params[] = { stream, hash };
        rc = db_query(a->call.api->db, by_stream, 2, params, on_lookup, a);
    } else {
        const char *params[] = { hash };
        rc = db_query(a->call.api->db, by_key, 1, params, on_lookup, a);
    }
    if (rc == -1)
        call_unavailable(&a->call, "the database");
}

static void on_session(const struct redis_reply *reply, const char *err, void *arg)
{
    struct authz *a = arg;
    struct session s;
    size_t len = 0;
    const char *value = reply ? redis_reply_str(reply, &len) : NULL;
    if (err != NULL) {
        log_warn("authorize: GETDEL failed: %s", err);
        call_unavailable(&a->call, "Redis");
    } else if (value == NULL || redis_reply_type(reply) != REDIS_R_STRING) {
        deny(a, 1401, "bad_session", "unknown, expired or already used session");
    } else if (session_parse(value, len, &s) == -1) {
        log_error("authorize: unreadable session value");
        deny(a, 1401, "bad_session", "unknown, expired or already used session");
    } else if (a->in.stream && strcmp(a->in.stream, s.stream) != 0) {
        deny(a, 1401, "bad_session", "this session is for another stream");
    } else if (s.mode != a->in.action) {
        deny(a, 1403, "wrong_mode", s.mode == MODE_PUBLISH
                                        ? "this session is for publishing"
                                        : "this session is for watching");
    } else {
        look_up(a, s.stream, NULL);
    }
}

static void consume_session(struct authz *a)
{
    char key[sizeof(SESSION_KEY_PREFIX) + KEY_MAX];
    snprintf(key, sizeof(key), SESSION_KEY_PREFIX "%s", a->in.key);
    if (redis_command(a->call.api->redis, on_session, a, "GETDEL %s", key) == -1)
        call_unavailable(&a->call, "Redis");
}

static void post_authorize(struct http_request *req)
{
    struct authz *a = call_new(req, sizeof(*a));
    char err[160], hash[SHA256_HEX_LEN + 1];
    if (a == NULL || call_service_auth(&a->call) == -1 || call_read_body(&a->call) == -1)
        return;
    if (req_authorize(a->call.body, &a->in, err, sizeof(err)) == -1) {
        call_error(&a->call, 400, "bad_request", "%s", err);
        return;
    }
    const char *stream = a->in.stream ? a->in.stream : "-";
    log_escape(a->stream, sizeof(a->stream), stream, strlen(stream));
    const char *client = a->in.client[0] ? a->in.client : "-";
    log_escape(a->client, sizeof(a->client), client, strlen(client));
    a->kind = key_kind(a->in.key, strlen(a->in.key));
    if (a->in.stream && !stream_name_valid(a->in.stream)) {
        deny(a, 1400, "malformed", "malformed stream name");
    } else if (a->kind == KEY_INVALID) {
        deny(a, 1401, "bad_key", "malformed key or session id");
    } else if (a->kind == KEY_SESSION) {
        consume_session(a);
    } else {
        key_sha256_hex(a->in.key, strlen(a->in.key), hash);
        look_up(a, a->in.stream, hash);
    }
}

const struct http_route internal_routes[] = {
    { HTTP_GET, "/internal/v1/authtable", get_authtable },
    { HTTP_POST, "/internal/v1/authorize", post_authorize },
    { 0 },
};
