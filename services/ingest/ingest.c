/* sluice-ingest's context: building it, metrics, readiness, stopping,
 * freeing. */
#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "authsync.h"
#include "authtable.h"
#include "conn.h"
#include "gate.h"
#include "publish.h"
#include "relays.h"
#include "srtsrv.h"
#include "viewer.h"
#include "sluice/admin.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/httpc.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/redis.h"

#define DRAIN_POLL_MS 20

#define CONN_LABELS { "id", "stream" }

static const struct metric_def ingest_metric_defs[] = {
    [IM_CONNS_TOTAL] = { "srt_connections_total", METRIC_COUNTER,
                         "SRT connections accepted (handshake done)" },
    [IM_CONNS_CURRENT] = { "srt_connections_current", METRIC_GAUGE,
                           "Open SRT connections by what they do (handshake: the session id "
                           "is being authorized)", { "mode" } },
    [IM_C_CTRL_PKTS_SENT] = { "srt_connection_ctrl_packets_sent", METRIC_COUNTER,
                              "Control packets sent (ACK, NAK)", CONN_LABELS },
    [IM_C_CTRL_PKTS_RECV] = { "srt_connection_ctrl_packets_recv", METRIC_COUNTER,
                              "Control packets received (ACK, NAK)", CONN_LABELS },
    [IM_C_CTRL_BYTES_SENT] = { "srt_connection_ctrl_bytes_sent", METRIC_COUNTER,
                               "Control bytes sent (estimated from the packet count)",
                               CONN_LABELS },
    [IM_C_CTRL_BYTES_RECV] = { "srt_connection_ctrl_bytes_recv", METRIC_COUNTER,
                               "Control bytes received (estimated from the packet count)",
                               CONN_LABELS },
    [IM_C_DATA_PKTS_SENT] = { "srt_connection_data_packets_sent", METRIC_COUNTER,
                              "Data packets sent, retransmissions included", CONN_LABELS },
    [IM_C_DATA_PKTS_RECV] = { "srt_connection_data_packets_recv", METRIC_COUNTER,
                              "Data packets received, retransmissions included",
                              CONN_LABELS },
    [IM_C_DATA_PKTS_LOST] = { "srt_connection_data_packets_lost", METRIC_COUNTER,
                              "Data packets reported lost (before any retransmission)",
                              CONN_LABELS },
    [IM_C_DATA_PKTS_DROPPED] = { "srt_connection_data_packets_dropped", METRIC_COUNTER,
                                 "Data packets given up (too late to play or to send)",
                                 CONN_LABELS },
    [IM_C_DATA_BYTES_SENT] = { "srt_connection_data_bytes_sent", METRIC_COUNTER,
                               "Data bytes sent, headers included", CONN_LABELS },
    [IM_C_DATA_BYTES_RECV] = { "srt_connection_data_bytes_recv", METRIC_COUNTER,
                               "Data bytes received, headers included", CONN_LABELS },
    [IM_C_DATA_BYTES_LOST] = { "srt_connection_data_bytes_lost", METRIC_COUNTER,
                               "Data bytes reported lost", CONN_LABELS },
    [IM_C_RTT] = { "srt_connection_rtt", METRIC_GAUGE,
                   "Smoothed round-trip time, milliseconds", CONN_LABELS },
    [IM_C_RTT_VAR] = { "srt_connection_rtt_variance", METRIC_GAUGE,
                       "Round-trip time variation, milliseconds (estimated)", CONN_LABELS },
    [IM_C_RCVBUF] = { "srt_connection_rcvbuf_ms", METRIC_GAUGE,
                      "Media waiting in libsrt's receive buffer, milliseconds", CONN_LABELS },
    [IM_STREAM_BYTES] = { "sluice_ingest_stream_bytes_total", METRIC_COUNTER,
                          "MPEG-TS bytes received per live stream", { "stream" } },
    [IM_STREAM_DROPPED] = { "sluice_ingest_stream_dropped_bytes_total", METRIC_COUNTER,
                            "Bytes not sent to a relay (it fell behind, or none was up)",
                            { "stream" } },
    [IM_REJECTS] = { "sluice_ingest_rejects_total", METRIC_COUNTER,
                     "SRT handshakes refused, by reject code", { "code" } },
    [IM_CLOSED] = { "sluice_ingest_closed_total", METRIC_COUNTER,
                    "Connections ended, by reason", { "reason" } },
    [IM_AUTHORIZE] = { "sluice_ingest_authorize_total", METRIC_COUNTER,
                       "Session authorizations asked of the api, by result", { "result" } },
    [IM_AUTH_ENTRIES] = { "sluice_ingest_authtable_streams", METRIC_GAUGE,
                          "Streams in the authorization table" },
    [IM_AUTH_VERSION] = { "sluice_ingest_authtable_version", METRIC_GAUGE,
                          "Newest authtable version applied" },
    [IM_AUTH_LOADED] = { "sluice_ingest_authtable_loaded", METRIC_GAUGE,
                         "1 once a table was loaded (before: every publisher is refused)" },
    [IM_AUTH_LOADS] = { "sluice_ingest_authtable_loads_total", METRIC_COUNTER,
                        "Full loads of the authorization table, by result", { "result" } },
    [IM_EVENTS] = { "sluice_ingest_auth_events_total", METRIC_COUNTER,
                    "Auth events from sluice:events, by result", { "result" } },
    [IM_RELAY_LINKS] = { "sluice_ingest_relay_links", METRIC_GAUGE,
                         "Streams by the state of their relay link", { "state" } },
    [IM_RELAY_CONNECTS] = { "sluice_ingest_relay_connects_total", METRIC_COUNTER,
                            "Relay link attempts and losses, by result", { "result" } },
    [IM_RELAYS_KNOWN] = { "sluice_ingest_relays_known", METRIC_GAUGE,
                          "Relays to choose from" },
    [IM_REDIS_UP] = { "sluice_ingest_redis_up", METRIC_GAUGE, "1 while Redis is connected" },
    [IM_HANDOFFS] = { "sluice_ingest_srt_handoffs_total", METRIC_COUNTER,
                      "Wakeups of the event loop by the SRT thread" },
    [IM_CHUNKS] = { "sluice_ingest_srt_chunks_total", METRIC_COUNTER,
                    "Chunks of received media handed to the event loop" },
    [IM_SRT_DROPPED] = { "sluice_ingest_srt_dropped_bytes_total", METRIC_COUNTER,
                         "Bytes read from libsrt and dropped: the event loop was too far "
                         "behind" },
    [IM_SENT_MSGS] = { "sluice_ingest_srt_sent_messages_total", METRIC_COUNTER,
                       "SRT messages handed to libsrt for viewers" },
    [IM_SEND_WAKES] = { "sluice_ingest_srt_send_wakeups_total", METRIC_COUNTER,
                        "Wakeups of the SRT thread by the event loop with media to send" },
    [IM_VIEWERS] = { "sluice_ingest_stream_viewers", METRIC_GAUGE,
                     "SRT viewers per stream (m=request), waiting ones included",
                     { "stream" } },
    [IM_VIEWER_STATES] = { "sluice_ingest_viewers", METRIC_GAUGE,
                           "Viewers by state: locating (waiting for the stream), subscribing, "
                           "live, ending", { "state" } },
    [IM_VIEWER_BYTES] = { "sluice_ingest_viewer_bytes_total", METRIC_COUNTER,
                          "MPEG-TS bytes sent to the viewers of a stream", { "stream" } },
    [IM_VIEWER_DROPPED] = { "sluice_ingest_viewer_dropped_bytes_total", METRIC_COUNTER,
                            "Bytes not sent to viewers that fell behind", { "stream" } },
    [IM_VIEWER_GAPS] = { "sluice_ingest_viewer_gaps_total", METRIC_COUNTER,
                         "Times a viewer fell behind and went on from a keyframe",
                         { "stream" } },
    [IM_VIEWER_SUBSCRIBES] = { "sluice_ingest_viewer_subscriptions_total", METRIC_COUNTER,
                               "Viewer subscriptions at relays, by outcome: accepted, "
                               "not_found, failed, lost, ended, moved", { "result" } },
    [IM_REVOKE_SECONDS] = { "sluice_ingest_revoke_seconds", METRIC_HISTOGRAM,
                            "From an auth change reaching ingest (an event on sluice:events, "
                            "a table load) to the SRT close of each connection it revoked",
                            { "mode" } },
    [IM_COUNT] = { NULL },
};

