/* GET /v1/audit, for admins: the audit log, newest first (see audit.h).
 *
 *   ?actor=<user name>  ?action=<action>  ?target=<target>
 *   ?since=<RFC 3339>   ?until=<RFC 3339> (since <= at < until)
 *   ?limit=1..1000 (default 100)  ?after=<id> (the "next" of the last page)
 */
#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "call.h"
#include "db.h"
#include "records.h"
#include "sluice/config.h"
#include "sluice/http.h"

#define AUDIT_PAGE 100
#define AUDIT_PAGE_MAX 1000
#define FILTER_MAX 128

static const char *const actions[] = {
    AUDIT_USER_CREATED, AUDIT_USER_DELETED, AUDIT_STREAM_CREATED, AUDIT_STREAM_UPDATED,
    AUDIT_STREAM_DELETED, AUDIT_KEY_ROTATED, AUDIT_SESSION_CREATED, AUDIT_RECORDING_DELETED,
    NULL,
};

bool audit_action_valid(const char *s)
{
    for (size_t i = 0; actions[i]; i++) {
        if (strcmp(actions[i], s) == 0)
            return true;
    }
    return false;
}

void audit_by(const struct call *c, struct audit_by *by)
{
    snprintf(by->id, sizeof(by->id), "%lld", (long long)c->who.id);
    call_client_ip(c, by->client, sizeof(by->client));
    by->params[0] = by->id;
    by->params[1] = c->who.name;
    by->params[2] = by->client;
}

/* ---- GET /v1/audit ------------------------------------------------------ */

enum filter { F_ACTOR, F_ACTION, F_TARGET, F_SINCE, F_UNTIL, F_COUNT };

struct audit_list {
    struct call call;
    int limit;
    char *filter[F_COUNT];   /* query values, malloc'd; NULL when absent */
};

static void list_free(struct audit_list *l)
{
    for (int i = 0; i < F_COUNT; i++) {
        free(l->filter[i]);
        l->filter[i] = NULL;
    }
}

static void on_entries(const struct db_result *res, void *arg)
{
    struct audit_list *l = arg;
    if (db_status(res) != DB_OK) {
        call_db_error(&l->call, res, "reading the audit log");
        return;
    }
    json_t *entries = json_array();
    int n = db_nrows(res);
    for (int i = 0; i < n; i++)
        json_array_append_new(entries, audit_json(res, i, 0));
    json_t *next = n == l->limit ? json_integer(db_int(res, n - 1, 0)) : json_null();
    call_reply(&l->call, 200, json_pack("{s:o, s:o}", "entries", entries, "next", next));
}

/* No control characters, at most FILTER_MAX bytes. */
static bool text_ok(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    }
    return n <= FILTER_MAX;
}

/* Reads and checks the filters. Returns 0, or -1 after replying 400. */
static int read_filters(struct audit_list *l)
{
    static const char *const names[F_COUNT] = { "actor", "action", "target", "since",
                                                "until" };
    for (int i = 0; i < F_COUNT; i++) {
        const char *v = l->filter[i] = http_query_param(l->call.req, names[i]);
        const char *why = NULL;
        if (v == NULL)
            continue;
        if (i == F_ACTION && !audit_action_valid(v))
            why = "must be user.created, user.deleted, stream.created, stream.updated, "
                  "stream.deleted, key.rotated, session.created or recording.deleted";
        else if ((i == F_SINCE || i == F_UNTIL) && !rfc3339_valid(v))
            why = "must be an RFC 3339 time (2026-11-21T10:00:00Z)";
        else if (!text_ok(v))
            why = "must be at most 128 bytes, without control characters";
        if (why) {
            list_free(l);
            call_error(&l->call, 400, "bad_request", "%s: %s", names[i], why);
            return -1;
        }
    }
    return 0;
}

static void list_audit(struct call *c)
{
    static const char sql[] =
        "SELECT " AUDIT_COLUMNS " FROM audit_log a"
        " WHERE ($1::bigint IS NULL OR a.id < $1) AND ($2::text IS NULL OR a.actor = $2)"
        " AND ($3::text IS NULL OR a.action = $3) AND ($4::text IS NULL OR a.target = $4)"
        " AND ($5::timestamptz IS NULL OR a.at >= $5)"
        " AND ($6::timestamptz IS NULL OR a.at < $6)"
        " ORDER BY a.id DESC LIMIT $7";
    struct audit_list *l = (struct audit_list *)c;
    char *after = NULL, limit[16], from[24];
    int64_t id = 0;
    if (call_page(c, AUDIT_PAGE, AUDIT_PAGE_MAX, &l->limit, &after) == -1)
        return;
    if (after && config_parse_int(after, 1, INT64_MAX, &id) == -1) {
        free(after);
        call_error(c, 400, "bad_request", "after: must be an audit entry id");
        return;
    }
    free(after);
    if (read_filters(l) == -1)
        return;
    snprintf(from, sizeof(from), "%lld", (long long)id);
    snprintf(limit, sizeof(limit), "%d", l->limit);
    const char *params[] = { id ? from : NULL, l->filter[F_ACTOR], l->filter[F_ACTION],
                             l->filter[F_TARGET], l->filter[F_SINCE], l->filter[F_UNTIL],
                             limit };
    int rc = db_query(c->api->db, sql, 7, params, on_entries, l);
    list_free(l);
    if (rc == -1)
        call_unavailable(c, "the database");
}

static void get_audit(struct http_request *req)
{
    struct audit_list *l = call_new(req, sizeof(*l));
    if (l)
        call_authenticate(&l->call, ROLES_ADMIN, list_audit);
}

const struct http_route audit_routes[] = {
    { HTTP_GET, "/v1/audit", get_audit },
    { 0 },
};
