/* Metrics and the admin routes: see status.h. */
#include "status.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chunk.h"
#include "conn.h"
#include "stream.h"
#include "sluice/admin.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/http.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/redis.h"
#include "sluice/slp.h"

/* In the order of enum relay_metric. */
static const struct metric_def defs[] = {
    [M_CONNECTIONS] = { "sluice_relay_connections", METRIC_GAUGE,
        "SLP connections open, in any state" },
    [M_CONNECTIONS_TOTAL] = { "sluice_relay_connections_total", METRIC_COUNTER,
        "SLP connections accepted" },
    [M_STREAMS] = { "sluice_relay_streams", METRIC_GAUGE,
        "Streams by state: live (publisher connected), lost (waiting for it), waiting "
        "(subscribers waiting for it to go live)", { "state" } },
    [M_PUBLISHERS] = { "sluice_relay_publishers", METRIC_GAUGE, "Publishing connections" },
    [M_SUBSCRIBERS] = { "sluice_relay_subscribers", METRIC_GAUGE,
        "Subscriber connections, waiting ones included" },
    [M_BYTES_IN] = { "sluice_relay_bytes_in_total", METRIC_COUNTER,
        "MEDIA bytes received from publishers (whole frames)", { "stream" } },
    [M_FRAMES_IN] = { "sluice_relay_frames_in_total", METRIC_COUNTER,
        "MEDIA frames received from publishers", { "stream" } },
    [M_KEYFRAMES_IN] = { "sluice_relay_keyframes_in_total", METRIC_COUNTER,
        "KEYFRAME frames received from publishers", { "stream" } },
    [M_BYTES_OUT] = { "sluice_relay_bytes_out_total", METRIC_COUNTER,
        "Bytes written to subscribers", { "stream" } },
    [M_FRAMES_OUT] = { "sluice_relay_frames_out_total", METRIC_COUNTER,
        "MEDIA frames queued to subscribers", { "stream" } },
    [M_DROPPED_FRAMES] = { "sluice_relay_dropped_frames_total", METRIC_COUNTER,
        "MEDIA frames dropped for subscribers whose queue was full", { "stream" } },
    [M_DROPPED_BYTES] = { "sluice_relay_dropped_bytes_total", METRIC_COUNTER,
        "Bytes of those frames", { "stream" } },
    [M_GAPS] = { "sluice_relay_gaps_total", METRIC_COUNTER,
        "Times a subscriber's queue overflowed (each gap ends at a keyframe flagged "
        "DISCONTINUITY)", { "stream" } },
    [M_QUEUED] = { "sluice_relay_queued_bytes", METRIC_GAUGE,
        "Bytes queued for the stream's subscribers, all together", { "stream" } },
    [M_QUEUED_MAX] = { "sluice_relay_queued_bytes_max", METRIC_GAUGE,
        "Bytes queued for the stream's most behind subscriber (bounded by max-queue)",
        { "stream" } },
    [M_QUEUE_LIMIT] = { "sluice_relay_queue_limit_bytes", METRIC_GAUGE,
        "max-queue: the bound on any subscriber's queue" },
    [M_GOP_BYTES] = { "sluice_relay_gop_cache_bytes", METRIC_GAUGE,
        "Bytes in the stream's GOP cache", { "stream" } },
    [M_STREAM_SUBSCRIBERS] = { "sluice_relay_stream_subscribers", METRIC_GAUGE,
        "Subscribers of the stream", { "stream" } },
    [M_CUTOFFS] = { "sluice_relay_cutoffs_total", METRIC_COUNTER,
        "Connections cut off: too_slow (queue never emptied), timeout (silent peer)",
        { "reason" } },
    [M_ERRORS_SENT] = { "sluice_relay_errors_sent_total", METRIC_COUNTER,
        "ERROR frames sent, by code", { "code" } },
    [M_PUBLISHER_CHANGES] = { "sluice_relay_publisher_changes_total", METRIC_COUNTER,
        "Publisher changes on a live or lost stream: reconnect (same id), takeover (new id)",
        { "kind" } },
    [M_REDIS_UP] = { "sluice_relay_redis_up", METRIC_GAUGE, "1 while Redis is connected" },
    [M_COUNT] = { NULL },
};

