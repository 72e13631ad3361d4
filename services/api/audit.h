/* The audit log: who changed what, when, and from where.
 *
 * Every change made through the API (users, streams, keys, sessions,
 * recordings) writes one row of audit_log, and in the same SQL statement as
 * the change wherever the change is in PostgreSQL: a data-modifying CTE,
 * AUDIT_INSERT below, inserts one row per row the change produced. So a
 * change is never committed without its row, and a change that fails or finds
 * nothing (a 404, a 409) writes none. A session lives in Redis: its row is
 * written after Redis took it and before its id is shown, and an id whose row
 * could not be written is deleted and never shown (sessions.c).
 *
 * Rows are append-only (a trigger refuses UPDATE, DELETE, TRUNCATE). Admins
 * read them with GET /v1/audit.
 */
#ifndef SLUICE_API_AUDIT_H
#define SLUICE_API_AUDIT_H

#include <stdbool.h>

struct call;

/* Actions, as stored in audit_log.action (the names of the events where
 * there is one). */
#define AUDIT_USER_CREATED "user.created"
#define AUDIT_USER_DELETED "user.deleted"
#define AUDIT_STREAM_CREATED "stream.created"
#define AUDIT_STREAM_UPDATED "stream.updated"
#define AUDIT_STREAM_DELETED "stream.deleted"
#define AUDIT_KEY_ROTATED "key.rotated"
#define AUDIT_SESSION_CREATED "session.created"
#define AUDIT_RECORDING_DELETED "recording.deleted"

/* The actor of changes the api makes by itself (the first admin). */
#define AUDIT_ACTOR_STARTUP "(admin-user setting)"

/* SQL: an audit row for every row of <from> (a CTE or table), with the
 * SQL expressions <target> (text) and <details> (jsonb or NULL), by the
 * caller in the parameters <p_id>, <p_name>, <p_client> (see audit_by). Use
 * inside WITH: " audit AS (" AUDIT_INSERT(...) ")". */
#define AUDIT_INSERT(action, target, details, from, p_id, p_name, p_client)          \
    "INSERT INTO audit_log (actor_id, actor, action, target, client, details)"       \
    " SELECT " p_id "::bigint, " p_name "::text, '" action "', " target ", "         \
    p_client "::text, " details " FROM " from

/* The caller of <c> as three text parameters for AUDIT_INSERT, in order: the
 * user id, the user name, the client address (call_client_ip). The name points
 * into <c>: use the parameters while <c> lives (db_query copies them). */
struct audit_by {
    char id[24];
    char client[64];
    const char *params[3];
};
void audit_by(const struct call *c, struct audit_by *by);

/* True for one of the AUDIT_* actions. */
bool audit_action_valid(const char *s);

#endif
