/* An SLP link to a relay, a publisher's or a subscriber's: see relaylink.h
 * and proto/SLP.md. */
#include "relaylink.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/net.h"

#define PING_AFTER_MS 5000       /* SLP.md 10: a PING when we sent nothing this long */
#define LINGER_MS 2000           /* after our FIN, how long we wait for the relay's */
#define TICK_MS 250
#define AGENT "sluice-ingest/0.1"
#define RX_MAX (SLP_HEADER_LEN + SLP_MAX_CONTROL)   /* a relay sends a publisher control only */
#define SUB_READ_MAX (256 * 1024)   /* a subscription reads media in large bites */

enum rl_state { RL_CONNECTING, RL_AWAIT_HELLO, RL_AWAIT_ACCEPT, RL_OPEN, RL_DRAINING,
                RL_CLOSED };

struct relaylink {
    struct relaylink_options o;
    const struct relaylink_handler *h;
    void *arg;
    char addr[128];
    char node[SLP_ID_MAX + 1];
    enum rl_state state;
    struct bufferevent *bev;
    struct event *tick;
    struct event *done;          /* reports the end from the loop */
    struct slp_session sess;
    bool subscriber;             /* the role: media comes in (else it goes out) */
    uint8_t *rx;                 /* publisher: one control frame (the relay sends no MEDIA) */
    int64_t started_ms, last_rx_ms, last_tx_ms, deadline_ms;
    bool connected, write_shut;
    enum relaylink_end end;
    unsigned code;
    char text[4 * SLP_TEXT_MAX + 8];
};

/* Closes now and reports <end> from the loop. */
static void close_now(struct relaylink *l, enum relaylink_end end, unsigned code,
                      const char *text)
{
    if (l->state == RL_CLOSED)
        return;
    l->state = RL_CLOSED;
    l->end = end;
    l->code = code;
    snprintf(l->text, sizeof(l->text), "%s", text ? text : "");
    if (l->bev != NULL) {
        bufferevent_free(l->bev);
        l->bev = NULL;
    }
    evtimer_del(l->tick);
    event_active(l->done, EV_TIMEOUT, 0);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct relaylink *l = arg;
    l->h->closed(l->arg, l->end, l->code, l->text);   /* may free <l> */
}

/* Everything we wrote is sent: half-close, then read until the relay closes
 * (closing with unread bytes would reset the connection and could destroy
 * our last frames before the relay read them). */
static void shut_write(struct relaylink *l)
{
    l->write_shut = true;
    l->deadline_ms = clock_mono_ms() + LINGER_MS;
    shutdown(bufferevent_getfd(l->bev), SHUT_WR);
}

/* Starts a graceful end that reports <end>. */
static void drain(struct relaylink *l, enum relaylink_end end, unsigned code, const char *text)
{
    if (l->state >= RL_DRAINING)
        return;
    if (l->bev == NULL || !l->connected) {
        close_now(l, end, code, text);
        return;
    }
    l->state = RL_DRAINING;
    l->end = end;
    l->code = code;
    snprintf(l->text, sizeof(l->text), "%s", text ? text : "");
    l->deadline_ms = clock_mono_ms() + l->o.drain_ms;
    if (evbuffer_get_length(bufferevent_get_output(l->bev)) == 0)
        shut_write(l);
    else
        bufferevent_setwatermark(l->bev, EV_WRITE, 0, 0);
}

static int send_frame(struct relaylink *l, const struct slp_frame *f)
{
    if (l->bev == NULL || slp_evbuffer_add(bufferevent_get_output(l->bev), f) == -1)
        return -1;
    l->last_tx_ms = clock_mono_ms();
    return 0;
}

static void protocol_error(struct relaylink *l, enum slp_error code, const char *why)
{
    char text[128];
    snprintf(text, sizeof(text), "bad frame from the relay: %s (%s)", why,
             slp_error_name(code));
    slp_evbuffer_add_error(bufferevent_get_output(l->bev), code, "%s", why);
    drain(l, RL_PROTOCOL, 0, text);
}

static void on_error_frame(struct relaylink *l, const struct slp_frame *f)
{
    char text[4 * SLP_TEXT_MAX + 8];
    log_escape(text, sizeof(text), f->err.text.p, f->err.text.len);
    close_now(l, RL_REFUSED, f->err.code, text);   /* an ERROR is never answered */
}

