/* Database rows as API JSON: the SQL select lists and the functions that turn
 * their columns into objects, kept side by side so they cannot drift. Every
 * query that returns a stream or an auth entry selects these lists, from
 * streams s, users u (the owner) and stream_keys k. */
#ifndef SLUICE_API_RECORDS_H
#define SLUICE_API_RECORDS_H

#include <jansson.h>

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

/* Objects from the columns starting at <col> of <row>: a new reference for
 * the caller, or NULL on a malformed row (logged) or out of memory. */
json_t *stream_json(const struct db_result *r, int row, int col);
json_t *auth_entry_json(const struct db_result *r, int row, int col);
json_t *user_json(const struct db_result *r, int row, int col);

/* A bigint column, or -1 when NULL or malformed. */
long long db_int(const struct db_result *r, int row, int col);

#endif
