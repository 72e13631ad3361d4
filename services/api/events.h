/* Changes that matter to ingest, published on the Redis channel sluice:events
 * before the API replies, each carrying the stream's new auth entry so that a
 * subscriber updates its table without a round trip:
 *
 *   {"type": "stream.created", "stream": "cam1", "version": 42,
 *    "at": "2026-01-01T10:00:00.000Z", "auth": {auth entry} | null}
 *
 * with "type" one of stream.created, stream.updated, key.rotated,
 * stream.deleted ("auth" null). "version" is the authtable version the change
 * produced (see docs/api.md for how a subscriber orders events and reloads).
 */
#ifndef SLUICE_API_EVENTS_H
#define SLUICE_API_EVENTS_H

#include <jansson.h>
#include <stdint.h>

struct call;

#define EVENTS_CHANNEL "sluice:events"

/* The message for <type>; <auth> is stolen (NULL for a deletion). NULL when
 * out of memory. */
json_t *event_message(const char *type, const char *stream, int64_t version,
                      json_t *auth);

/* The message of a recording's change (recording.deleted):
 *   {"type": "recording.deleted", "id": "cam1-20261121T100000Z", "stream": "cam1",
 *    "at": "2026-11-21T11:00:00.000Z"}
 * NULL when out of memory. */
json_t *event_recording(const char *type, const char *id, const char *stream);

/* The message of a user's change (user.deleted), which every api replica
 * applies to the users it keeps in memory (authsync.h):
 *   {"type": "user.deleted", "id": 7, "username": "alice",
 *    "at": "2026-11-21T11:00:00.000Z"}
 * NULL when out of memory. */
json_t *event_user(const char *type, int64_t id, const char *username);

/* Publishes <msg> (stolen), then replies <status> with <body> (stolen) on
 * <c>. If Redis cannot take the message, the change still stands (it is
 * committed): the failure is logged and counted, and the reply goes out, since
 * a subscriber that lost Redis reloads the whole table when it resubscribes. */
void event_publish_then_reply(struct call *c, json_t *msg, int status, json_t *body);

#endif
