/* A request's life in the API: its context, bearer authentication, and the
 * replies that end it.
 *
 * Each handler allocates one struct that embeds struct call first (call_new),
 * carries it through its asynchronous steps as the callback argument, and
 * ends it with exactly one reply function, which answers the client and frees
 * the call with everything it owns (the parsed body included). Any step that
 * replies returns at once: after a reply, the call is gone.
 */
#ifndef SLUICE_API_CALL_H
#define SLUICE_API_CALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "requests.h"

struct api;
struct db_result;
struct http_request;

#define ROLES_ADMIN (1u << ROLE_ADMIN)
#define ROLES_ANY ((1u << ROLE_ADMIN) | (1u << ROLE_PUBLISHER))

/* Who is calling, as the database says now (not as the token said at login:
 * a deleted user's token stops working at once). Read from PostgreSQL, or from
 * the users authsync.h keeps in memory, which forget a deleted user before its
 * deletion is answered. */
struct principal {
    int64_t id;
    enum role role;
    char name[USERNAME_MAX + 1];
    char id_text[24];
};

struct call {
    struct api *api;
    struct http_request *req;
    struct principal who;
    json_t *body;                      /* owned; NULL until read */
    void (*then)(struct call *c);      /* what runs once authenticated */
    unsigned roles;                    /* ROLES_*: who may */
    unsigned user_epoch;               /* authsync_user_epoch() when read */
};

/* A zeroed call of <size> bytes (a struct that starts with struct call) for
 * <req>. NULL after replying 503 when out of memory. */
void *call_new(struct http_request *req, size_t size);

/* Reads the JSON body into c->body. Returns 0, or -1 after replying 415 or
 * 400 and freeing the call. */
int call_read_body(struct call *c);

/* Checks the bearer token, loads the caller from the database and checks the
 * role against <roles>, then runs <then>. On failure replies itself (401, 403,
 * 503) and frees the call. */
void call_authenticate(struct call *c, unsigned roles, void (*then)(struct call *c));

/* Checks the service token (internal-token) of an /internal/ call, in
 * constant time. Returns 0, or -1 after replying 401 and freeing the call. */
int call_service_auth(struct call *c);

bool call_is_admin(const struct call *c);

/* The owner filter for queries: NULL (every stream) for an admin, or the
 * caller's id as text. */
const char *call_owner_filter(const struct call *c);

/* The client's address without port: the TCP peer, or with trust-proxy the
 * last X-Forwarded-For entry when it parses as an address. */
void call_client_ip(const struct call *c, char *out, size_t len);

/* Paging of lists: ?limit=N (1 to <max>, default <def>) into *<limit>, and
 * ?after=<cursor> into *<after> (malloc'd, the caller frees; NULL if absent).
 * Returns 0, or -1 after replying 400. */
int call_page(struct call *c, int def, int max, int *limit, char **after);

/* Replies: each answers and frees the call. <body> is stolen; NULL with 204. */
void call_reply(struct call *c, int status, json_t *body);
void call_error(struct call *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 503 "unavailable", naming what is down. */
void call_unavailable(struct call *c, const char *what);
/* Answers a failed database result: 503 when unavailable, else 500 (the
 * server's message goes to the log, never to the client). */
void call_db_error(struct call *c, const struct db_result *res, const char *what);

#endif