/* ------------------------------------------------------------------------ */
/* Metrics                                                                  */

static void collect_stream(struct stream *s, void *arg)
{
    unsigned *by_state = arg;
    size_t sum = 0, max = 0;
    by_state[s->state]++;
    for (struct conn *c = s->subs; c != NULL; c = c->sub.next) {
        size_t q = outq_bytes(&c->out);
        sum += q;
        max = q > max ? q : max;
    }
    metric_set(s->m.queued, (double)sum);
    metric_set(s->m.queued_max, (double)max);
    metric_set(s->m.gop_bytes, (double)s->gop.bytes);
    metric_set(s->m.subscribers, s->nsubs);
}

static void collect(void *arg)
{
    struct relay *r = arg;
    unsigned by_state[3] = { 0 };
    stream_foreach(r, collect_stream, by_state);
    metric_set(metric_at(r->fam[M_CONNECTIONS]), r->nconns);
    metric_set(metric_at(r->fam[M_PUBLISHERS]), r->npublishers);
    metric_set(metric_at(r->fam[M_SUBSCRIBERS]), r->nsubscribers);
    for (int st = STREAM_IDLE; st <= STREAM_LOST; st++)
        metric_set(metric_at(r->fam[M_STREAMS], stream_state_name(st)), by_state[st]);
}

int status_metrics(struct relay *r)
{
    struct metrics *m = r->d->metrics;
    if (metrics_register(m, defs, r->fam) == -1)
        return -1;
    metrics_on_collect(m, collect, r);
    r->connections_total = metric_at(r->fam[M_CONNECTIONS_TOTAL]);
    /* the labelled series that alerts look at exist from the start, at 0 */
    metric_at(r->fam[M_CUTOFFS], "too_slow");
    metric_at(r->fam[M_CUTOFFS], "timeout");
    metric_at(r->fam[M_PUBLISHER_CHANGES], "reconnect");
    metric_at(r->fam[M_PUBLISHER_CHANGES], "takeover");
    for (unsigned code = 1; slp_error_name(code) != NULL; code++)
        metric_at(r->fam[M_ERRORS_SENT], slp_error_name(code));
    metric_set(metric_at(r->fam[M_QUEUE_LIMIT]), (double)r->cfg->max_queue);
    metric_set(metric_at(r->fam[M_REDIS_UP]), 0);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* GET /v1/streams                                                          */

static json_t *str_field(struct slp_str s)
{
    return json_stringn(s.p, s.len);
}

static json_t *publisher_json(const struct stream *s, int64_t now)
{
    struct slp_frame f;
    char started[32];
    if (s->publish == NULL || slp_decode(s->publish->buf.data, s->publish->buf.len, &f) != SLP_OK)
        return json_null();
    clock_rfc3339(started, sizeof(started), f.publish.started_us);
    json_t *p = json_pack("{s:o, s:o, s:o, s:o, s:s}", "id", str_field(f.publish.publisher),
                          "ingest", str_field(f.publish.node),
                          "protocol", str_field(f.publish.protocol),
                          "client", str_field(f.publish.client), "started_at", started);
    const struct conn *c = s->publisher;
    if (p != NULL && c != NULL) {
        json_object_set_new(p, "peer", json_string(c->peer));
        json_object_set_new(p, "agent", json_string(c->agent));
        json_object_set_new(p, "connected_ms", json_integer(now - c->connected_ms));
        json_object_set_new(p, "frames", json_integer((json_int_t)c->pub.frames));
        json_object_set_new(p, "bytes", json_integer((json_int_t)c->pub.bytes));
        json_object_set_new(p, "keyframes", json_integer((json_int_t)c->pub.keyframes));
        json_object_set_new(p, "rtt_ms", c->rtt_us < 0 ? json_null()
                                                       : json_real(c->rtt_us / 1000.0));
    } else if (p != NULL) {
        json_object_set_new(p, "lost_ms", json_integer(now - s->lost_ms));
    }
    return p;
}

static json_t *subscriber_json(const struct conn *c, int64_t now)
{
    const struct conn_sub *u = &c->sub;
    const char *state = c->state == CONN_WAITING ? "waiting" : sub_phase_name(u->phase);
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                     "s:I, s:o}",
                     "id", (json_int_t)c->id, "peer", c->peer, "node", c->node, "agent", c->agent,
                     "state", state, "start", slp_start_name(u->start),
                     "connected_ms", (json_int_t)(now - c->connected_ms),
                     "queued_bytes", (json_int_t)outq_bytes(&c->out),
                     "queued_frames", (json_int_t)outq_frames(&c->out),
                     "behind_ms", (json_int_t)(u->behind_since_ms ? now - u->behind_since_ms : 0),
                     "frames", (json_int_t)u->frames, "bytes", (json_int_t)u->bytes,
                     "drops", (json_int_t)u->drops, "dropped_bytes", (json_int_t)u->dropped_bytes,
                     "gaps", (json_int_t)u->gaps,
                     "rtt_ms", c->rtt_us < 0 ? json_null() : json_real(c->rtt_us / 1000.0));
}

