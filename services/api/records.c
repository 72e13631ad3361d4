/* Rows as JSON: see records.h. */
#include "records.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "sluice/config.h"
#include "sluice/log.h"

static json_t *text(const struct db_result *r, int row, int col)
{
    const char *v = db_value(r, row, col);
    return v ? json_string(v) : json_null();
}

static json_t *boolean(const struct db_result *r, int row, int col)
{
    const char *v = db_value(r, row, col);
    return json_boolean(v && strcmp(v, "t") == 0);
}

/* A bigint column as a JSON integer, or null. */
static json_t *integer(const struct db_result *r, int row, int col)
{
    int64_t v;
    const char *s = db_value(r, row, col);
    if (s == NULL || config_parse_int(s, INT64_MIN, INT64_MAX, &v) == -1)
        return json_null();
    return json_integer(v);
}

long long db_int(const struct db_result *r, int row, int col)
{
    int64_t v;
    const char *s = db_value(r, row, col);
    if (s == NULL || config_parse_int(s, INT64_MIN, INT64_MAX, &v) == -1)
        return -1;
    return v;
}

json_t *stream_json(const struct db_result *r, int row, int col)
{
    if (db_value(r, row, col) == NULL) {
        log_error("records: a stream row without a name");
        return NULL;
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "name", text(r, row, col),
                     "title", text(r, row, col + 1),
                     "category", text(r, row, col + 2),
                     "owner", text(r, row, col + 3),
                     "disabled", boolean(r, row, col + 4),
                     "record", boolean(r, row, col + 5),
                     "has_passphrase", boolean(r, row, col + 6),
                     "created_at", text(r, row, col + 7),
                     "updated_at", text(r, row, col + 8));
}

json_t *auth_entry_json(const struct db_result *r, int row, int col)
{
    if (db_value(r, row, col) == NULL || db_value(r, row, col + 1) == NULL) {
        log_error("records: an auth row without a name or key");
        return NULL;
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:I}",
                     "name", text(r, row, col),
                     "key_sha256", text(r, row, col + 1),
                     "passphrase", text(r, row, col + 2),
                     "disabled", boolean(r, row, col + 3),
                     "version", (json_int_t)db_int(r, row, col + 4));
}

json_t *user_json(const struct db_result *r, int row, int col)
{
    long long id = db_int(r, row, col);
    if (id <= 0) {
        log_error("records: a user row without an id");
        return NULL;
    }
    return json_pack("{s:I, s:o, s:o, s:o}",
                     "id", (json_int_t)id,
                     "username", text(r, row, col + 1),
                     "role", text(r, row, col + 2),
                     "created_at", text(r, row, col + 3));
}

json_t *audit_json(const struct db_result *r, int row, int col)
{
    long long id = db_int(r, row, col);
    const char *details = db_value(r, row, col + 7);
    json_t *d = details ? json_loads(details, 0, NULL) : json_null();
    if (id <= 0 || d == NULL) {
        json_decref(d);
        log_error("records: an audit row without an id, or with unreadable details");
        return NULL;
    }
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "id", (json_int_t)id,
                     "at", text(r, row, col + 1),
                     "actor_id", integer(r, row, col + 2),
                     "actor", text(r, row, col + 3),
                     "action", text(r, row, col + 4),
                     "target", text(r, row, col + 5),
                     "client", text(r, row, col + 6),
                     "details", d);
}

json_t *recording_json(const struct db_result *r, int row, int col, const char *edge_url,
                       bool with_holder)
{
    const char *id = db_value(r, row, col);
    char url[512];
    if (id == NULL) {
        log_error("records: a recording row without an id");
        return NULL;
    }
    snprintf(url, sizeof(url), "%s/vod/%s/index.m3u8", edge_url, id);
    json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o}",
                          "id", text(r, row, col),
                          "stream", text(r, row, col + 1),
                          "started_at", text(r, row, col + 2),
                          "ended_at", text(r, row, col + 3),
                          "duration_ms", integer(r, row, col + 4),
                          "bytes", integer(r, row, col + 5),
                          "segments", integer(r, row, col + 6),
                          "playback_url", url,
                          "created_at", text(r, row, col + 8),
                          "updated_at", text(r, row, col + 9));
    if (o && with_holder)
        json_object_set_new(o, "holder_url", text(r, row, col + 7));
    return o;
}
