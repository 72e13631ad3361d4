/* sluice-relay: takes each stream from one publisher over SLP and fans it
 * out to any number of subscribers, by reference, with a GOP cache, bounded
 * subscriber queues and a Redis registry. docs/relay.md describes what it
 * does; this is the wiring:
 *
 *   main.c        the daemon
 *   config.c      options (one table) and their cross-checks
 *   relay.c       listener, tick, graceful stop
 *   conn.c        SLP connections: read, decode, handshake, write, close
 *   publisher.c   PUBLISH (the lease), MEDIA in, EOS
 *   subscriber.c  SUBSCRIBE, waiting, admission to the queue, cut-off
 *   stream.c      the stream table and each stream's life
 *   registry.c    Redis: lease lookups, records, events
 *   status.c      metrics and the admin routes (GET /v1/streams)
 *   chunk.c outq.c gop.c policy.c known.c   the pure parts, unit-tested
 */
#ifndef RELAY_H
#define RELAY_H

#include <stdbool.h>

#include "relay-t.h"
#include "sluice/config.h"

extern const struct config_opt relay_opts[];

/* Checks what the table cannot (bounds between options). Returns 0, or -1
 * with a malloc'd message in *<err>. */
int relay_config_check(const struct relay_config *cfg, char **err);

/* Starts listening, the admin port and Redis. NULL (logged) on failure. */
struct relay *relay_new(struct daemon *d, const struct relay_config *cfg);

/* The daemon's stop hook: stop accepting, EOS (shutdown) to subscribers,
 * ERROR going_away to publishers, hold the loop until they are gone. */
void relay_stop(void *arg);

/* Frees everything (after the loop). NULL is fine. */
void relay_free(struct relay *r);

/* Releases the daemon's hold once a stopping relay has no connection and no
 * Redis command left. */
void relay_check_drained(struct relay *r);

#endif
