/* One stream being published into the suite, whatever protocol it came in
 * by: the publish lease, the relay link, the TS annotator, and what happens
 * between them.
 *
 *   LEASING -> CONNECTING -> LIVE        the normal start
 *                  ^            |
 *                  +- BACKOFF <-+        the relay refused or the link broke:
 *                                        again, with backoff, maybe elsewhere
 *
 * Except when the relay refused for good: ERROR conflict (the lease is not
 * ours) or replaced (another publisher took the stream over): then failed()
 * at once, no retry, since a retry could only be refused too.
 *
 * The connection feeds MPEG-TS bytes; the annotator cuts them into MEDIA
 * frames (sluice/ts.h). While not LIVE, the frames since the latest keyframe
 * are kept (bounded by relay-buffer) and sent as soon as a relay accepts, so
 * a stream starts on a keyframe without waiting for the next one; after a
 * gap that first keyframe carries DISCONTINUITY. While LIVE, frames go to the
 * link; if the relay cannot keep up (more than relay-buffer unsent), frames
 * are dropped up to the next keyframe, which goes out flagged DISCONTINUITY
 * once the output has drained to half (SLP.md section 9, rule 7).
 *
 * The publisher id, the lease holder, is "<node id>/<connection id>".
 */
#ifndef SLUICE_INGEST_PUBLISH_H
#define SLUICE_INGEST_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ingest;
struct publish;

struct publish_params {
    const char *stream;          /* the canonical name */
    const char *protocol;        /* "srt", "rtmp" */
    const char *client;          /* "ip:port" */
    const char *conn_id;         /* the connection id: the publisher id's local part */
    int64_t started_us;          /* wall clock when the client connected */
};

/* Why a stream cannot go on (publish_handler.failed). */
enum publish_failure {
    PF_LEASE,        /* the lease is not ours: refused (takeover off), found held
                      * by another at a renewal, or the relay answered conflict */
    PF_REPLACED,     /* the relay gave the stream to another publisher (ERROR
                      * replaced): a takeover, typically through another ingest */
};

struct publish_handler {
    /* The stream cannot go on, for <f>; <why> is for the log. The owner
     * closes its client, then calls publish_stop(). Called at most once,
     * from the loop. */
    void (*failed)(void *arg, enum publish_failure f, const char *why);
};

enum publish_stop {
    PUB_ENDED,       /* the client finished: EOS ended */
    PUB_SHUTDOWN,    /* ingest is stopping: EOS shutdown */
    PUB_REVOKED,     /* the key changed or the stream was deleted: EOS revoked */
    PUB_LOST,        /* the client vanished: no EOS, the relay waits for it */
    PUB_REPLACED,    /* another publisher took the name: no EOS, nothing drained */
};

enum publish_state { PS_LEASING, PS_CONNECTING, PS_LIVE, PS_BACKOFF, PS_STOPPING, PS_COUNT };

/* Starts: takes the lease, then connects. NULL (logged) if out of memory. */
struct publish *publish_start(struct ingest *ing, const struct publish_params *p,
                              const struct publish_handler *h, void *arg);

/* <len> bytes of TS from the client; <wall_us> when the first arrived. */
void publish_feed(struct publish *p, const uint8_t *buf, size_t len, int64_t wall_us);

/* The owner is done with <p>: it ends as <how> says, then frees itself
 * (holding the daemon while it drains). No callback runs after this. */
void publish_stop(struct publish *p, enum publish_stop how);

enum publish_state publish_state(const struct publish *p);
const char *publish_state_name(enum publish_state s);

/* Redis went up or down: leases are re-taken at once (ingest.c forwards). */
void publish_redis_state(struct publish *p, bool up);

/* The relay <stream> is live on from this ingest, if it is: 0 and <out>
 * filled, or -1. (Viewers use it while Redis cannot tell them.) */
struct relay_choice;
int publish_relay(const struct ingest *ing, const char *stream, struct relay_choice *out);

/* After the loop: frees every pipeline at once (no I/O, no callbacks). */
void publish_free_all(struct ingest *ing);

/* The next in ing->pubs. */
struct publish *publish_next(const struct publish *p);

#endif