void ingest_count(struct ingest *ing, enum ingest_metric m, const char *label, double v)
{
    if (ing->m[0] == NULL)
        return;
    metric_add(label ? metric_at(ing->m[m], label) : metric_at(ing->m[m]), v);
}

void ingest_recheck(struct ingest *ing, int64_t since_us)
{
    conn_recheck(ing, since_us);
}

static void on_collect(void *arg)
{
    struct ingest *ing = arg;
    unsigned modes[3];
    conn_count_modes(ing, modes);
    metric_set(metric_at(ing->m[IM_CONNS_CURRENT], "handshake"), modes[CONN_HANDSHAKE]);
    metric_set(metric_at(ing->m[IM_CONNS_CURRENT], "request"), modes[CONN_REQUEST]);
    metric_set(metric_at(ing->m[IM_CONNS_CURRENT], "publish"), modes[CONN_PUBLISH]);
    unsigned states[PS_COUNT] = { 0 };
    for (const struct publish *p = ing->pubs; p != NULL; p = publish_next(p))
        states[publish_state(p)]++;
    for (int s = 0; s < PS_COUNT; s++)
        metric_set(metric_at(ing->m[IM_RELAY_LINKS], publish_state_name(s)), states[s]);
    const struct authtable *t = gate_table(ing->gate);
    metric_set(metric_at(ing->m[IM_AUTH_ENTRIES]), (double)authtable_size(t));
    metric_set(metric_at(ing->m[IM_AUTH_VERSION]), (double)authtable_max_version(t));
    metric_set(metric_at(ing->m[IM_AUTH_LOADED]), authsync_ready(ing->auth, NULL));
    metric_set(metric_at(ing->m[IM_RELAYS_KNOWN]), (double)relays_count(ing->relays));
    metric_set(metric_at(ing->m[IM_REDIS_UP]), redis_is_up(ing->redis));
    struct srtsrv_counters sc;
    srtsrv_counters(ing->srt, &sc);
    metric_set(metric_at(ing->m[IM_HANDOFFS]), (double)sc.handoffs);
    metric_set(metric_at(ing->m[IM_CHUNKS]), (double)sc.chunks);
    metric_set(metric_at(ing->m[IM_SRT_DROPPED]), (double)sc.dropped_bytes);
    metric_set(metric_at(ing->m[IM_REJECTS], "unlogged"), (double)sc.rejects_unlogged);
    metric_set(metric_at(ing->m[IM_SENT_MSGS]), (double)sc.sent_msgs);
    metric_set(metric_at(ing->m[IM_SEND_WAKES]), (double)sc.send_wakes);
    unsigned vs[VS_COUNT];
    viewer_count_states(ing, vs);
    for (int s = 0; s < VS_COUNT; s++)
        metric_set(metric_at(ing->m[IM_VIEWER_STATES], viewer_state_name(s)), vs[s]);
}

