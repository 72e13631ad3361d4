/* sluice-hls metrics: see stats.h. */
#include "stats.h"

#include "hls.h"
#include "segmenter.h"
#include "sluice/daemon.h"
#include "sluice/metrics.h"
#include "sluice/refbuf.h"
#include "stream.h"

static const double duration_buckets[] = { 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 15, 20, 30,
                                           60 };

enum {
    M_STREAMS, M_SEGMENTS, M_SEGMENT_SECONDS, M_LATENCY, M_BYTES_SERVED, M_MEDIA_BYTES,
    M_FRAMES_DROPPED, M_DISCONTINUITIES, M_TAKEOVERS, M_LEASES_LOST, M_ENDLISTS, M_CLAMPED,
    M_STATE_WRITES, M_RELAY_LINKS, M_RELAY_FAILURES, M_DISK_ERRORS, M_MEMORY, M_COUNT
};

static const struct metric_def hls_metric_defs[] = {
    { "sluice_hls_streams", METRIC_GAUGE,
      "Streams by role: live and grace are packaged here (the lease is ours), claiming is "
      "reading its state, candidate is live elsewhere or only still served", { "role" } },
    { "sluice_hls_segments_total", METRIC_COUNTER,
      "Segments published, by why they ended: keyframe (target reached), early (the next GOP "
      "would pass the target duration), overrun (no keyframe in time), jump (timestamps), "
      "size, flush (end of input or a stall)", { "cut" } },
    { "sluice_hls_segment_duration_seconds", METRIC_HISTOGRAM, "Durations of published segments",
      { NULL }, duration_buckets, sizeof(duration_buckets) / sizeof(duration_buckets[0]) },
    { "sluice_hls_playlist_latency_seconds", METRIC_HISTOGRAM,
      "From the ingest wall clock at a segment's end to its appearance in the playlist" },
    { "sluice_hls_bytes_served_total", METRIC_COUNTER, "Body bytes served over HTTP",
      { "kind" } },
    { "sluice_hls_media_bytes_total", METRIC_COUNTER, "TS bytes received from relays" },
    { "sluice_hls_frames_dropped_total", METRIC_COUNTER,
      "MEDIA frames not packaged: before the first keyframe, already packaged by the "
      "previous owner, or past the segment size bound" },
    { "sluice_hls_discontinuities_total", METRIC_COUNTER,
      "Segments published after an EXT-X-DISCONTINUITY" },
    { "sluice_hls_takeovers_total", METRIC_COUNTER,
      "Playlists continued from the state another owner (or an earlier run) recorded" },
    { "sluice_hls_leases_lost_total", METRIC_COUNTER,
      "Streams given up because another origin held their lease" },
    { "sluice_hls_endlists_total", METRIC_COUNTER, "Playlists ended with EXT-X-ENDLIST" },
    { "sluice_hls_clamped_durations_total", METRIC_COUNTER,
      "Segments written with a shorter EXTINF than measured, to keep the target duration "
      "(should stay 0)" },
    { "sluice_hls_state_writes_total", METRIC_COUNTER,
      "Packaging state writes: ok, error (Redis unreachable: published anyway), lost "
      "(another holder: not published)", { "result" } },
    { "sluice_hls_relay_links_total", METRIC_COUNTER, "SLP subscriptions opened to relays" },
    { "sluice_hls_relay_failures_total", METRIC_COUNTER,
      "SLP subscriptions that ended without EOS or ERROR (network, timeout, protocol)" },
    { "sluice_hls_disk_errors_total", METRIC_COUNTER, "Failed writes to the output directory" },
    { "sluice_hls_memory_bytes", METRIC_GAUGE,
      "Segments and playlists in memory, including those still being sent" },
    { NULL },
};

int hls_stats_init(struct hls *h)
{
    struct hls_stats *st = &h->stats;
    struct metric **m = st->fam;
    if (metrics_register(h->d->metrics, hls_metric_defs, m) == -1)
        return -1;
    for (int r = 0; r < SR_COUNT; r++)
        st->streams_by_role[r] = metric_at(m[M_STREAMS], stream_role_name((enum stream_role)r));
    for (int c = 0; c < SEG_CUT_COUNT; c++)
        st->segments[c] = metric_at(m[M_SEGMENTS], seg_cut_name((enum seg_cut)c));
    st->segment_seconds = metric_at(m[M_SEGMENT_SECONDS]);
    st->latency = metric_at(m[M_LATENCY]);
    st->bytes_playlist = metric_at(m[M_BYTES_SERVED], "playlist");
    st->bytes_segment = metric_at(m[M_BYTES_SERVED], "segment");
    st->media_bytes = metric_at(m[M_MEDIA_BYTES]);
    st->frames_dropped = metric_at(m[M_FRAMES_DROPPED]);
    st->discontinuities = metric_at(m[M_DISCONTINUITIES]);
    st->takeovers = metric_at(m[M_TAKEOVERS]);
    st->leases_lost = metric_at(m[M_LEASES_LOST]);
    st->endlists = metric_at(m[M_ENDLISTS]);
    st->clamped = metric_at(m[M_CLAMPED]);
    st->state_writes[WR_OK] = metric_at(m[M_STATE_WRITES], "ok");
    st->state_writes[WR_ERROR] = metric_at(m[M_STATE_WRITES], "error");
    st->state_writes[WR_LOST] = metric_at(m[M_STATE_WRITES], "lost");
    st->relay_links = metric_at(m[M_RELAY_LINKS]);
    st->relay_failures = metric_at(m[M_RELAY_FAILURES]);
    st->disk_errors = metric_at(m[M_DISK_ERRORS]);
    st->memory = metric_at(m[M_MEMORY]);
    return 0;
}

static void count_role(struct stream *s, void *arg)
{
    unsigned *n = arg;
    n[stream_role(s)]++;
}

void hls_stats_collect(void *arg)
{
    struct hls *h = arg;
    unsigned n[SR_COUNT] = { 0 };
    hls_each(h, count_role, n);
    for (int r = 0; r < SR_COUNT; r++)
        metric_set(h->stats.streams_by_role[r], n[r]);
    metric_set(h->stats.memory, (double)refbuf_live_bytes());
}
