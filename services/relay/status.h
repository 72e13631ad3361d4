/* What the relay shows: its metrics (one table; the gauges that are sums
 * over subscribers are computed when scraped) and the admin port's own
 * routes, GET /v1/streams and GET /v1/streams/{name}: each stream with its
 * publisher and its subscribers, their queue depth and drops. */
#ifndef RELAY_STATUS_H
#define RELAY_STATUS_H

#include "relay-t.h"

/* Registers the metric families into r->fam. Returns 0 or -1. */
int status_metrics(struct relay *r);

/* Starts the admin port on cfg->admin_listen with /readyz (Redis) and the
 * routes above. Returns 0, or -1 (logged). */
int status_start(struct relay *r);

#endif
