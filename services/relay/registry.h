/* The relay's side of the Redis contract (docs/redis.md), through
 * libcommon's redis module, never blocking:
 *  - the publish lease: GET sluice:lease:publish:<name> for each PUBLISH;
 *  - sluice:stream:<name>, written for every live stream when its publisher
 *    is accepted and every heartbeat, with a TTL of two heartbeats, in one
 *    script that also checks the lease is still its publisher's (if it has
 *    passed to someone else, the publisher is replaced) and publishes
 *    stream.start once per accepted publisher;
 *  - at a stream's end, a script that deletes the record only if it is this
 *    relay's (another relay may have the stream by now) and then publishes
 *    stream.stop;
 *  - sluice:relay:<id> every heartbeat, deleted at a clean stop.
 * Redis being down stops nothing: commands fail at once, and when Redis
 * comes back (the state callback) everything is written again and
 * stream.start goes out for the streams that missed it.
 */
#ifndef RELAY_REGISTRY_H
#define RELAY_REGISTRY_H

#include <stdbool.h>

#include "policy.h"
#include "relay-t.h"

/* Constructor, on r->redis; NULL on allocation failure. */
struct registry *registry_new(struct relay *r);

/* Stops the heartbeat and deletes sluice:relay:<id> (the graceful stop). */
void registry_stop(struct registry *g);

/* After redis_free(): frees the rest. */
void registry_free(struct registry *g);

/* True while commands are waiting for replies. */
bool registry_busy(const struct registry *g);

/* The lease answer for <name> goes to <cb>(<arg>) exactly once. Returns 0;
 * or -1 at once, when Redis is down (then <cb> is not called). */
typedef void (*registry_lease_cb)(enum lease_answer a, const char *holder, void *arg);
int registry_lease_get(struct registry *g, const char *name, registry_lease_cb cb, void *arg);

/* The stream record of <s> (LIVE), as compact JSON (malloc'd), or NULL. */
char *registry_record(const struct relay *r, const struct stream *s);

/* <s> has a new publisher: write its record now, with stream.start. */
void registry_stream_live(struct registry *g, struct stream *s);

/* <s> ends (<reason>: an EOS reason name): its record goes, stream.stop. */
void registry_stream_ended(struct registry *g, struct stream *s, const char *reason);

#endif