static json_t *stream_json(const struct stream *s, int64_t now)
{
    json_t *subs = json_array();
    for (const struct conn *c = s->subs; c != NULL; c = c->sub.next)
        json_array_append_new(subs, subscriber_json(c, now));
    return json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:{s:I, s:I}, s:I, s:o}",
                     "name", s->name, "state", stream_state_name(s->state),
                     "publisher", s->state == STREAM_IDLE ? json_null() : publisher_json(s, now),
                     "frames_in", (json_int_t)s->frames_in, "bytes_in", (json_int_t)s->bytes_in,
                     "keyframes_in", (json_int_t)s->keyframes_in,
                     "publisher_changes", (json_int_t)s->changes,
                     "gop_cache", "frames", (json_int_t)s->gop.n, "bytes", (json_int_t)s->gop.bytes,
                     "subscriber_count", (json_int_t)s->nsubs, "subscribers", subs);
}

static void add_stream(struct stream *s, void *arg)
{
    json_array_append_new(arg, stream_json(s, clock_mono_ms()));
}

static void get_streams(struct http_request *req)
{
    struct relay *r = req->route_arg;
    json_t *list = json_array();
    stream_foreach(r, add_stream, list);
    http_reply_json(req, 200, json_pack("{s:s, s:s, s:o}", "relay", r->d->node_id,
                                        "address", r->advertise, "streams", list));
}

static void get_stream(struct http_request *req)
{
    struct relay *r = req->route_arg;
    const char *name = req->params[0];
    struct stream *s = stream_find(r, name, strlen(name));
    if (s == NULL) {
        http_error(req, 404, "not_found", "no stream %s on this relay", name);
        return;
    }
    http_reply_json(req, 200, stream_json(s, clock_mono_ms()));
}

static const struct http_route routes[] = {
    { HTTP_GET, "/v1/streams", get_streams },
    { HTTP_GET, "/v1/streams/{}", get_stream },
    { 0 },
};

static bool ready(json_t *checks, void *arg)
{
    struct relay *r = arg;
    bool up = redis_is_up(r->redis);
    json_object_set_new(checks, "redis", json_string(up ? "ok" : "unreachable"));
    return up;
}

int status_start(struct relay *r)
{
    char *err = NULL;
    struct http_server *s = admin_start(r->d, r->cfg->admin_listen, ready, r, &err);
    if (s == NULL) {
        log_error("admin port %s: %s", r->cfg->admin_listen, err ? err : "cannot start");
        free(err);
        return -1;
    }
    return http_server_routes(s, routes, r);
}
