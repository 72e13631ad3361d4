/* Users, for admins: GET/POST /v1/users, DELETE /v1/users/{id}; and the first
 * admin, created at start-up from admin-user and admin-password.
 *
 * A deletion is forgotten by the users this process keeps in memory and
 * published (user.deleted) before it is answered, so the user's tokens stop
 * working here at once and on other replicas as they hear it; it is refused
 * (503) while Redis is down, as the other replicas would not hear it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "api.h"
#include "audit.h"
#include "authsync.h"
#include "call.h"
#include "db.h"
#include "events.h"
#include "password.h"
#include "records.h"
#include "sluice/clock.h"
#include "sluice/config.h"
#include "sluice/daemon.h"
#include "sluice/http.h"
#include "sluice/log.h"
#include "sluice/redis.h"
#include "workpool.h"

#define USERS_PAGE 100
#define USERS_PAGE_MAX 1000

/* ---- GET /v1/users ------------------------------------------------------ */

struct user_list {
    struct call call;
    int limit;
};

static void on_users(const struct db_result *res, void *arg)
{
    struct user_list *ul = arg;
    if (db_status(res) != DB_OK) {
        call_db_error(&ul->call, res, "listing users");
        return;
    }
    json_t *users = json_array();
    int n = db_nrows(res);
    for (int i = 0; i < n; i++)
        json_array_append_new(users, user_json(res, i, 0));
    json_t *next = n == ul->limit ? json_integer(db_int(res, n - 1, 0)) : json_null();
    call_reply(&ul->call, 200, json_pack("{s:o, s:o}", "users", users, "next", next));
}

static void list_users(struct call *c)
{
    struct user_list *ul = (struct user_list *)c;
    char *after = NULL, limit[16];
    int64_t from = 0;
    if (call_page(c, USERS_PAGE, USERS_PAGE_MAX, &ul->limit, &after) == -1)
        return;
    if (after && config_parse_int(after, 0, INT64_MAX, &from) == -1) {
        free(after);
        call_error(c, 400, "bad_request", "after: must be a user id");
        return;
    }
    free(after);
    char from_text[24];
    snprintf(from_text, sizeof(from_text), "%lld", (long long)from);
    snprintf(limit, sizeof(limit), "%d", ul->limit);
    const char *params[] = { from_text, limit };
    if (db_query(c->api->db,
                 "SELECT " USER_COLUMNS " FROM users u WHERE u.id > $1 ORDER BY u.id LIMIT $2",
                 2, params, on_users, ul) == -1)
        call_unavailable(c, "the database");
}

static void get_users(struct http_request *req)
{
    struct user_list *ul = call_new(req, sizeof(*ul));
    if (ul)
        call_authenticate(&ul->call, ROLES_ADMIN, list_users);
}

/* ---- POST /v1/users ----------------------------------------------------- */

struct user_new {
    struct call call;
    struct user_req in;
    char *password;               /* a copy for the worker; cleansed, freed */
    size_t pwlen;
    unsigned cost;
    char hash[PASSWORD_HASH_MAX];  /* written by the worker */
    int hash_rc;
};

static void free_password(char **pw, size_t len)
{
    if (*pw) {
        OPENSSL_cleanse(*pw, len);
        free(*pw);
        *pw = NULL;
    }
}

static void on_user_created(const struct db_result *res, void *arg)
{
    struct user_new *u = arg;
    if (db_status(res) == DB_FAILED && strcmp(db_sqlstate(res), DB_UNIQUE_VIOLATION) == 0) {
        call_error(&u->call, 409, "conflict", "a user with this name exists");
        return;
    }
    if (db_status(res) != DB_OK || db_nrows(res) != 1) {
        call_db_error(&u->call, res, "creating a user");
        return;
    }
    log_info("users: %s created %s (%s)", u->call.who.name, u->in.username,
             role_name(u->in.role));
    call_reply(&u->call, 201, user_json(res, 0, 0));
}

