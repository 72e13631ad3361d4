/* Client connections: see conn.h. */
#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gate.h"
#include "ingest.h"
#include "publish.h"
#include "sluice/clock.h"
#include "sluice/httpc.h"
#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "viewer.h"

#define REJECT_LOGS_PER_SECOND 20
#define DRAIN_MAX_MS 2000          /* a viewer's last bytes, after its stream ended */

enum conn_state { CS_AUTHORIZING, CS_PUBLISHING, CS_VIEWING, CS_CLOSING };

/* The per-connection series (srt_connection_*), in the order of the families
 * from IM_C_CTRL_PKTS_SENT to IM_C_RCVBUF. */
#define NSERIES (IM_C_RCVBUF - IM_C_CTRL_PKTS_SENT + 1)

struct authz_call {
    struct conn *c;              /* NULL once the connection is gone */
};

struct conn {
    struct ingest *ing;
    struct conn *prev, *next;
    struct srtsrv_conn *srt;     /* the transport; NULL once closed */
    const char *protocol;
    char id[16];
    char addr[SRTSRV_ADDR_MAX];
    char stream[STREAM_NAME_MAX + 1];
    enum streamid_mode mode;
    enum conn_state state;
    struct auth_entry admitted;  /* the stream's entry when it was let in */
    int64_t started_us;
    struct evbuffer *held;       /* bytes before authorization */
    uint64_t held_dropped;
    struct authz_call *call;
    struct publish *pub;
    struct viewer *view;
    bool live_added;             /* counted in the gate's live names */
    int64_t revoked_us;          /* when the change that revoked it came (mono), or 0 */
    struct metric_series *series[NSERIES];
};

/* ---- bookkeeping -------------------------------------------------------- */

static struct conn *conn_new(struct ingest *ing, struct srtsrv_conn *sc, const char *addr,
                             const struct streamid *sid)
{
    const char *stream = sid->stream;
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->ing = ing;
    c->srt = sc;
    c->protocol = "srt";
    c->started_us = clock_wall_us();
    snprintf(c->id, sizeof(c->id), "%08x", ing->next_id++);
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    snprintf(c->stream, sizeof(c->stream), "%s", stream);
    c->mode = sid->mode;
    const struct auth_entry *e = authtable_find(gate_table(ing->gate), stream);
    if (e != NULL)
        c->admitted = *e;
    c->next = ing->conns;
    if (ing->conns)
        ing->conns->prev = c;
    ing->conns = c;
    return c;
}

static void conn_free(struct conn *c)
{
    struct ingest *ing = c->ing;
    if (c->prev)
        c->prev->next = c->next;
    else if (ing->conns == c)
        ing->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->call)
        c->call->c = NULL;       /* the answer, when it comes, finds nobody */
    if (c->held)
        evbuffer_free(c->held);
    for (int i = 0; i < NSERIES; i++)
        metric_remove(c->series[i]);
    free(c);
}

/* Stops publishing, if it was. */
static void stop_publishing(struct conn *c, enum publish_stop how)
{
    if (c->pub != NULL) {
        publish_stop(c->pub, how);
        c->pub = NULL;
    }
    if (c->live_added) {
        gate_live_remove(c->ing->gate, c->stream);
        c->live_added = false;
    }
}

static void stop_viewing(struct conn *c)
{
    viewer_stop(c->view);
    c->view = NULL;
}

/* Ends the connection from our side: <how> for a published stream, <why>
 * logged and counted under <reason>; <drained>: what a viewer was sent goes
 * out first. The transport's closed() frees it. */
static void conn_end(struct conn *c, enum publish_stop how, const char *reason,
                     const char *why, bool drained)
{
    if (c->state == CS_CLOSING)
        return;
    log_info("closing %s %s (%s, %s %s): %s", c->protocol, c->id, c->addr,
             streamid_mode_name(c->mode), c->stream, why);
    ingest_count(c->ing, IM_CLOSED, reason, 1);
    c->state = CS_CLOSING;
    stop_publishing(c, how);
    stop_viewing(c);
    if (c->held) {
        evbuffer_free(c->held);
        c->held = NULL;
    }
    if (c->srt != NULL && drained)
        srtsrv_close_drained(c->ing->srt, c->srt, DRAIN_MAX_MS);
    else if (c->srt != NULL)
        srtsrv_close(c->ing->srt, c->srt);
}

static void conn_close(struct conn *c, enum publish_stop how, const char *reason,
                       const char *why)
{
    conn_end(c, how, reason, why, false);
}

/* ---- publishing --------------------------------------------------------- */

/* Either way another publisher has the stream: ours goes without EOS. */
static void on_publish_failed(void *arg, enum publish_failure f, const char *why)
{
    conn_close(arg, PUB_REPLACED, f == PF_REPLACED ? "replaced" : "lease", why);
}

