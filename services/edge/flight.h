/* Flights: the one fetch an object gets however many requests miss it at
 * once (request coalescing). The first miss starts a flight (resolve the
 * route, fetch from the origin, store in the cache); every miss for the same
 * object while it is in the air joins it; when it lands, all of them get the
 * same body, by reference.
 *
 * When the origin cannot give an answer (unreachable, timeout, 5xx) and the
 * cache still has a stale copy within its stale-if-error bound, that copy is
 * served instead of the error.
 */
#ifndef SLUICE_EDGE_FLIGHT_H
#define SLUICE_EDGE_FLIGHT_H

#include <stdint.h>

#include "reqpath.h"
#include "stats.h"

struct edge;
struct body;
struct flights;

struct flight_result {
    const struct objpath *obj;
    int status;                  /* 200, or the error status */
    struct body *body;           /* 200: what to serve (valid during the callback:
                                  * body_ref() it to keep it) */
    enum cache_outcome outcome;  /* CO_MISS, or CO_STALE when served stale */
    int64_t fresh_until;         /* 200: monotonic ms (CACHE_FOREVER for segments) */
    const char *error;           /* otherwise: the JSON error code */
    const char *message;         /* ... and its message */
};

/* Called exactly once per flights_join() that returned 0 or 1. */
typedef void (*flight_cb)(const struct flight_result *res, void *arg);

/* Flights for <e>, whose cache, routes, origins, config and stats they use. */
struct flights *flights_new(struct edge *e);

/* Joins the flight for <obj>, or starts one. Returns 1 when it joined, 0 when
 * it started one (<cb> may then run before this returns), or -1 on allocation
 * failure (<cb> is not called). */
int flights_join(struct flights *fl, const struct objpath *obj, flight_cb cb, void *arg);

/* Flights in the air. */
unsigned flights_count(const struct flights *fl);

/* Answers every waiting request with 503 at once (shutdown); flights still in
 * the air land into nothing. Then free Redis, the routes and the origins (whose
 * cancelled callbacks land the rest), then the flights. */
void flights_close(struct flights *fl);
void flights_free(struct flights *fl);

#endif
