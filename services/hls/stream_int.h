/* Private to the three files of one stream (see stream.h for its roles, and
 * docs/hls.md):
 *   stream.c        the public face and the life: the table of streams, the
 *                   helpers every part uses, the grace and EXT-X-ENDLIST,
 *                   what the catalog says, the periodic tick, stop and free
 *   stream_lease.c  the lease (attempts, release, hand-over, loss) and the
 *                   Redis commands around it: the claim (state and stream
 *                   record read, epoch written), and where the stream is now
 *   stream_media.c  the media path: relay link -> packager -> state write ->
 *                   publish (memory, disk, playlist), and what is served
 */
#ifndef SLUICE_HLS_STREAM_INT_H
#define SLUICE_HLS_STREAM_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/util.h>

#include "playlist.h"
#include "pstate.h"
#include "records.h"
#include "segmenter.h"
#include "sluice/names.h"
#include "sluice/redis.h"
#include "sluice/slp-t.h"
#include "stream.h"

struct event;
struct hls;
struct leasekeep;
struct link;
struct packaged;
struct packager;
struct refbuf;

#define SLOTS (PL_MAX_ENTRIES + PL_MAX_ENTRIES / 2 + 2)   /* segments kept in memory */
#define MAX_PENDING 4          /* segments waiting for their state write */
#define RETRY_MS 1000
#define STATE_TTL_MS 86400000  /* sluice:hls:<name> lives a day past its last write */

/* Writes <st> to sluice:hls:<name> only while we hold the lease (the
 * claim's write and each segment's); <cb> gets 1 (written), 0 (no lease
 * right now) or the other holder. Returns 0, or -1 when it cannot be asked
 * (Redis down, out of memory): <cb> is not called. stream_lease.c. */
int stream_write_state(struct stream *s, const struct pstate *st, redis_reply_cb cb);

struct seg_slot {
    uint64_t epoch, seq;
    struct refbuf *b;
    char name[PL_URI_MAX];
};

/* A segment (or only a playlist change) waiting for its state write. */
struct pending {
    struct refbuf *seg;         /* NULL: a playlist change only (EXT-X-ENDLIST) */
    uint64_t epoch, seq;
    char seg_name[PL_URI_MAX];
    struct refbuf *playlist;
    unsigned target;
    uint64_t version, first_seq;
    struct pstate st;
    int64_t end_wall_us;        /* ingest clock at the segment's end, for the latency */
    int64_t duration_ms;
    enum seg_cut cut;
    bool disc;
};

/* A Redis command in flight; outlives the stream if the stream goes first. */
struct sop {
    struct stream *s;
};

struct stream {
    struct hls *h;
    char name[STREAM_NAME_MAX + 1];
    char key_lease[96], key_state[96], key_stream[96];
    enum stream_role role;
    bool live;                  /* the catalog sees it live */
    bool ending;                /* EXT-X-ENDLIST is being published: release after */
    bool stopping;              /* the daemon stops: release after the last write */
    bool releasing;             /* counted in h->releasing */
    struct leasekeep *lease;
    struct event *timer;        /* lease attempts (candidate), retries (claiming) */
    struct sop *op_pttl, *op_load, *op_write, *op_lookup;
    /* the source */
    char relay[RELAY_ADDR_MAX + 1];
    char publisher[4 * SLP_ID_MAX + 8];   /* escaped */
    struct link *link;
    int64_t grace_until_ms, next_link_ms, last_media_ms;
    /* packaging */
    struct packager *pk;
    struct pstate prev;         /* read when claiming */
    bool prev_valid;
    struct pending *pending;    /* MAX_PENDING, allocated while owned */
    unsigned npending;
    /* what is served */
    struct refbuf *playlist;
    unsigned target;
    uint64_t version;
    struct seg_slot *slots;     /* SLOTS, allocated while something is served */
    unsigned shead, nslots;
    int64_t linger_until_ms;    /* a candidate serving what it packaged, until then */
    bool served_ended;          /* what is served carries EXT-X-ENDLIST, and the stream
                                   has not been live anywhere since */
    int64_t written_ms;         /* when the served playlist was last written to disk */
    uint64_t scan_gen;          /* the catalog's scan that last saw it live */
    struct stream *hnext;
};

/* ---- stream.c ------------------------------------------------------------- */

/* A Redis command in flight for <s>, its pointer kept in <slot>. NULL when out
 * of memory. */
struct sop *stream_sop_new(struct stream *s, struct sop **slot);

/* The stream an op belongs to (NULL if gone); frees the op and clears <slot>'s
 * pointer to it. */
struct stream *stream_sop_done(struct sop *op, struct sop **(*slot)(struct stream *));
struct sop **stream_slot_pttl(struct stream *s);
struct sop **stream_slot_load(struct stream *s);
struct sop **stream_slot_write(struct stream *s);
struct sop **stream_slot_lookup(struct stream *s);

/* The op's reply will find no stream (<op> may be NULL). */
void stream_sop_detach(struct sop *op);

/* Arms s->timer in <ms> (at once if <= 0). */
void stream_set_timer(struct stream *s, int64_t ms);

/* Sets the role, keeping h->nowned. */
void stream_set_role(struct stream *s, enum stream_role r);

/* No publisher: GRACE (unless in it already), the next link tried in
 * <retry_ms>. */
void stream_enter_grace(struct stream *s, int64_t retry_ms);

/* Frees <s> if there is nothing left to do with it or to serve: do not use
 * <s> after this. */
void stream_maybe_free(struct stream *s);

/* ---- stream_lease.c ------------------------------------------------------- */

/* Lets the lease go (handed over with hls.released when the daemon stops),
 * counted in h->releasing until it is gone; then <s> may be freed. */
void stream_release_lease(struct stream *s);

/* The lease is another's (<other>, NULL if unknown): packaging stops at once,
 * what was published stays served for <linger>, and unless the daemon stops
 * the lease is tried again when it should expire. */
void stream_lost(struct stream *s, const char *other);

/* GRACE: asks the stream record where the stream is now, then opens the link
 * (at once, to the relay known, when Redis cannot be asked). */
void stream_look_for_source(struct stream *s);

/* s->timer: lease attempts (candidate), retries (claiming). */
void stream_on_timer(evutil_socket_t fd, short what, void *arg);

/* ---- stream_media.c ------------------------------------------------------- */

/* Drops the oldest segment served (and its file, if <from_disk>). */
void stream_evict_first(struct stream *s, bool from_disk);

/* Forgets everything served (memory and disk). */
void stream_drop_served(struct stream *s);

/* After the last pending change: release the lease if we are done with it. */
void stream_after_writes(struct stream *s);

/* Queues a playlist change (with the segment <out>, if not NULL) for its
 * state write. Takes out->seg.data. */
void stream_publish(struct stream *s, struct packaged *out);

/* Ends the open segment (the source went away, or stalled) and publishes it. */
void stream_flush(struct stream *s, bool discontinuity);

/* Subscribes at s->relay (none yet if it is unknown); GRACE if that fails. */
void stream_open_link(struct stream *s);

/* CLAIMING, epoch recorded: a packager (continuing s->prev if any), LIVE, the
 * link opened; stream_lost() when out of memory. */
void stream_start_packaging(struct stream *s);

/* Drops the packaging (not what is served). */
void stream_stop_packaging(struct stream *s);

#endif
