/* sluice-hls, the HLS origin packager: the parts, and the daemon's context.
 * docs/hls.md describes the behaviour; this is the map of the code.
 *
 *   main.c       options, wiring, start and stop
 *   catalog.c    which streams are live (sluice:events, a periodic SCAN of
 *                sluice:stream:*), and taking their leases (candidates)
 *   stream.c     one stream (stream.h): its roles, grace and end, the tick,
 *                the table of streams; its private parts (stream_int.h) are
 *                shared with
 *     stream_lease.c  the lease, the claim (packaging state and stream record
 *                     read, epoch written), the lookups during the grace
 *     stream_media.c  the media path: relay link, packager, state write,
 *                     publishing (memory, disk, playlist)
 *   serve.c      HTTP: /live/<name>/index.m3u8 and segments, from memory
 *   stats.c      metrics
 * and the pure parts, unit-tested and fuzzed:
 *   segmenter.c  MEDIA frames -> segments, cut on keyframes
 *   playlist.c   the live media playlist (RFC 8216)
 *   packager.c   segmenter + playlist + the target-duration policy
 *   pstate.c     sluice:hls:<name> (the packaging state) as JSON
 * with the I/O parts:
 *   link.c       an SLP subscription to a relay
 *   disk.c       the origin directory: atomic writes, origin.json
 */
#ifndef SLUICE_HLS_H
#define SLUICE_HLS_H

#include <stdbool.h>
#include <stdint.h>

#include "disk.h"
#include "sluice/names.h"
#include "sluice/url.h"

struct daemon;
struct event;
struct http_server;
struct metric;
struct metric_series;
struct redis;
struct stream;

struct hls_config {
    char *listen;
    char *admin_listen;
    char *dir;
    char *advertise_url;
    int64_t target_duration_ms;   /* where segments are cut */
    int64_t max_target_duration;  /* seconds: bound on EXT-X-TARGETDURATION */
    int64_t window;               /* segments in the playlist */
    int64_t lease_ttl_ms;
    int64_t end_grace_ms;         /* no publisher this long: EXT-X-ENDLIST */
    int64_t linger_ms;            /* an ended or lost stream stays served this long */
    int64_t scan_interval_ms;
    int64_t max_streams;
    int64_t max_segment_size;
    int64_t redis_timeout_ms;
    int64_t relay_timeout_ms;
    int64_t settle_ms;            /* after a Redis outage, leases of others wait this long */
};

/* Metric series, kept so that updates are one addition. */
enum hls_state_result { WR_OK, WR_ERROR, WR_LOST, WR_COUNT };
struct hls_stats {
    struct metric *fam[32];
    struct metric_series *segments[8];          /* by enum seg_cut */
    struct metric_series *segment_seconds;
    struct metric_series *latency;
    struct metric_series *bytes_playlist, *bytes_segment;
    struct metric_series *media_bytes, *frames_dropped;
    struct metric_series *discontinuities, *takeovers, *leases_lost, *endlists, *clamped;
    struct metric_series *state_writes[WR_COUNT];
    struct metric_series *relay_links, *relay_failures;
    struct metric_series *disk_errors;
    struct metric_series *streams_by_role[8];    /* by enum stream_role */
    struct metric_series *memory;
};

struct hls {
    struct daemon *d;
    const struct hls_config *cfg;
    struct redis *redis;
    struct http_server *http;
    struct disk disk;
    struct hls_stats stats;
    char holder[129];             /* our lease holder id: "<node id>/<random>", <= 128 */
    char advertise[ORIGIN_URL_MAX + 1];
    /* streams by name: every stream we know live, own, or still serve */
    struct stream **bucket;
    unsigned nbuckets, nstreams, nowned;
    struct event *tick;
    struct event *reader;         /* reads the relay links (link_read_all) */
    /* the catalog */
    struct event *scan_timer;
    bool scanning;
    uint64_t scan_gen;            /* bumped when a scan starts */
    int64_t redis_back_ms;        /* monotonic: when Redis came back after an outage; 0 */
    bool redis_was_up;
    /* stopping */
    bool stopping;
    unsigned releasing;           /* leases being released */
    struct event *drain;
};

/* Streams by name (stream.c). */
struct stream *hls_find(struct hls *h, const char *name);
void hls_insert(struct hls *h, struct stream *s);
void hls_remove(struct hls *h, struct stream *s);

/* Calls <fn> on every stream; <fn> may remove the one it is given. */
void hls_each(struct hls *h, void (*fn)(struct stream *s, void *arg), void *arg);

/* True when leases of streams owned by others may be taken: Redis is up and
 * settled after an outage (the owners take theirs back first). */
bool hls_may_take(const struct hls *h, int64_t now_ms, int64_t *wait_ms);

#endif
