/* The recordings index:
 *
 *   GET    /v1/recordings[?stream=]     newest first, paged
 *   GET    /v1/recordings/{id}
 *   DELETE /v1/recordings/{id}          tombstone, sluice:vod:<id> deleted,
 *                                       recording.deleted published, then 204
 *   PUT    /internal/v1/recordings/{id} a recorder registers or updates one
 *                                       (service token; idempotent)
 *
 * Publishers see and delete the recordings of the streams they own; admins
 * all (another's recording is a 404, as for streams). A recording outlives its
 * stream; once the stream is gone, only admins see it.
 *
 * A deleted recording stays as a tombstone: lists and reads skip it, and a
 * later PUT of its id answers 410, which tells a recorder that missed the
 * event (it was down, say) to delete its files. The api deletes
 * sluice:vod:<id> itself, so the edge stops serving the recording at once even
 * if its recorder is gone; the recorder deletes its files on the event (or on
 * that 410). See docs/api.md for the recorder's contract. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "call.h"
#include "db.h"
#include "events.h"
#include "records.h"
#include "sluice/http.h"
#include "sluice/log.h"
#include "sluice/names.h"
#include "sluice/redis.h"

#define RECORDINGS_PAGE 100
#define RECORDINGS_PAGE_MAX 1000
#define VOD_KEY_PREFIX "sluice:vod:"

/* Visible to the caller: $2 is NULL for an admin, else the caller's id. */
#define VISIBLE                                                                  \
    "r.deleted_at IS NULL AND ($2::bigint IS NULL OR EXISTS (SELECT 1 FROM streams s" \
    " WHERE s.name = r.stream AND s.owner_id = $2))"

struct rec_call {
    struct call call;
    const char *id;                /* the path's */
    struct recording_req in;
    int limit;
    char stream[STREAM_NAME_MAX + 1];
};

/* The path's recording id; replies 404 for one no recording could have. */
static bool path_id(struct rec_call *r)
{
    r->id = r->call.req->params[0];
    if (recording_id_valid(r->id))
        return true;
    call_error(&r->call, 404, "not_found", "no such recording");
    return false;
}

/* ---- GET /v1/recordings ------------------------------------------------- */

static void on_list(const struct db_result *res, void *arg)
{
    struct rec_call *r = arg;
    struct call *c = &r->call;
    if (db_status(res) != DB_OK) {
        call_db_error(c, res, "listing recordings");
        return;
    }
    json_t *list = json_array();
    int n = db_nrows(res);
    for (int i = 0; i < n; i++)
        json_array_append_new(list, recording_json(res, i, 0, c->api->edge_url,
                                                   call_is_admin(c)));
    const char *last = n == r->limit ? db_value(res, n - 1, 0) : NULL;
    call_reply(c, 200, json_pack("{s:o, s:o}", "recordings", list, "next",
                                 last ? json_string(last) : json_null()));
}

static void list_recordings(struct call *c)
{
    static const char sql[] =
        "SELECT " RECORDING_COLUMNS " FROM recordings r"
        " WHERE " VISIBLE " AND ($1::text IS NULL OR r.stream = $1)"
        " AND ($3::text IS NULL OR (r.started_at, r.id) <"
        "   (SELECT p.started_at, p.id FROM recordings p WHERE p.id = $3))"
        " ORDER BY r.started_at DESC, r.id DESC LIMIT $4";
    struct rec_call *r = (struct rec_call *)c;
    char *after = NULL, *stream = NULL, limit[16];
    if (call_page(c, RECORDINGS_PAGE, RECORDINGS_PAGE_MAX, &r->limit, &after) == -1)
        return;
    stream = http_query_param(c->req, "stream");
    const char *bad = stream && !stream_name_valid(stream) ? "stream: not a stream name"
                      : after && !recording_id_valid(after) ? "after: not a recording id"
                                                            : NULL;
    if (stream)
        snprintf(r->stream, sizeof(r->stream), "%s", bad ? "" : stream);
    free(stream);
    if (bad) {
        free(after);
        call_error(c, 400, "bad_request", "%s", bad);
        return;
    }
    snprintf(limit, sizeof(limit), "%d", r->limit);
    const char *params[] = { r->stream[0] ? r->stream : NULL, call_owner_filter(c), after,
                             limit };
    int rc = db_query(c->api->db, sql, 4, params, on_list, r);
    free(after);
    if (rc == -1)
        call_unavailable(c, "the database");
}