static void on_hashed(void *arg, bool cancelled)
{
    struct user_new *u = arg;
    free_password(&u->password, u->pwlen);
    if (cancelled || u->hash_rc == -1) {
        call_unavailable(&u->call, "password hashing");
        return;
    }
    static const char sql[] =
        "WITH u AS (INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)"
        "   RETURNING *),"
        " audit AS (" AUDIT_INSERT(AUDIT_USER_CREATED, "u.username",
                                   "jsonb_build_object('id', u.id, 'role', u.role)", "u",
                                   "$4", "$5", "$6") ")"
        " SELECT " USER_COLUMNS " FROM u";
    struct audit_by by;
    audit_by(&u->call, &by);
    const char *params[] = { u->in.username, u->hash, role_name(u->in.role),
                             by.params[0], by.params[1], by.params[2] };
    if (db_query(u->call.api->db, sql, 6, params, on_user_created, u) == -1)
        call_unavailable(&u->call, "the database");
}

/* On a worker thread. */
static void hash_password(void *arg)
{
    struct user_new *u = arg;
    u->hash_rc = password_hash(u->password, u->pwlen, u->cost, u->hash, sizeof(u->hash));
}

static void create_user(struct call *c)
{
    struct user_new *u = (struct user_new *)c;
    char err[160];
    if (req_user(c->body, &u->in, err, sizeof(err)) == -1) {
        call_error(c, 400, "bad_request", "%s", err);
        return;
    }
    u->cost = (unsigned)c->api->cfg->password_cost;
    u->pwlen = strlen(u->in.password);
    if ((u->password = strdup(u->in.password)) == NULL ||
        workpool_submit(c->api->hashers, hash_password, on_hashed, u) == -1) {
        free_password(&u->password, u->pwlen);
        call_unavailable(c, "password hashing (busy)");
    }
}

static void post_users(struct http_request *req)
{
    struct user_new *u = call_new(req, sizeof(*u));
    if (u && call_read_body(&u->call) == 0)
        call_authenticate(&u->call, ROLES_ADMIN, create_user);
}

/* ---- DELETE /v1/users/{id} ---------------------------------------------- */

static void on_user_deleted(const struct db_result *res, void *arg)
{
    struct call *c = arg;
    if (db_status(res) == DB_FAILED &&
        strcmp(db_sqlstate(res), DB_FOREIGN_KEY_VIOLATION) == 0) {
        call_error(c, 409, "conflict", "this user still owns streams: delete them first");
        return;
    }
    if (db_status(res) != DB_OK) {
        call_db_error(c, res, "deleting a user");
        return;
    }
    if (db_nrows(res) == 0) {
        call_error(c, 404, "not_found", "no such user");
        return;
    }
    const char *name = db_value(res, 0, 0);
    int64_t id = db_int(res, 0, 1);
    log_info("users: %s deleted user %lld (%s)", c->who.name, (long long)id,
             name ? name : "?");
    /* its tokens stop working here now, on other replicas when they hear it */
    authsync_user_deleted(c->api, id);
    event_publish_then_reply(c, event_user("user.deleted", id, name ? name : ""), 204, NULL);
}

static void delete_user(struct call *c)
{
    int64_t id;
    if (config_parse_int(c->req->params[0], 1, INT64_MAX, &id) == -1) {
        call_error(c, 404, "not_found", "no such user");
        return;
    }
    if (id == c->who.id) {
        call_error(c, 409, "conflict", "you cannot delete yourself");
        return;
    }
    if (!redis_is_up(c->api->redis)) {   /* other replicas would keep trusting it */
        call_unavailable(c, "Redis (needed to announce the deletion)");
        return;
    }
    static const char sql[] =
        "WITH u AS (DELETE FROM users WHERE id = $1 RETURNING id, username, role),"
        " audit AS (" AUDIT_INSERT(AUDIT_USER_DELETED, "u.username",
                                   "jsonb_build_object('id', u.id, 'role', u.role)", "u",
                                   "$2", "$3", "$4") ")"
        " SELECT username, id FROM u";
    char text[24];
    struct audit_by by;
    snprintf(text, sizeof(text), "%lld", (long long)id);
    audit_by(c, &by);
    const char *params[] = { text, by.params[0], by.params[1], by.params[2] };
    if (db_query(c->api->db, sql, 4, params, on_user_deleted, c) == -1)
        call_unavailable(c, "the database");
}

static void delete_users(struct http_request *req)
{
    struct call *c = call_new(req, sizeof(*c));
    if (c)
        call_authenticate(c, ROLES_ADMIN, delete_user);
}

const struct http_route users_routes[] = {
    { HTTP_GET, "/v1/users", get_users },
    { HTTP_POST, "/v1/users", post_users },
    { HTTP_DELETE, "/v1/users/{}", delete_users },
    { 0 },
};

