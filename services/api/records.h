/* Database rows as API JSON: the SQL select lists and the functions that turn
 * their columns into objects, kept side by side so they cannot drift. Every
 * query that returns a stream or an auth entry selects these lists, from
 * streams s, users u (the owner) and stream_keys k. */
#ifndef SLUICE_API_RECORDS_H
#define SLUICE_API_RECORDS_H

#include <jansson.h>
#include <stdbool.h>

struct db_result;

/* RFC 3339 UTC with milliseconds, as everywhere in Sluice. */
#define SQL_TIME(col) \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* A stream as users see it: the passphrase only as has_passphrase. */
#define STREAM_COLUMNS                                                          \
    "s.name, s.title, s.category, u.username, s.disabled, s.record, "           \
    "s.passphrase IS NOT NULL, " SQL_TIME("s.created_at") ", " SQL_TIME("s.updated_at")
#define STREAM_NCOLS 9

/* What ingest authorizes with. */
#define AUTH_COLUMNS \
    "s.name, encode(k.key_sha256, 'hex'), s.passphrase, s.disabled, s.auth_version"
#define AUTH_NCOLS 5

#define USER_COLUMNS "u.id, u.username, u.role, " SQL_TIME("u.created_at")
#define USER_NCOLS 4

/* A recording (recordings r). */
#define RECORDING_COLUMNS                                                       \
    "r.id, r.stream, " SQL_TIME("r.started_at") ", " SQL_TIME("r.ended_at") ", " \
    "r.duration_ms, r.bytes, r.segments, r.holder_url, " SQL_TIME("r.created_at") \
    ", " SQL_TIME("r.updated_at")
#define RECORDING_NCOLS 10

/* An audit log entry (audit_log a). */
#define AUDIT_COLUMNS                                                           \
    "a.id, " SQL_TIME("a.at") ", a.actor_id, a.actor, a.action, a.target, a.client, " \
    "a.details::text"
#define AUDIT_NCOLS 8

/* Objects from the columns starting at <col> of <row>: a new reference for
 * the caller, or NULL on a malformed row (logged) or out of memory. */
json_t *stream_json(const struct db_result *r, int row, int col);
json_t *auth_entry_json(const struct db_result *r, int row, int col);
json_t *user_json(const struct db_result *r, int row, int col);
json_t *audit_json(const struct db_result *r, int row, int col);

/* A recording, with its playback URL under <edge_url> (no trailing '/'), and
 * with the recorder's address when <with_holder> (for admins and services). */
json_t *recording_json(const struct db_result *r, int row, int col, const char *edge_url,
                       bool with_holder);

/* A bigint column, or -1 when NULL or malformed. */
long long db_int(const struct db_result *r, int row, int col);

#endif