static void get_recordings(struct http_request *req)
{
    struct rec_call *r = call_new(req, sizeof(*r));
    if (r)
        call_authenticate(&r->call, ROLES_ANY, list_recordings);
}

/* ---- GET /v1/recordings/{id} -------------------------------------------- */

static void on_got(const struct db_result *res, void *arg)
{
    struct call *c = arg;
    if (db_status(res) != DB_OK) {
        call_db_error(c, res, "reading a recording");
        return;
    }
    if (db_nrows(res) == 0) {
        call_error(c, 404, "not_found", "no such recording");
        return;
    }
    json_t *rec = recording_json(res, 0, 0, c->api->edge_url, call_is_admin(c));
    if (rec == NULL)
        call_error(c, 500, "internal", "internal error");
    else
        call_reply(c, 200, rec);
}

static void read_recording(struct call *c)
{
    static const char sql[] =
        "SELECT " RECORDING_COLUMNS " FROM recordings r WHERE r.id = $1 AND " VISIBLE;
    struct rec_call *r = (struct rec_call *)c;
    if (!path_id(r))
        return;
    const char *params[] = { r->id, call_owner_filter(c) };
    if (db_query(c->api->db, sql, 2, params, on_got, r) == -1)
        call_unavailable(c, "the database");
}

static void get_recording(struct http_request *req)
{
    struct rec_call *r = call_new(req, sizeof(*r));
    if (r)
        call_authenticate(&r->call, ROLES_ANY, read_recording);
}

/* ---- DELETE /v1/recordings/{id} ----------------------------------------- */

static void on_vod_deleted(const struct redis_reply *reply, const char *err, void *arg)
{
    (void)reply;
    if (err != NULL)
        log_warn("recordings: cannot delete %s%s: %s", VOD_KEY_PREFIX, (const char *)arg, err);
    free(arg);
}

static void on_deleted(const struct db_result *res, void *arg)
{
    struct rec_call *r = arg;
    struct call *c = &r->call;
    if (db_status(res) != DB_OK) {
        call_db_error(c, res, "deleting a recording");
        return;
    }
    if (db_nrows(res) == 0) {
        call_error(c, 404, "not_found", "no such recording");
        return;
    }
    const char *stream = db_value(res, 0, 1);
    log_info("recordings: recording.deleted %s (%s) by %s", r->id, stream ? stream : "?",
             c->who.name);
    /* the same connection runs commands in order: the edge stops finding the
     * recording before anyone hears it is gone */
    char *id = strdup(r->id);
    if (id == NULL || redis_command(c->api->redis, on_vod_deleted, id, "DEL %s%s",
                                    VOD_KEY_PREFIX, r->id) == -1) {
        log_warn("recordings: cannot delete %s%s: Redis unavailable", VOD_KEY_PREFIX, r->id);
        free(id);
    }
    event_publish_then_reply(c, event_recording("recording.deleted", r->id,
                                                stream ? stream : ""), 204, NULL);
}

static void delete_recording(struct call *c)
{
    static const char sql[] =
        "WITH d AS (UPDATE recordings r SET deleted_at = now(), updated_at = now()"
        "   WHERE r.id = $1 AND " VISIBLE " RETURNING r.id, r.stream, r.holder_url),"
        " audit AS (" AUDIT_INSERT(AUDIT_RECORDING_DELETED, "d.id",
                                   "jsonb_build_object('stream', d.stream, 'holder_url',"
                                   " d.holder_url)", "d", "$3", "$4", "$5") ")"
        " SELECT id, stream FROM d";
    struct rec_call *r = (struct rec_call *)c;
    if (!path_id(r))
        return;
    if (!redis_is_up(c->api->redis)) {   /* the event would be lost: change nothing */
        call_unavailable(c, "Redis (needed to announce the deletion)");
        return;
    }
    struct audit_by by;
    audit_by(c, &by);
    const char *params[] = { r->id, call_owner_filter(c), by.params[0], by.params[1],
                             by.params[2] };
    if (db_query(c->api->db, sql, 5, params, on_deleted, r) == -1)
        call_unavailable(c, "the database");
}

static void delete_recordings(struct http_request *req)
{
    struct rec_call *r = call_new(req, sizeof(*r));
    if (r)
        call_authenticate(&r->call, ROLES_ANY, delete_recording);
}