static const struct publish_handler publish_handler = { on_publish_failed };

static struct conn *find_publisher(struct ingest *ing, const char *stream, const struct conn *not)
{
    for (struct conn *c = ing->conns; c != NULL; c = c->next) {
        if (c != not && c->state == CS_PUBLISHING && strcmp(c->stream, stream) == 0)
            return c;
    }
    return NULL;
}

static void start_publishing(struct conn *c)
{
    struct ingest *ing = c->ing;
    struct conn *old = find_publisher(ing, c->stream, c);
    if (old != NULL && !ing->cfg->takeover) {
        conn_close(c, PUB_REPLACED, "conflict", "the stream is live on this ingest");
        return;
    }
    if (old != NULL) {
        char why[64];
        snprintf(why, sizeof(why), "replaced by %s", c->id);
        conn_close(old, PUB_REPLACED, "replaced", why);
    }
    if (gate_live_add(ing->gate, c->stream) == 0)
        c->live_added = true;
    struct publish_params pp = { c->stream, c->protocol, c->addr, c->id, c->started_us };
    c->pub = publish_start(ing, &pp, &publish_handler, c);
    if (c->pub == NULL) {
        conn_close(c, PUB_LOST, "internal", "cannot start publishing");
        return;
    }
    c->state = CS_PUBLISHING;
    if (c->held != NULL) {                     /* what came while authorizing */
        size_t len = evbuffer_get_length(c->held);
        uint8_t *b = evbuffer_pullup(c->held, -1);
        if (b != NULL && len > 0)
            publish_feed(c->pub, b, len, clock_wall_us());
        evbuffer_free(c->held);
        c->held = NULL;
    }
}

/* ---- viewing ------------------------------------------------------------ */

/* libsrt drops at the sender what is older than its too-late threshold; a
 * viewer this far behind (half of it) is skipped to the next keyframe first,
 * so it sees a clean jump rather than broken frames. */
static void view_lag(void *arg, struct viewer_lag *out)
{
    struct conn *c = arg;
    int64_t drop_ms = 0;
    *out = (struct viewer_lag){ 0 };
    if (c->srt != NULL)
        srtsrv_backlog(c->srt, &out->bytes, &out->ms, &drop_ms);
    out->max_ms = drop_ms / 2;
}

static int view_send(void *arg, const uint8_t *ts, size_t len)
{
    struct conn *c = arg;
    return c->srt != NULL ? srtsrv_send(c->ing->srt, c->srt, ts, len) : -1;
}

static void view_end(void *arg, enum viewer_end end, const char *why)
{
    struct conn *c = arg;
    static const char *const reasons[] = {
        [VE_ENDED] = "stream_ended", [VE_REVOKED] = "revoked", [VE_NOT_LIVE] = "not_live",
        [VE_FAILED] = "internal",
    };
    conn_end(c, PUB_LOST, reasons[end], why, end == VE_ENDED);
}

static const struct viewer_sink viewer_sink = { view_send, view_lag, view_end };

static void start_viewing(struct conn *c)
{
    struct viewer_params vp = { c->stream, c->addr, c->id };
    c->view = viewer_start(c->ing, &vp, &viewer_sink, c);
    if (c->view == NULL) {
        conn_close(c, PUB_LOST, "internal", "cannot start viewing");
        return;
    }
    c->state = CS_VIEWING;
}

static void start(struct conn *c)
{
    if (c->mode == STREAMID_PUBLISH)
        start_publishing(c);
    else
        start_viewing(c);
}

/* ---- authorizing a session ---------------------------------------------- */

static void authorized(struct conn *c, const struct httpc_response *r)
{
    char err[128], why[256];
    json_t *body = r->status == 200 && r->body ? json_parse_evbuffer(r->body, err, sizeof(err))
                                               : NULL;
    bool allow = false;
    const char *stream = NULL, *reason = NULL, *msg = NULL;
    int64_t code = 0;
    if (body != NULL && json_get_bool(body, "allow", &allow) == 0 && allow &&
        json_get_str(body, "stream", &stream) == 0 && strcmp(stream, c->stream) == 0) {
        json_decref(body);
        ingest_count(c->ing, IM_AUTHORIZE, "allow", 1);
        log_info("authorized %s %s (%s): %s %s with a session id", c->protocol, c->id,
                 c->addr, streamid_mode_name(c->mode), c->stream);
        start(c);
        return;
    }
    if (body != NULL && !allow) {
        json_get_int(body, "code", &code);
        json_get_str(body, "reason", &reason);
        json_get_str(body, "message", &msg);
        snprintf(why, sizeof(why), "the api denied the session: %lld %s (%s)", (long long)code,
                 reason ? reason : "?", msg ? msg : "");
        ingest_count(c->ing, IM_AUTHORIZE, "deny", 1);
    } else if (body != NULL) {
        snprintf(why, sizeof(why), "the api allowed another stream than %s", c->stream);
        ingest_count(c->ing, IM_AUTHORIZE, "deny", 1);
    } else if (r->error != NULL) {
        snprintf(why, sizeof(why), "cannot authorize the session: %s", r->error);
        ingest_count(c->ing, IM_AUTHORIZE, "error", 1);
    } else {
        snprintf(why, sizeof(why), "cannot authorize the session: the api answered %d",
                 r->status);
        ingest_count(c->ing, IM_AUTHORIZE, "error", 1);
    }
    json_decref(body);
    conn_close(c, PUB_LOST, "unauthorized", why);
}

