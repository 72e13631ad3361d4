/* sluice-ingest: SRT in, SLP out. The context every part reaches, and the
 * configuration it was built from. Built by ingest_new() (ingest.c), wired by
 * main.c. The files, by layer:
 *
 *   clients     the SRT listener, the only user of libsrt (srtsrv.c: its
 *               thread, accept and read, the loop side; srtsend.c: sending to
 *               viewers; srtsetup.c: setup, libsrt's log; srtmap.c: the
 *               socket map; all sharing srtsrv_int.h), conn.c (a client
 *               connection on the loop: decision, session authorization,
 *               takeover, handing bytes to publish)
 *   pipeline    publish.c (one stream: publish lease, relay link, TS
 *               annotation, pre-roll, back-pressure), viewer.c (one viewer:
 *               locating the stream's relay, subscribing, following it,
 *               dropping for a slow viewer), relays.c (which relay);
 *               the SLP connections are libcommon's slpclient
 *   auth        gate.c (what the listen callback decides with, thread-safe),
 *               authsync.c (keeping the table: api loads, sluice:events)
 *   pure        streamid.c (the StreamID grammar), authtable.c (the table,
 *               its version rules, the decision)
 *   plumbing    ingest.c (building, metrics, readiness, stopping), config.c
 *
 * The publish pipeline and the viewer know nothing of SRT: a connection
 * hands the one MPEG-TS bytes and a description (stream, protocol, client),
 * and gives the other a sink for TS, so the RTMP listener of a later issue
 * uses the same pipelines.
 */
#ifndef SLUICE_INGEST_H
#define SLUICE_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/config.h"

#define INGEST_AGENT "sluice-ingest/0.1"   /* our software, in SLP HELLO */

struct daemon;
struct gate;
struct srtsrv;
struct authsync;
struct relays;
struct redis;
struct httpc;
struct metric;
struct event;
struct conn;
struct publish;
struct viewer;

struct ingest_config {
    char *srt_listen;
    char *admin_listen;
    char *api_url;
    char *internal_token;
    char *relay;
    bool takeover;
    bool playback;
    int64_t srt_latency_ms, srt_payload_size, srt_rcvbuf, srt_udp_rcvbuf;
    int64_t srt_peer_idle_ms, srt_max_connections, srt_batch_ms, srt_stats_ms;
    int64_t authtable_refresh_ms, api_timeout_ms, authorize_timeout_ms;
    int64_t lease_ttl_ms;
    int64_t relay_refresh_ms, relay_connect_timeout_ms, relay_backoff_max_ms;
    int64_t relay_buffer, auth_buffer;
    int64_t viewer_wait_ms, viewer_buffer;
};

extern const struct config_opt ingest_opts[];

/* Checks what the table cannot express. Returns 0, or -1 with a malloc'd
 * message in *<err>. */
int ingest_config_check(const struct ingest_config *cfg, char **err);

/* The metric families, one table (ingest.c). */
enum ingest_metric {
    IM_CONNS_TOTAL, IM_CONNS_CURRENT,
    IM_C_CTRL_PKTS_SENT, IM_C_CTRL_PKTS_RECV, IM_C_CTRL_BYTES_SENT, IM_C_CTRL_BYTES_RECV,
    IM_C_DATA_PKTS_SENT, IM_C_DATA_PKTS_RECV, IM_C_DATA_PKTS_LOST, IM_C_DATA_PKTS_DROPPED,
    IM_C_DATA_BYTES_SENT, IM_C_DATA_BYTES_RECV, IM_C_DATA_BYTES_LOST,
    IM_C_RTT, IM_C_RTT_VAR, IM_C_RCVBUF,
    IM_STREAM_BYTES, IM_STREAM_DROPPED, IM_REJECTS, IM_CLOSED, IM_AUTHORIZE,
    IM_AUTH_ENTRIES, IM_AUTH_VERSION, IM_AUTH_LOADED, IM_AUTH_LOADS, IM_EVENTS,
    IM_RELAY_LINKS, IM_RELAY_CONNECTS, IM_RELAYS_KNOWN, IM_REDIS_UP,
    IM_HANDOFFS, IM_CHUNKS, IM_SRT_DROPPED, IM_SENT_MSGS, IM_SEND_WAKES,
    IM_VIEWERS, IM_VIEWER_STATES, IM_VIEWER_BYTES, IM_VIEWER_DROPPED, IM_VIEWER_GAPS,
    IM_VIEWER_SUBSCRIBES, IM_REVOKE_SECONDS,
    IM_COUNT
};

struct ingest {
    struct daemon *d;
    const struct ingest_config *cfg;
    struct gate *gate;
    struct srtsrv *srt;
    struct authsync *auth;
    struct relays *relays;
    struct redis *redis;
    struct httpc *api;             /* authtable loads */
    struct httpc *authz;           /* authorize calls (their own, shorter timeout) */
    char auth_header[600];         /* "Bearer <internal token>" */
    struct conn *conns;            /* every client connection */
    struct publish *pubs;          /* every publish pipeline, stopping ones too */
    struct viewer *viewers;        /* every viewer */
    uint32_t next_id;              /* connection ids: a random start, then +1 */
    int64_t log_window_ms;         /* reject log rate limit */
    unsigned log_count, log_suppressed;
    bool stopping;
    struct event *drain_timer;
    struct metric *m[IM_COUNT];
};

/* Builds everything and starts listening. NULL (logged) on failure. */
struct ingest *ingest_new(struct daemon *d, const struct ingest_config *cfg);

/* The daemon's stop hook: stops accepting, ends every publish (EOS), waits. */
void ingest_stop(void *arg);

void ingest_free(struct ingest *ing);

/* Adds <v> to the series of <m> with the given label (or none). */
void ingest_count(struct ingest *ing, enum ingest_metric m, const char *label, double v);

/* The authorization table changed (an event, a full load): connections it
 * no longer admits are disconnected, publishers and viewers (conn.c).
 * <since_us>: when the change reached ingest (clock_mono_us), from which
 * sluice_ingest_revoke_seconds counts. */
void ingest_recheck(struct ingest *ing, int64_t since_us);

#endif