/* ---- the first admin ---------------------------------------------------- */

/* Hashes admin-password once at start, then inserts the admin when the
 * database is up, unless a user of that name exists (an admin's password is
 * never overwritten from the environment). */
struct bootstrap {
    struct api *api;
    char *password;                /* a copy for the worker; cleansed, freed */
    size_t pwlen;
    unsigned cost;
    char hash[PASSWORD_HASH_MAX];  /* written by the worker */
    int hash_rc;
    bool hashed, inserting, done;
    struct event *retry;
};

static void bootstrap_try(struct api *api);

static void on_admin_inserted(const struct db_result *res, void *arg)
{
    struct bootstrap *b = arg;
    b->inserting = false;
    if (db_status(res) == DB_UNAVAILABLE) {
        struct timeval tv = clock_tv_ms(1000);   /* freed with us at shutdown */
        evtimer_add(b->retry, &tv);
        return;
    }
    b->done = true;
    if (db_status(res) != DB_OK)
        log_error("users: cannot create the admin %s: %s", b->api->cfg->admin_user,
                  db_message(res));
    else if (db_nrows(res) == 1)
        log_info("users: created the admin %s", b->api->cfg->admin_user);
    else
        log_info("users: the admin %s exists; its password is left as it is",
                 b->api->cfg->admin_user);
}

static void bootstrap_try(struct api *api)
{
    struct bootstrap *b = api->bootstrap;
    if (b == NULL || !b->hashed || b->inserting || b->done || !db_is_up(api->db))
        return;
    static const char sql[] =
        "WITH u AS (INSERT INTO users (username, password_hash, role)"
        "   VALUES ($1, $2, 'admin') ON CONFLICT (username) DO NOTHING RETURNING *),"
        " audit AS (" AUDIT_INSERT(AUDIT_USER_CREATED, "u.username",
                                   "jsonb_build_object('id', u.id, 'role', u.role)", "u",
                                   "NULL", "'" AUDIT_ACTOR_STARTUP "'", "''") ")"
        " SELECT id FROM u";
    const char *params[] = { api->cfg->admin_user, b->hash };
    if (db_query(api->db, sql, 2, params, on_admin_inserted, b) == 0)
        b->inserting = true;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bootstrap *b = arg;
    bootstrap_try(b->api);
}

static void hash_admin(void *arg)
{
    struct bootstrap *b = arg;
    b->hash_rc = password_hash(b->password, b->pwlen, b->cost, b->hash, sizeof(b->hash));
}

static void on_admin_hashed(void *arg, bool cancelled)
{
    struct bootstrap *b = arg;
    free_password(&b->password, b->pwlen);
    if (cancelled)
        return;
    if (b->hash_rc == -1) {
        log_error("users: cannot hash the admin password; no admin created");
        b->done = true;
        return;
    }
    b->hashed = true;
    bootstrap_try(b->api);
}

int bootstrap_start(struct api *api)
{
    const struct api_config *cfg = api->cfg;
    if (cfg->admin_user[0] == '\0') {
        log_info("users: no admin-user configured; using the admins in the database");
        return 0;
    }
    struct bootstrap *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -1;
    api->bootstrap = b;
    b->api = api;
    b->cost = (unsigned)cfg->password_cost;
    b->pwlen = strlen(cfg->admin_password);
    b->password = strdup(cfg->admin_password);
    b->retry = evtimer_new(api->d->base, on_retry, b);
    if (b->password == NULL || b->retry == NULL ||
        workpool_submit(api->hashers, hash_admin, on_admin_hashed, b) == -1)
        return -1;   /* bootstrap_free cleans up */
    return 0;
}

void bootstrap_db_up(struct api *api)
{
    bootstrap_try(api);
}

bool bootstrap_pending(const struct api *api, const char *username)
{
    const struct bootstrap *b = api->bootstrap;
    return b != NULL && !b->done &&
           (username == NULL || strcmp(username, api->cfg->admin_user) == 0);
}

void bootstrap_free(struct api *api)
{
    struct bootstrap *b = api->bootstrap;
    if (b == NULL)
        return;
    free_password(&b->password, b->pwlen);
    if (b->retry)
        event_free(b->retry);
    OPENSSL_cleanse(b->hash, sizeof(b->hash));
    free(b);
    api->bootstrap = NULL;
}