static bool ready(json_t *checks, void *arg)
{
    struct ingest *ing = arg;
    const char *why;
    bool auth = authsync_ready(ing->auth, &why);
    bool rd = redis_is_up(ing->redis);
    json_object_set_new(checks, "authtable", json_string(why));
    json_object_set_new(checks, "redis", json_string(rd ? "ok" : "disconnected"));
    json_object_set_new(checks, "srt", json_string(ing->stopping ? "closed" : "listening"));
    return auth && rd && !ing->stopping;
}

static void on_redis_state(bool up, void *arg)
{
    struct ingest *ing = arg;
    if (up)
        log_info("redis: up");
    else
        log_warn("redis: down: live streams go on, new publishers wait for their lease");
    for (struct publish *p = ing->pubs; p != NULL; p = publish_next(p))
        publish_redis_state(p, up);
    if (up)
        relays_refresh(ing->relays);
}

/* ---- building ----------------------------------------------------------- */

static int start_clients(struct ingest *ing)
{
    const struct ingest_config *cfg = ing->cfg;
    struct redis_options ro = { .url = ing->d->common.redis_url };
    struct httpc_options ao = { .timeout_ms = (int)cfg->api_timeout_ms, .connections = 2,
                                .max_body = 256 * 1024 * 1024, .max_headers = 64 * 1024 };
    struct httpc_options zo = { .timeout_ms = (int)cfg->authorize_timeout_ms,
                                .connections = 8, .max_body = 64 * 1024,
                                .max_headers = 64 * 1024 };
    snprintf(ing->auth_header, sizeof(ing->auth_header), "Bearer %s", cfg->internal_token);
    if ((ing->redis = redis_new(ing->d->base, ing->d->dns, &ro)) == NULL ||
        (ing->api = httpc_new(ing->d->base, ing->d->dns, cfg->api_url, &ao)) == NULL ||
        (ing->authz = httpc_new(ing->d->base, ing->d->dns, cfg->api_url, &zo)) == NULL)
        return -1;
    redis_set_state_cb(ing->redis, on_redis_state, ing);
    ing->relays = relays_new(ing->d->base, ing->redis, cfg->relay, cfg->relay_refresh_ms);
    ing->auth = authsync_start(ing);
    return ing->relays && ing->auth ? 0 : -1;
}