static void on_frame(struct relaylink *l, const struct slp_frame *f)
{
    const char *why;
    enum slp_error e = slp_session_recv(&l->sess, f, &why);
    if (e != SLP_E_NONE) {
        protocol_error(l, e, why);
        return;
    }
    switch (f->type) {
    case SLP_PING: {
        struct slp_frame pong = { .type = SLP_PONG, .ping = f->ping };
        send_frame(l, &pong);
        return;
    }
    case SLP_ERROR:
        on_error_frame(l, f);
        return;
    case SLP_HELLO: {
        char node[4 * SLP_ID_MAX + 8];
        log_debug("relay %s is %s", l->addr,
                  log_escape(node, sizeof(node), f->hello.node.p, f->hello.node.len));
        l->state = RL_AWAIT_ACCEPT;
        return;
    }
    case SLP_ACCEPT:
        l->state = RL_OPEN;
        l->h->accepted(l->arg);
        return;
    case SLP_PUBLISH:
    case SLP_MEDIA:
    case SLP_EOS:                 /* the session let them through: a subscription's */
        l->h->frame(l->arg, f);
        return;
    default:                      /* PONG; the session refuses the rest */
        return;
    }
}

/* A subscription's frames are decoded where they lie in the input buffer
 * (made contiguous), handed over, then drained: no copy of the media. */