static void on_authorize(const struct httpc_response *r, void *arg)
{
    struct authz_call *call = arg;
    struct conn *c = call->c;
    free(call);
    if (c == NULL)
        return;
    c->call = NULL;
    if (c->state == CS_AUTHORIZING)
        authorized(c, r);
}

static void authorize(struct conn *c, const char *cred)
{
    json_t *req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "protocol", c->protocol,
                            "action", streamid_mode_name(c->mode), "stream", c->stream,
                            "key", cred, "client", c->addr);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    struct authz_call *call = calloc(1, sizeof(*call));
    const char *headers[] = { "Authorization", c->ing->auth_header,
                              "Content-Type", "application/json", NULL };
    c->state = CS_AUTHORIZING;
    if (c->mode == STREAMID_PUBLISH)
        c->held = evbuffer_new();             /* a viewer sends nothing to hold */
    if (body == NULL || call == NULL || (c->mode == STREAMID_PUBLISH && c->held == NULL) ||
        httpc_request(c->ing->authz, "POST", "/internal/v1/authorize", headers, body,
                      strlen(body), on_authorize, call) == -1) {
        free(body);
        free(call);
        ingest_count(c->ing, IM_AUTHORIZE, "error", 1);
        conn_close(c, PUB_LOST, "unauthorized", "cannot ask the api to authorize the session");
        return;
    }
    free(body);
    call->c = c;
    c->call = call;
}

/* ---- the srtsrv handler ------------------------------------------------- */

static void *on_accepted(struct srtsrv_conn *sc, const struct srtsrv_peer *peer, void *arg)
{
    struct ingest *ing = arg;
    struct gate_result r;
    size_t len = strlen(peer->streamid);
    int code = gate_check(ing->gate, peer->streamid, len, &r);
    char what[SRTSRV_DETAIL_MAX];
    gate_describe(peer->streamid, len, &r, what, sizeof(what));
    if (ing->stopping || code != 0) {
        /* the table changed between the listen callback and now */
        log_info("closing %s at once: %s: %s", peer->addr, what,
                 ing->stopping ? "shutting down" : r.d.why);
        ingest_count(ing, IM_CLOSED, ing->stopping ? "shutdown" : "unauthorized", 1);
        return NULL;
    }
    struct conn *c = conn_new(ing, sc, peer->addr, &r.sid);
    if (c == NULL)
        return NULL;
    ingest_count(ing, IM_CONNS_TOTAL, NULL, 1);
    log_info("accepted srt %s from %s: %s", c->id, c->addr, what);
    if (c->mode == STREAMID_REQUEST)
        srtsrv_set_sender(ing->srt, sc);      /* before anything is sent */
    if (r.d.session)
        authorize(c, r.sid.cred);
    else
        start(c);
    return c;
}

static void on_data(void *user, const uint8_t *buf, size_t len, int64_t wall_us)
{
    struct conn *c = user;
    if (c->state == CS_PUBLISHING) {
        publish_feed(c->pub, buf, len, wall_us);
    } else if (c->state == CS_AUTHORIZING && c->held != NULL) {
        if (evbuffer_get_length(c->held) + len <= (size_t)c->ing->cfg->auth_buffer)
            evbuffer_add(c->held, buf, len);
        else
            c->held_dropped += len;
    }
}

static void on_stats(void *user, const struct srtsrv_stats *st)
{
    struct conn *c = user;
    double v[NSERIES] = {
        (double)st->ctrl_pkts_sent, (double)st->ctrl_pkts_recv,
        (double)st->ctrl_bytes_sent, (double)st->ctrl_bytes_recv,
        (double)st->data_pkts_sent, (double)st->data_pkts_recv, (double)st->data_pkts_lost,
        (double)st->data_pkts_dropped,
        (double)st->data_bytes_sent, (double)st->data_bytes_recv, (double)st->data_bytes_lost,
        st->rtt_ms, st->rtt_var_ms, (double)st->rcv_buf_ms,
    };
    for (int i = 0; i < NSERIES; i++) {
        if (c->series[i] == NULL)
            c->series[i] = metric_at(c->ing->m[IM_C_CTRL_PKTS_SENT + i], c->id, c->stream);
        metric_set(c->series[i], v[i]);
    }
}

