/* Where to publish: the relays that announce themselves in Redis
 * (sluice:relay:<id>, docs/redis.md), or one configured address.
 *
 * The list is refreshed in the background (SCAN + MGET every refresh_ms), so
 * that picking one is a lookup in memory that works while Redis is down (from
 * the last list seen). A pick counts against the relay until the next refresh,
 * so a burst of publishers spreads over the relays instead of all choosing
 * the same "fewest streams" one.
 */
#ifndef SLUICE_INGEST_RELAYS_H
#define SLUICE_INGEST_RELAYS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct redis;
struct relays;

#define RELAY_ADDR_MAX 128
#define RELAY_ID_MAX 128

struct relay_choice {
    char id[RELAY_ID_MAX + 1];       /* "" for the configured relay */
    char addr[RELAY_ADDR_MAX + 1];
};

/* With <fixed> ("host:port", not ""), every pick is that address and Redis is
 * not read. NULL if out of memory. */
struct relays *relays_new(struct event_base *base, struct redis *r, const char *fixed,
                          int64_t refresh_ms);
void relays_free(struct relays *rs);

/* Refreshes now (Redis came back). */
void relays_refresh(struct relays *rs);

/* The relay with the fewest streams; -1 when none is known. <avoid> (may be
 * NULL or "") is passed over if another is known (a relay that just failed). */
int relays_pick(struct relays *rs, const char *avoid, struct relay_choice *out);

/* Relays known now. */
size_t relays_count(const struct relays *rs);

/* One relay record, pure (for tests and the fuzzer): fills id, addr and the
 * stream count from the JSON text of sluice:relay:<id>. Returns 0 or -1. */
int relay_record_parse(const char *json, size_t len, struct relay_choice *out,
                       int64_t *streams);

/* Where a live stream is, pure: the "relay" address and "relay_id" of a
 * stream record (sluice:stream:<name>) or of a stream.start event, parsed
 * (<o> a JSON object). Returns 0, or -1 when they are missing or malformed. */
int stream_location_parse(const json_t *o, struct relay_choice *out);

#endif