static void read_subscription(struct relaylink *l, struct evbuffer *in)
{
    struct slp_frame f;
    enum slp_status st = SLP_NEED_MORE;
    while (l->state < RL_DRAINING && (st = slp_evbuffer_peek(in, &f)) == SLP_OK) {
        size_t size = f.size;
        const uint8_t *buf = evbuffer_pullup(in, (ev_ssize_t)size);
        if (buf == NULL) {
            close_now(l, RL_LOST, 0, "out of memory reading a frame");
            return;
        }
        if ((st = slp_decode(buf, size, &f)) != SLP_OK)
            break;
        on_frame(l, &f);
        if (l->bev == NULL)
            return;                   /* closed meanwhile (an ERROR): <in> is gone */
        evbuffer_drain(in, size);
    }
    if (l->state < RL_DRAINING && st == SLP_INVALID)
        protocol_error(l, f.error, f.why);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct relaylink *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    l->last_rx_ms = clock_mono_ms();
    if (l->state == RL_DRAINING) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (l->subscriber) {
        read_subscription(l, in);
        return;
    }
    struct slp_frame f;
    enum slp_status st = SLP_NEED_MORE;
    while (l->state < RL_DRAINING && (st = slp_evbuffer_peek(in, &f)) == SLP_OK) {
        if (f.size > RX_MAX) {        /* a relay sends no MEDIA here */
            protocol_error(l, SLP_E_UNEXPECTED, "MEDIA to a publisher");
            return;
        }
        if ((st = slp_evbuffer_take(in, l->rx, RX_MAX, &f)) != SLP_OK)
            break;
        on_frame(l, &f);
    }
    if (l->state < RL_DRAINING && st == SLP_INVALID)
        protocol_error(l, f.error, f.why);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct relaylink *l = arg;
    if (l->state == RL_DRAINING && !l->write_shut)
        shut_write(l);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct relaylink *l = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        l->connected = true;
        return;
    }
    if (l->state == RL_DRAINING) {            /* the relay closed: we are done */
        close_now(l, l->end, l->code, l->text);
        return;
    }
    char text[256];
    if (!l->connected) {
        int dns = bufferevent_socket_get_dns_error(bev);
        snprintf(text, sizeof(text), "cannot connect to %s: %s", l->addr,
                 dns ? evutil_gai_strerror(dns)
                     : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        close_now(l, RL_FAILED, 0, text);
    } else {
        snprintf(text, sizeof(text), "relay %s closed the connection", l->addr);
        close_now(l, RL_LOST, 0, text);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct relaylink *l = arg;
    int64_t now = clock_mono_ms();
    char text[256];
    if (l->state == RL_DRAINING) {
        if (now >= l->deadline_ms)
            close_now(l, l->end, l->code, l->text);
        return;
    }
    if (l->state < RL_OPEN && now - l->started_ms >= l->o.connect_timeout_ms) {
        snprintf(text, sizeof(text), "relay %s: no %s within %d ms", l->addr,
                 !l->connected ? "connection" : l->state == RL_AWAIT_HELLO ? "HELLO" : "ACCEPT",
                 l->o.connect_timeout_ms);
        if (l->connected)
            slp_evbuffer_add_error(bufferevent_get_output(l->bev), SLP_E_TIMEOUT, NULL);
        drain(l, RL_FAILED, 0, text);
        return;
    }
    if (l->state >= RL_AWAIT_HELLO && l->connected &&
        now - l->last_rx_ms >= l->o.idle_timeout_ms) {
        snprintf(text, sizeof(text), "relay %s silent for %lld ms", l->addr,
                 (long long)(now - l->last_rx_ms));
        slp_evbuffer_add_error(bufferevent_get_output(l->bev), SLP_E_TIMEOUT, NULL);
        drain(l, RL_LOST, 0, text);
        return;
    }
    if (l->connected && now - l->last_tx_ms >= PING_AFTER_MS) {
        struct slp_frame ping = { .type = SLP_PING, .ping = { (uint64_t)clock_mono_us() } };
        send_frame(l, &ping);
    }
}

struct relaylink *relaylink_start(struct event_base *base, struct evdns_base *dns,
                                  const char *addr, const struct slp_frame *request,
                                  const struct relaylink_options *o,
                                  const struct relaylink_handler *h, void *arg)
{
    char host[256];
    int port;
    if (net_split_hostport(addr, host, sizeof(host), &port) == -1 || port == 0) {
        log_error("relay address %s: not host:port", addr);
        return NULL;
    }
    struct relaylink *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->o = *o;
    l->h = h;
    l->arg = arg;
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    snprintf(l->node, sizeof(l->node), "%s", o->node);
    l->subscriber = request->type == SLP_SUBSCRIBE;
    enum slp_role role = l->subscriber ? SLP_ROLE_SUBSCRIBER : SLP_ROLE_PUBLISHER;
    slp_session_init(&l->sess, false, role);
    l->rx = l->subscriber ? NULL : malloc(RX_MAX);
    l->tick = event_new(base, -1, EV_PERSIST, on_tick, l);
    l->done = evtimer_new(base, on_done, l);
    l->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if ((!l->subscriber && l->rx == NULL) || l->tick == NULL || l->done == NULL ||
        l->bev == NULL)
        goto fail;
    if (l->subscriber)
        bufferevent_set_max_single_read(l->bev, SUB_READ_MAX);
    bufferevent_setcb(l->bev, on_read, on_write, on_event, l);
    bufferevent_enable(l->bev, EV_READ | EV_WRITE);
    l->started_ms = l->last_rx_ms = l->last_tx_ms = clock_mono_ms();
    struct slp_frame hello = { .type = SLP_HELLO, .hello = {
        role, SLP_VERSION, slp_cstr(l->node), slp_cstr(AGENT) } };
    if (send_frame(l, &hello) == -1 || send_frame(l, request) == -1) {
        log_error("relay %s: cannot encode HELLO and %s (node id or names invalid?)", addr,
                  slp_type_name(request->type));
        goto fail;
    }
    l->state = RL_AWAIT_HELLO;
    struct timeval tv = clock_tv_ms(TICK_MS);
    evtimer_add(l->tick, &tv);
    if (bufferevent_socket_connect_hostname(l->bev, dns, AF_UNSPEC, host, port) == -1)
        on_event(l->bev, BEV_EVENT_ERROR, l);    /* reported through closed() */
    return l;
fail:
    relaylink_free(l);
    return NULL;
}

size_t relaylink_pending(const struct relaylink *l)
{
    return l->bev ? evbuffer_get_length(bufferevent_get_output(l->bev)) : 0;
}

bool relaylink_open(const struct relaylink *l)
{
    return l->state == RL_OPEN;
}

int relaylink_send_media(struct relaylink *l, const uint8_t hdr[SLP_MEDIA_HEADER_LEN],
                         const uint8_t *ts, size_t len)
{
    if (l->state != RL_OPEN)
        return -1;
    struct evbuffer *out = bufferevent_get_output(l->bev);
    if (evbuffer_add(out, hdr, SLP_MEDIA_HEADER_LEN) == -1 || evbuffer_add(out, ts, len) == -1)
        return -1;
    l->last_tx_ms = clock_mono_ms();
    return 0;
}

int relaylink_send_frames(struct relaylink *l, struct evbuffer *frames)
{
    if (l->state != RL_OPEN ||
        evbuffer_add_buffer(bufferevent_get_output(l->bev), frames) == -1)
        return -1;
    l->last_tx_ms = clock_mono_ms();
    return 0;
}

void relaylink_end(struct relaylink *l, const struct slp_frame *last)
{
    if (l->state >= RL_DRAINING)
        return;
    if (last != NULL && l->state == RL_OPEN)
        send_frame(l, last);
    drain(l, RL_FINISHED, 0, "");
}

void relaylink_free(struct relaylink *l)
{
    if (l == NULL)
        return;
    if (l->bev != NULL)
        bufferevent_free(l->bev);
    if (l->tick != NULL)
        event_free(l->tick);
    if (l->done != NULL)
        event_free(l->done);
    free(l->rx);
    free(l);
}