/* A revoked connection's socket is closed: how long that took since the
 * change reached ingest is what the issue bounds (a second), measured here
 * rather than only by the clients, whose clocks include their own polling. */
static void note_revoked(struct conn *c, int64_t closed_us)
{
    double secs = (double)(closed_us - c->revoked_us) / 1e6;
    const char *mode = streamid_mode_name(c->mode);
    metric_observe(metric_at(c->ing->m[IM_REVOKE_SECONDS], mode), secs);
    log_info("%s %s (%s %s): closed %.0f ms after the revocation reached ingest", c->protocol,
             c->id, mode, c->stream, secs * 1e3);
}

static void on_closed(void *user, enum srtsrv_end end, int64_t closed_us)
{
    struct conn *c = user;
    c->srt = NULL;
    if (c->revoked_us != 0)
        note_revoked(c, closed_us);
    if (c->state != CS_CLOSING) {
        const char *how = end == SRTSRV_LOST ? "lost (silent until the idle timeout)"
                                             : "closed by the client";
        log_info("%s %s (%s, %s %s): %s", c->protocol, c->id, c->addr,
                 streamid_mode_name(c->mode), c->stream, how);
        ingest_count(c->ing, IM_CLOSED, end == SRTSRV_LOST ? "lost" : "ended", 1);
        stop_publishing(c, end == SRTSRV_LOST ? PUB_LOST : PUB_ENDED);
        stop_viewing(c);
    }
    if (c->held_dropped > 0)
        log_warn("%s %s: %llu bytes dropped while authorizing (auth-buffer is full)",
                 c->protocol, c->id, (unsigned long long)c->held_dropped);
    conn_free(c);
}

static void on_rejected(const struct srtsrv_reject *r, void *arg)
{
    struct ingest *ing = arg;
    char code[16];
    snprintf(code, sizeof(code), "%d", r->code);
    ingest_count(ing, IM_REJECTS, code, 1);
    int64_t now = clock_mono_ms();
    if (now - ing->log_window_ms >= 1000) {
        if (ing->log_suppressed > 0)
            log_info("refused %u more handshakes (not logged one by one)", ing->log_suppressed);
        ing->log_window_ms = now;
        ing->log_count = ing->log_suppressed = 0;
    }
    if (++ing->log_count > REJECT_LOGS_PER_SECOND) {
        ing->log_suppressed++;
        return;
    }
    const char *name = reject_name(r->code);
    log_info("refused %s: %d %s: %s (%s)", r->addr, r->code, name ? name : "", r->why,
             r->detail);
}

const struct srtsrv_handler conn_srt_handler = {
    on_accepted, on_data, on_stats, on_closed, on_rejected,
};

/* ---- for the rest of ingest --------------------------------------------- */

void conn_count_modes(const struct ingest *ing, unsigned counts[3])
{
    counts[CONN_HANDSHAKE] = counts[CONN_REQUEST] = counts[CONN_PUBLISH] = 0;
    for (const struct conn *c = ing->conns; c != NULL; c = c->next) {
        if (c->state == CS_AUTHORIZING)
            counts[CONN_HANDSHAKE]++;
        else if (c->state == CS_PUBLISHING)
            counts[CONN_PUBLISH]++;
        else if (c->state == CS_VIEWING)
            counts[CONN_REQUEST]++;
    }
}

void conn_recheck(struct ingest *ing, int64_t since_us)
{
    const struct authtable *t = gate_table(ing->gate);
    struct conn *c = ing->conns;
    while (c != NULL) {
        struct conn *next = c->next;
        const char *why = c->state != CS_CLOSING
                              ? authtable_revokes(&c->admitted, authtable_find(t, c->stream))
                              : NULL;
        if (why != NULL) {
            c->revoked_us = since_us;
            conn_close(c, PUB_REVOKED, "revoked", why);
        }
        c = next;
    }
}

void conn_close_all(struct ingest *ing)
{
    struct conn *c = ing->conns;
    while (c != NULL) {
        struct conn *next = c->next;
        conn_close(c, PUB_SHUTDOWN, "shutdown", "ingest is shutting down");
        c = next;
    }
}

void conn_free_all(struct ingest *ing)
{
    while (ing->conns != NULL) {
        struct conn *c = ing->conns;
        c->pub = NULL;           /* publish_free_all() frees it */
        c->view = NULL;          /* viewer_free_all() too */
        conn_free(c);
    }
}
