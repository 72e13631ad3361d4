/* Streams: the table of stream names, and each stream's life:
 *
 *   IDLE  --publisher accepted-->  LIVE  --publisher EOS-->  (ended)
 *     ^                             |  ^
 *     | (subscribers wait here)     |  | the publisher (or a new lease holder)
 *                      connection lost  |  comes back within publisher-grace
 *                                   v  |
 *                                   LOST --grace runs out--> (ended: EOS publisher_lost)
 *
 * A stream ends by sending every subscriber an EOS and leaving the table. A
 * publisher change (a reconnect or a takeover) sends subscribers the new
 * PUBLISH; each then resumes at the new publisher's first keyframe, flagged
 * DISCONTINUITY. Frames from a publisher before its first keyframe reach
 * nobody.
 */
#ifndef RELAY_STREAM_H
#define RELAY_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "relay-t.h"

/* The stream called <name> (<len> bytes), or NULL. */
struct stream *stream_find(struct relay *r, const char *name, size_t len);

/* The stream called <name>, created IDLE if needed; NULL on allocation
 * failure. */
struct stream *stream_get(struct relay *r, const char *name, size_t len);

/* Subscribers join and leave. Leaving may free an IDLE stream left empty. */
void stream_add_sub(struct stream *s, struct conn *c);
void stream_remove_sub(struct stream *s, struct conn *c);

/* <c>, an accepted publisher, becomes the stream's publisher; <how> says
 * what it is to the stream. A publisher it replaces gets ERROR replaced. */
void stream_set_publisher(struct stream *s, struct conn *c, enum publisher_change how);

/* The publisher connection went without EOS (<why>): LIVE -> LOST. */
void stream_publisher_lost(struct stream *s, const char *why);

/* Redis says the lease of <name> has passed from <publisher> to <holder>:
 * if <publisher> still publishes <name> here, it gets ERROR replaced and the
 * stream waits (LOST) for the new holder. */
void stream_lease_moved(struct relay *r, const char *name, const char *publisher,
                        const char *holder);

/* A MEDIA frame from the stream's publisher: counted, cached, and queued to
 * every subscriber as its phase and queue allow (not written yet). */
void stream_media(struct stream *s, struct chunk *m, int64_t now_ms);

/* Writes every subscriber's queue (once per publisher read). */
void stream_flush(struct stream *s);

/* Ends the stream: <eos> (an EOS frame) to every subscriber, the Redis
 * record removed with a stream.stop (<reason>), the stream freed. A
 * publisher still attached gets ERROR going_away (a publisher that sent EOS
 * is detached by the caller first). */
void stream_end(struct stream *s, const struct slp_frame *eos, const char *reason);

/* Detaches and returns the stream's publisher connection, or NULL. */
struct conn *stream_take_publisher(struct stream *s);

/* The grace of a LOST stream; every tick. May end <s>. */
void stream_tick(struct stream *s, int64_t now_ms);

/* Calls <fn> for every stream; <fn> may end the stream it is given. */
void stream_foreach(struct relay *r, void (*fn)(struct stream *s, void *arg), void *arg);

/* Frees every stream without a word to anyone (exit). */
void stream_free_all(struct relay *r);

const char *stream_state_name(enum stream_state st);

#endif
