/* The admin port every daemon serves, never published by Traefik:
 *   GET /metrics  Prometheus text (the daemon's registry)
 *   GET /healthz  200 {"status":"ok"} while the loop runs
 *   GET /readyz   200 or 503 {"ready":bool,"checks":{name: "ok" | reason}}
 * Daemons may add their own routes to the returned server.
 */
#ifndef SLUICE_ADMIN_H
#define SLUICE_ADMIN_H

#include <jansson.h>
#include <stdbool.h>

struct daemon;
struct http_server;

/* Fills <checks> with one entry per dependency ("ok" or why not) and returns
 * true when the daemon is ready to serve. */
typedef bool (*admin_ready_fn)(json_t *checks, void *arg);

/* Starts the admin server on <addr>. NULL with a malloc'd message in *<err>.
 * Stops accepting and is freed by the daemon's stop and free paths: the
 * caller only uses the result to add routes. */
struct http_server *admin_start(struct daemon *d, const char *addr,
                                admin_ready_fn ready, void *arg, char **err);

#endif
