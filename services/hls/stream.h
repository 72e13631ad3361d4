/* One stream, as this origin sees it (docs/hls.md):
 *
 *   CANDIDATE --lease taken--> CLAIMING --state read, epoch claimed--> LIVE
 *       ^                                                             |  ^
 *       |                                  no publisher (EOS, lost) v  | back
 *       +---- lease lost, or EXT-X-ENDLIST after end-grace ------ GRACE --+
 *
 *  - CANDIDATE: live somewhere (the catalog says so), not packaged here; its
 *    lease is tried when the holder's should expire (PTTL), at once when an
 *    origin says it let it go, and never while Redis settles after an outage.
 *    A candidate may still serve what it packaged before (an ended or lost
 *    stream) for <linger>.
 *  - CLAIMING: the lease is ours; the packaging state and the stream record
 *    are read, and a new epoch is written before anything is packaged, so
 *    that no two owners ever name a segment alike.
 *  - LIVE: subscribed to the relay; frames go through the packager; each
 *    segment is recorded in Redis (only while we hold the lease), then
 *    published: memory, disk, playlist.
 *  - GRACE: no publisher; looking for the stream again (events, the stream
 *    record, or waiting at the relay). A publisher back within <end-grace>
 *    continues the playlist with a discontinuity; otherwise EXT-X-ENDLIST,
 *    and the lease is released.
 * While Redis is down an owner goes on (leases are kept by leasekeep); a
 * segment whose state write finds another holder is not published, and the
 * stream is given up at once.
 */
#ifndef SLUICE_HLS_STREAM_H
#define SLUICE_HLS_STREAM_H

#include <stdbool.h>
#include <stdint.h>

struct hls;
struct refbuf;
struct stream;

enum stream_role { SR_CANDIDATE, SR_CLAIMING, SR_LIVE, SR_GRACE, SR_COUNT };

/* The stream <name>, known or new (as a candidate). NULL when out of memory
 * or at the bound on streams. */
struct stream *stream_get(struct hls *h, const char *name);

/* The catalog sees the stream live, on <relay> if known ("" or NULL if not):
 * a candidate tries its lease (soon), an owner in GRACE subscribes there.
 * Marks it seen by the scan under way (hls->scan_gen). */
void stream_seen_live(struct stream *s, const char *relay);

/* Try the lease now if the stream is live (an origin released it). */
void stream_try_now(struct stream *s);

/* The catalog no longer sees it live (stream.stop, or a scan without it). A
 * candidate with nothing to serve is freed: do not use <s> after this. */
void stream_gone(struct stream *s);

/* Timers: stalls, grace, linger. Every ~250 ms. May free <s>. */
void stream_tick(struct stream *s, int64_t now_ms);

/* Redis came back (after an outage, or for the first time). */
void stream_redis_up(struct stream *s);

/* The daemon stops: an owner publishes what it has, records it, releases
 * its lease (hls->releasing counts those under way). */
void stream_stop(struct stream *s);

/* Frees at once (exit): nothing is released or written. */
void stream_free(struct stream *s);

enum stream_role stream_role(const struct stream *s);
bool stream_live(const struct stream *s);
uint64_t stream_scan_gen(const struct stream *s);   /* see hls->scan_gen */
const char *stream_name(const struct stream *s);
bool stream_owned(const struct stream *s);

/* What is served: the playlist (NULL when there is none yet) and its target
 * duration and version (for ETags), and a segment by its name's numbers. The
 * buffers are the stream's: take a reference (refbuf_ref) to keep one. */
struct refbuf *stream_playlist(const struct stream *s, unsigned *target, uint64_t *version);
struct refbuf *stream_segment(const struct stream *s, uint64_t epoch, uint64_t seq);

const char *stream_role_name(enum stream_role r);

#endif
