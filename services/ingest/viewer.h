/* One viewer of a stream (SRT m=request), whatever protocol it watches by:
 * finding the stream's relay, subscribing there over SLP, and handing the
 * stream's TS to a sink (the client connection), through relay failures.
 *
 *   LOCATING --(sluice:stream:<name>, or stream.start)--> SUBSCRIBING --PUBLISH--> LIVE
 *      ^  |                                                                          |
 *      |  +-- not live: looked up again, until viewer-wait runs out: ended           |
 *      +---- the link broke, the relay said shutdown or publisher_lost, or ----------+
 *            stream.start names another relay (the stream moved)
 *
 * A viewer starts with the relay's GOP cache (at a keyframe, at once); after
 * a relay change it starts again at the next keyframe (no frame twice). The
 * stream ends for the viewer with the relay's EOS `ended` or `revoked`, or
 * when it was away (not live, or moved and not found) for viewer-wait.
 *
 * A slow viewer: a frame goes to the sink only while the viewer is not
 * behind (viewer_admit below); once behind, frames are dropped up to the next
 * keyframe that finds it caught up again (a clean skip, never half a frame),
 * counted per stream.
 */
#ifndef SLUICE_INGEST_VIEWER_H
#define SLUICE_INGEST_VIEWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ingest;
struct viewer;

/* How far behind the viewer is, as its transport measures it. */
struct viewer_lag {
    size_t bytes;                /* sent and not yet acknowledged */
    int64_t ms;                  /* the age span of what is unacknowledged (0: unknown) */
    int64_t max_ms;              /* behind beyond this (0: no time bound) */
};

enum viewer_end {
    VE_ENDED,        /* the stream ended (EOS ended) */
    VE_REVOKED,      /* the stream was revoked (EOS revoked) */
    VE_NOT_LIVE,     /* not live (or gone) for viewer-wait */
    VE_FAILED,       /* out of memory, or the relay broke SLP */
};

struct viewer_sink {
    /* <len> bytes of TS (whole packets). Returns 0, or -1 if they were not
     * taken (the client is gone). */
    int (*send)(void *arg, const uint8_t *ts, size_t len);
    void (*lag)(void *arg, struct viewer_lag *out);
    /* The stream is over for this viewer (<why> printable, for the log). The
     * owner closes its client and calls viewer_stop(). Called once, never
     * from inside another viewer_* call. */
    void (*end)(void *arg, enum viewer_end end, const char *why);
};

struct viewer_params {
    const char *stream;
    const char *client;          /* "ip:port", for the log */
    const char *conn_id;         /* for the log */
};

/* Starts locating <p->stream>. NULL (logged) if out of memory. */
struct viewer *viewer_start(struct ingest *ing, const struct viewer_params *p,
                            const struct viewer_sink *sink, void *arg);

/* The owner is done: frees <v> at once (its relay link is dropped). No
 * callback runs after this. NULL is fine. */
void viewer_stop(struct viewer *v);

/* A relay announced <stream> (stream.start): viewers waiting for it
 * subscribe there at once; viewers on another relay move. */
void viewer_stream_started(struct ingest *ing, const char *stream, const char *relay_addr,
                           const char *relay_id);

enum viewer_state { VS_LOCATING, VS_SUBSCRIBING, VS_LIVE, VS_ENDING, VS_COUNT };
const char *viewer_state_name(enum viewer_state s);

/* Viewers by state (for the metrics). */
void viewer_count_states(const struct ingest *ing, unsigned counts[VS_COUNT]);

/* After the loop: frees every viewer (no I/O, no callbacks). */
void viewer_free_all(struct ingest *ing);

/* The slow-viewer rule, pure: whether a frame (<keyframe> or not) goes to a
 * viewer now <lag> behind, given <limit> bytes. <*dropping> carries the gap
 * from frame to frame: it starts when the viewer is behind (bytes over
 * <limit>, or lag->ms over lag->max_ms) and ends only at a keyframe that
 * finds it caught up to half of both. Sets <*gap_ended> when this frame ends
 * a gap. */
bool viewer_admit(bool *dropping, bool keyframe, const struct viewer_lag *lag, size_t limit,
                  bool *gap_ended);

#endif