/* ---- PUT /internal/v1/recordings/{id} ----------------------------------- */

/* One row: what happened ("created", "updated", "gone", "conflict"), then the
 * recording (the stored one, for "gone" and "conflict"). No row: a concurrent
 * PUT of the same id won the race; the caller retries. */
static const char sql_put[] =
    "WITH up AS (INSERT INTO recordings AS r (id, stream, started_at, ended_at,"
    "   duration_ms, bytes, segments, holder_url)"
    "   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    "   ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at,"
    "   ended_at = excluded.ended_at, duration_ms = excluded.duration_ms,"
    "   bytes = excluded.bytes, segments = excluded.segments,"
    "   holder_url = excluded.holder_url, updated_at = now()"
    "   WHERE r.stream = excluded.stream AND r.deleted_at IS NULL"
    "   RETURNING r.*, r.xmax = 0 AS inserted)"
    " SELECT CASE WHEN r.inserted THEN 'created' ELSE 'updated' END, " RECORDING_COLUMNS
    " FROM up r"
    " UNION ALL"
    " SELECT CASE WHEN r.deleted_at IS NOT NULL THEN 'gone' ELSE 'conflict' END, "
    RECORDING_COLUMNS " FROM recordings r WHERE r.id = $1 AND NOT EXISTS (SELECT 1 FROM up)";

static void on_put(const struct db_result *res, void *arg)
{
    struct rec_call *r = arg;
    struct call *c = &r->call;
    if (db_status(res) == DB_FAILED && strcmp(db_sqlstate(res), DB_CHECK_VIOLATION) == 0) {
        call_error(c, 400, "bad_request", "ended_at: must not be before started_at");
        return;
    }
    if (db_status(res) != DB_OK) {
        call_db_error(c, res, "registering a recording");
        return;
    }
    const char *what = db_value(res, 0, 0);
    if (what == NULL) {
        call_error(c, 409, "conflict", "the recording changed meanwhile; try again");
    } else if (strcmp(what, "gone") == 0) {
        call_error(c, 410, "gone", "recording %s was deleted: delete its files", r->id);
    } else if (strcmp(what, "conflict") == 0) {
        const char *owner = db_value(res, 0, 2);
        call_error(c, 409, "conflict", "recording %s belongs to stream %s", r->id,
                   owner ? owner : "?");
    } else {
        bool created = strcmp(what, "created") == 0;
        json_t *rec = recording_json(res, 0, 1, c->api->edge_url, true);
        if (created)
            log_info("recordings: %s registered for %s at %s", r->id, r->in.stream,
                     r->in.holder_url);
        if (rec == NULL)
            call_error(c, 500, "internal", "internal error");
        else
            call_reply(c, created ? 201 : 200, rec);
    }
}

static void put_recording(struct http_request *req)
{
    struct rec_call *r = call_new(req, sizeof(*r));
    char err[160], counts[3][24];
    if (r == NULL || call_service_auth(&r->call) == -1 || call_read_body(&r->call) == -1)
        return;
    struct call *c = &r->call;
    r->id = req->params[0];
    if (!recording_id_valid(r->id)) {
        call_error(c, 400, "bad_request", "id: must be 1 to %d of A-Z a-z 0-9 _ -",
                   RECORDING_ID_MAX);
        return;
    }
    if (req_recording(c->body, &r->in, err, sizeof(err)) == -1) {
        call_error(c, 400, "bad_request", "%s", err);
        return;
    }
    snprintf(counts[0], sizeof(counts[0]), "%lld", (long long)r->in.duration_ms);
    snprintf(counts[1], sizeof(counts[1]), "%lld", (long long)r->in.bytes);
    snprintf(counts[2], sizeof(counts[2]), "%lld", (long long)r->in.segments);
    const char *params[] = { r->id, r->in.stream, r->in.started_at, r->in.ended_at,
                             counts[0], counts[1], counts[2], r->in.holder_url };
    if (db_query(c->api->db, sql_put, 8, params, on_put, r) == -1)
        call_unavailable(c, "the database");
}

const struct http_route recordings_routes[] = {
    { HTTP_GET, "/v1/recordings", get_recordings },
    { HTTP_GET, "/v1/recordings/{}", get_recording },
    { HTTP_DELETE, "/v1/recordings/{}", delete_recordings },
    { HTTP_PUT, "/internal/v1/recordings/{}", put_recording },
    { 0 },
};