static int start_srt(struct ingest *ing)
{
    const struct ingest_config *cfg = ing->cfg;
    struct srtsrv_options o = {
        .listen = cfg->srt_listen,
        .latency_ms = (int)cfg->srt_latency_ms,
        .payload_size = (int)cfg->srt_payload_size,
        .rcvbuf = cfg->srt_rcvbuf,
        .udp_rcvbuf = cfg->srt_udp_rcvbuf,
        .peer_idle_ms = (int)cfg->srt_peer_idle_ms,
        .max_conns = (unsigned)cfg->srt_max_connections,
        .batch_ms = (int)cfg->srt_batch_ms,
        .stats_ms = (int)cfg->srt_stats_ms,
        .backlog = 128,
    };
    char *err = NULL;
    ing->srt = srtsrv_new(ing->d->base, &o, gate_srt, ing->gate, &conn_srt_handler, ing, &err);
    if (ing->srt == NULL) {
        log_error("%s", err ? err : "cannot start the SRT listener");
        free(err);
        return -1;
    }
    log_info("SRT on %s (latency %lld ms, payload %lld bytes, takeover %s)", cfg->srt_listen,
             (long long)cfg->srt_latency_ms, (long long)cfg->srt_payload_size,
             cfg->takeover ? "on" : "off");
    return 0;
}

static int start_admin(struct ingest *ing)
{
    char *err = NULL;
    if (admin_start(ing->d, ing->cfg->admin_listen, ready, ing, &err) == NULL) {
        log_error("%s", err ? err : "cannot start the admin port");
        free(err);
        return -1;
    }
    return 0;
}

/* Each publisher holds a relay link (a descriptor; libsrt shares one UDP
 * socket among all SRT connections): make room for srt-max-connections. */
static void raise_nofile(const struct ingest_config *cfg)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg->srt_max_connections + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur < want)
        log_warn("open files limit %llu is below srt-max-connections + 64",
                 (unsigned long long)rl.rlim_cur);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg);

struct ingest *ingest_new(struct daemon *d, const struct ingest_config *cfg)
{
    char *err = NULL;
    if (ingest_config_check(cfg, &err) == -1) {
        log_error("configuration: %s", err ? err : "?");
        free(err);
        return NULL;
    }
    struct ingest *ing = calloc(1, sizeof(*ing));
    if (ing == NULL)
        return NULL;
    ing->d = d;
    ing->cfg = cfg;
    raise_nofile(cfg);
    if (getrandom(&ing->next_id, sizeof(ing->next_id), 0) != (ssize_t)sizeof(ing->next_id))
        ing->next_id = (uint32_t)clock_mono_us();
    struct gate_options go = { .takeover = cfg->takeover, .playback = cfg->playback };
    if (metrics_register(d->metrics, ingest_metric_defs, ing->m) == 0)
        metrics_on_collect(d->metrics, on_collect, ing);
    if ((ing->gate = gate_new(&go)) == NULL ||
        (ing->drain_timer = evtimer_new(d->base, on_drain_tick, ing)) == NULL ||
        start_clients(ing) == -1 || start_srt(ing) == -1 || start_admin(ing) == -1) {
        ingest_free(ing);
        return NULL;
    }
    return ing;
}

/* ---- stopping ----------------------------------------------------------- */

/* Polls until every connection is gone (the publishes hold the daemon
 * themselves while they drain); then lets the daemon end. */
static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ingest *ing = arg;
    if (ing->conns == NULL) {
        log_info("ingest: every connection closed");
        daemon_release(ing->d);
        return;
    }
    struct timeval tv = clock_tv_ms(DRAIN_POLL_MS);
    evtimer_add(ing->drain_timer, &tv);
}

void ingest_stop(void *arg)
{
    struct ingest *ing = arg;
    ing->stopping = true;
    srtsrv_stop_accepting(ing->srt);
    conn_close_all(ing);
    daemon_hold(ing->d);
    on_drain_tick(-1, 0, ing);
}

void ingest_free(struct ingest *ing)
{
    if (ing == NULL)
        return;
    srtsrv_free(ing->srt);           /* the SRT thread stops: no more events */
    conn_free_all(ing);              /* orphans authorize calls in flight */
    publish_free_all(ing);           /* orphans lease commands in flight */
    viewer_free_all(ing);            /* orphans lookups in flight */
    redis_free(ing->redis);          /* cancels what is pending: before its users */
    relays_free(ing->relays);
    authsync_free(ing->auth);
    httpc_free(ing->api);
    httpc_free(ing->authz);
    gate_free(ing->gate);
    if (ing->drain_timer)
        event_free(ing->drain_timer);
    free(ing);
}
