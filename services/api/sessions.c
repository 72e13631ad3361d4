/* POST /v1/streams/{name}/sessions: a single-use session id for publishing or
 * watching one stream (see sessions.h for how it is stored).
 *
 * The steps: the stream is the caller's (PostgreSQL); the id is stored
 * (Redis, SET NX); its audit row is written (PostgreSQL); only then is the id
 * shown. If the audit row cannot be written the id is deleted and never
 * shown, so no usable session exists without its row. */
#include "sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"
#include "audit.h"
#include "call.h"
#include "db.h"
#include "keys.h"
#include "sluice/clock.h"
#include "sluice/http.h"
#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/names.h"
#include "sluice/redis.h"

struct session_call {
    struct call call;
    struct session_req in;
    char stream[STREAM_NAME_MAX + 1];
    char id[KEY_LEN + 1];
    char expires[32];
    char key[sizeof(SESSION_KEY_PREFIX) + KEY_LEN];   /* the Redis key, until shown */
};

static void forget(struct session_call *s)
{
    OPENSSL_cleanse(s->id, sizeof(s->id));
    OPENSSL_cleanse(s->key, sizeof(s->key));
}

int session_parse(const char *value, size_t len, struct session *out)
{
    json_t *v = json_parse(value, len, NULL, 0);
    const char *stream, *mode;
    int rc = -1;
    if (v && json_is_object(v) && json_get_str(v, "stream", &stream) == 0 &&
        stream_name_valid(stream) && json_get_str(v, "mode", &mode) == 0) {
        snprintf(out->stream, sizeof(out->stream), "%s", stream);
        if (strcmp(mode, mode_name(MODE_PUBLISH)) == 0)
            out->mode = MODE_PUBLISH, rc = 0;
        else if (strcmp(mode, mode_name(MODE_REQUEST)) == 0)
            out->mode = MODE_REQUEST, rc = 0;
    }
    json_decref(v);
    return rc;
}

static void on_audited(const struct db_result *res, void *arg)
{
    struct session_call *s = arg;
    if (db_status(res) != DB_OK) {
        /* not shown, so unusable; deleted so that nothing is left behind */
        if (redis_command(s->call.api->redis, NULL, NULL, "DEL %s", s->key) == -1)
            log_warn("sessions: cannot delete an unaudited session; it expires in %lld ms",
                     (long long)s->call.api->cfg->session_ttl_ms);
        forget(s);
        call_db_error(&s->call, res, "auditing a session");
        return;
    }
    log_info("sessions: %s session for %s by %s", mode_name(s->in.mode), s->stream,
             s->call.who.name);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "resource_id", s->stream,
                             "session_id", s->id, "mode", mode_name(s->in.mode),
                             "expires_at", s->expires);
    forget(s);
    call_reply(&s->call, 201, body);
}

static void on_stored(const struct redis_reply *reply, const char *err, void *arg)
{
    static const char sql[] =
        "INSERT INTO audit_log (actor_id, actor, action, target, client, details)"
        " VALUES ($1, $2, '" AUDIT_SESSION_CREATED "', $3, $4,"
        "   jsonb_build_object('mode', $5::text, 'expires_at', $6::text))";
    struct session_call *s = arg;
    if (err != NULL || redis_reply_type(reply) != REDIS_R_STATUS) {
        /* nil: NX found the id taken, which 192 random bits make a fault */
        log_warn("sessions: cannot store a session: %s", err ? err : "id taken");
        forget(s);
        call_unavailable(&s->call, "Redis");
        return;
    }
    struct audit_by by;
    audit_by(&s->call, &by);
    const char *params[] = { by.params[0], by.params[1], s->stream, by.params[2],
                             mode_name(s->in.mode), s->expires };
    if (db_query(s->call.api->db, sql, 6, params, on_audited, s) == -1) {
        redis_command(s->call.api->redis, NULL, NULL, "DEL %s", s->key);
        forget(s);
        call_unavailable(&s->call, "the database");
    }
}

static void on_stream(const struct db_result *res, void *arg)
{
    struct session_call *s = arg;
    struct call *c = &s->call;
    if (db_status(res) != DB_OK) {
        call_db_error(c, res, "creating a session");
        return;
    }
    if (db_nrows(res) == 0) {
        call_error(c, 404, "not_found", "no such stream");
        return;
    }
    int64_t now = clock_wall_us(), ttl = c->api->cfg->session_ttl_ms;
    char created[32];
    clock_rfc3339(created, sizeof(created), now);
    clock_rfc3339(s->expires, sizeof(s->expires), now + ttl * 1000);
    json_t *v = json_pack("{s:s, s:s, s:I, s:s}", "stream", s->stream, "mode",
                          mode_name(s->in.mode), "user", (json_int_t)c->who.id,
                          "created_at", created);
    char *value = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (value == NULL || key_generate(SESSION_PREFIX, s->id, sizeof(s->id)) == -1) {
        free(value);
        call_error(c, 500, "internal", "internal error");
        return;
    }
    snprintf(s->key, sizeof(s->key), SESSION_KEY_PREFIX "%s", s->id);
    int rc = redis_command(c->api->redis, on_stored, s, "SET %s %s PX %lld NX", s->key, value,
                           (long long)ttl);
    free(value);
    if (rc == -1) {
        forget(s);
        call_unavailable(c, "Redis");
    }
}

static void create_session(struct call *c)
{
    struct session_call *s = (struct session_call *)c;
    char err[160];
    const char *name = c->req->params[0];
    if (!stream_name_valid(name)) {
        call_error(c, 404, "not_found", "no such stream");
        return;
    }
    snprintf(s->stream, sizeof(s->stream), "%s", name);
    if (req_session(c->body, &s->in, err, sizeof(err)) == -1) {
        call_error(c, 400, "bad_request", "%s", err);
        return;
    }
    if (!redis_is_up(c->api->redis)) {
        call_unavailable(c, "Redis");
        return;
    }
    const char *params[] = { s->stream, call_owner_filter(c) };
    if (db_query(c->api->db,
                 "SELECT s.name FROM streams s WHERE s.name = $1"
                 " AND ($2::bigint IS NULL OR s.owner_id = $2)",
                 2, params, on_stream, s) == -1)
        call_unavailable(c, "the database");
}

static void post_sessions(struct http_request *req)
{
    struct session_call *s = call_new(req, sizeof(*s));
    if (s && call_read_body(&s->call) == 0)
        call_authenticate(&s->call, ROLES_ANY, create_session);
}

const struct http_route sessions_routes[] = {
    { HTTP_POST, "/v1/streams/{}/sessions", post_sessions },
    { 0 },
};
