/* An SLP client of a relay, a publisher or a subscriber: see slpclient.h
 * and proto/SLP.md. */
#include "sluice/slpclient.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/net.h"

#define PING_AFTER_MS 5000       /* SLP.md 10: a PING when we sent nothing this long */
#define LINGER_MS 2000           /* after our FIN, how long we wait for the relay's */
#define TICK_MS 250
#define RX_MAX (SLP_HEADER_LEN + SLP_MAX_CONTROL)   /* a relay sends a publisher control only */
#define SUB_READ_MAX (256 * 1024)   /* a subscription reads media in large bites */

enum state { S_CONNECTING, S_AWAIT_HELLO, S_AWAIT_ACCEPT, S_OPEN, S_DRAINING, S_CLOSED };

struct slpclient {
    struct slpclient_options o;
    const struct slpclient_handler *h;
    void *arg;
    char addr[128];
    char node[SLP_ID_MAX + 1];
    char agent[SLP_AGENT_MAX + 1];
    enum state state;
    struct bufferevent *bev;
    struct event *tick;
    struct event *done;          /* reports the end from the loop */
    struct slp_session sess;
    bool subscriber;             /* the role: media comes in (else it goes out) */
    uint8_t *rx;                 /* publisher: one control frame (the relay sends no MEDIA) */
    int64_t started_ms, last_rx_ms, last_tx_ms, deadline_ms;
    bool connected, write_shut;
    enum slpclient_end end;
    unsigned code;
    char text[4 * SLP_TEXT_MAX + 8];
};

/* Closes now and reports <end> from the loop. */
static void close_now(struct slpclient *l, enum slpclient_end end, unsigned code,
                      const char *text)
{
    if (l->state == S_CLOSED)
        return;
    l->state = S_CLOSED;
    l->end = end;
    l->code = code;
    if (text != l->text)          /* a drain ending reports what it kept */
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
    struct slpclient *l = arg;
    l->h->closed(l->arg, l->end, l->code, l->text);   /* may free <l> */
}

/* Everything we wrote is sent: half-close, then read until the relay closes
 * (closing with unread bytes would reset the connection and could destroy
 * our last frames before the relay read them). */
static void shut_write(struct slpclient *l)
{
    l->write_shut = true;
    l->deadline_ms = clock_mono_ms() + LINGER_MS;
    shutdown(bufferevent_getfd(l->bev), SHUT_WR);
}

/* Starts a graceful end that reports <end>. */
static void drain(struct slpclient *l, enum slpclient_end end, unsigned code, const char *text)
{
    if (l->state >= S_DRAINING)
        return;
    if (l->bev == NULL || !l->connected) {
        close_now(l, end, code, text);
        return;
    }
    l->state = S_DRAINING;
    l->end = end;
    l->code = code;
    snprintf(l->text, sizeof(l->text), "%s", text ? text : "");
    l->deadline_ms = clock_mono_ms() + l->o.drain_ms;
    if (l->o.polled)
        bufferevent_enable(l->bev, EV_READ);     /* to see the relay close */
    if (evbuffer_get_length(bufferevent_get_output(l->bev)) == 0)
        shut_write(l);
    else
        bufferevent_setwatermark(l->bev, EV_WRITE, 0, 0);
}

static int send_frame(struct slpclient *l, const struct slp_frame *f)
{
    if (l->bev == NULL || slp_evbuffer_add(bufferevent_get_output(l->bev), f) == -1)
        return -1;
    l->last_tx_ms = clock_mono_ms();
    return 0;
}

static void protocol_error(struct slpclient *l, enum slp_error code, const char *why)
{
    char text[128];
    snprintf(text, sizeof(text), "bad frame from the relay: %s (%s)", why,
             slp_error_name(code));
    slp_evbuffer_add_error(bufferevent_get_output(l->bev), code, "%s", why);
    drain(l, SLPCLIENT_PROTOCOL, 0, text);
}

static void on_error_frame(struct slpclient *l, const struct slp_frame *f)
{
    char text[4 * SLP_TEXT_MAX + 8];
    log_escape(text, sizeof(text), f->err.text.p, f->err.text.len);
    close_now(l, SLPCLIENT_REFUSED, f->err.code, text);   /* an ERROR is never answered */
}

static void on_frame(struct slpclient *l, const struct slp_frame *f)
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
        char node[4 * SLP_ID_MAX + 8], agent[4 * SLP_AGENT_MAX + 8];
        log_escape(node, sizeof(node), f->hello.node.p, f->hello.node.len);
        log_escape(agent, sizeof(agent), f->hello.agent.p, f->hello.agent.len);
        log_debug("relay %s is %s (%s), SLP up to version %u", l->addr, node, agent,
                  f->hello.version);
        l->state = S_AWAIT_ACCEPT;
        return;
    }
    case SLP_ACCEPT:
        l->state = S_OPEN;
        if (l->o.polled)
            bufferevent_disable(l->bev, EV_READ);   /* from now on, slpclient_read() */
        l->h->accepted(l->arg);
        return;
    case SLP_PUBLISH:
    case SLP_MEDIA:
    case SLP_EOS:                 /* the session let them through: a subscription's */
        l->h->frame(l->arg, f);
        return;
    case SLP_PONG:
        log_debug("relay %s: round trip %lld us", l->addr,
                  (long long)(clock_mono_us() - (int64_t)f->ping.token));
        return;
    default:                      /* the session refuses the rest */
        return;
    }
}

/* A subscription's frames are decoded where they lie in the input buffer
 * (made contiguous), handed over, then drained: no copy of the media. */
static void read_subscription(struct slpclient *l, struct evbuffer *in)
{
    struct slp_frame f;
    enum slp_status st = SLP_NEED_MORE;
    while (l->state < S_DRAINING && (st = slp_evbuffer_peek(in, &f)) == SLP_OK) {
        size_t size = f.size;
        const uint8_t *buf = evbuffer_pullup(in, (ev_ssize_t)size);
        if (buf == NULL) {
            close_now(l, SLPCLIENT_LOST, 0, "out of memory reading a frame");
            return;
        }
        if ((st = slp_decode(buf, size, &f)) != SLP_OK)
            break;
        on_frame(l, &f);
        if (l->bev == NULL)
            return;                   /* closed meanwhile (an ERROR): <in> is gone */
        evbuffer_drain(in, size);
    }
    if (l->state < S_DRAINING && st == SLP_INVALID)
        protocol_error(l, f.error, f.why);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct slpclient *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    l->last_rx_ms = clock_mono_ms();
    if (l->state == S_DRAINING) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (l->subscriber) {
        read_subscription(l, in);
        return;
    }
    struct slp_frame f;
    enum slp_status st = SLP_NEED_MORE;
    while (l->state < S_DRAINING && (st = slp_evbuffer_peek(in, &f)) == SLP_OK) {
        if (f.size > RX_MAX) {        /* a relay sends no MEDIA here */
            protocol_error(l, SLP_E_UNEXPECTED, "MEDIA to a publisher");
            return;
        }
        if ((st = slp_evbuffer_take(in, l->rx, RX_MAX, &f)) != SLP_OK)
            break;
        on_frame(l, &f);
    }
    if (l->state < S_DRAINING && st == SLP_INVALID)
        protocol_error(l, f.error, f.why);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct slpclient *l = arg;
    if (l->state == S_DRAINING) {
        if (!l->write_shut)
            shut_write(l);
    } else if (l->state == S_OPEN && l->h->writable != NULL) {
        l->h->writable(l->arg);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct slpclient *l = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        l->connected = true;
        return;
    }
    if (l->state == S_DRAINING) {            /* the relay closed: we are done */
        close_now(l, l->end, l->code, l->text);
        return;
    }
    char text[256];
    if (!l->connected) {
        int dns = bufferevent_socket_get_dns_error(bev);
        snprintf(text, sizeof(text), "cannot connect to relay %s: %s", l->addr,
                 dns ? evutil_gai_strerror(dns)
                     : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        close_now(l, SLPCLIENT_FAILED, 0, text);
    } else {
        snprintf(text, sizeof(text), "relay %s closed the connection%s", l->addr,
                 l->subscriber && l->state == S_OPEN ? " without EOS" : "");
        close_now(l, SLPCLIENT_LOST, 0, text);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct slpclient *l = arg;
    int64_t now = clock_mono_ms();
    char text[256];
    if (l->state == S_DRAINING) {
        if (now >= l->deadline_ms)
            close_now(l, l->end, l->code, l->text);
        return;
    }
    if (l->state < S_OPEN && now - l->started_ms >= l->o.connect_timeout_ms) {
        snprintf(text, sizeof(text), "timed out waiting %s relay %s (%d ms)",
                 !l->connected                ? "to connect to"
                 : l->state == S_AWAIT_HELLO ? "for HELLO from"
                                              : "for ACCEPT from",
                 l->addr, l->o.connect_timeout_ms);
        if (l->connected)
            slp_evbuffer_add_error(bufferevent_get_output(l->bev), SLP_E_TIMEOUT, NULL);
        drain(l, SLPCLIENT_FAILED, 0, text);
        return;
    }
    if (l->state >= S_AWAIT_HELLO && l->connected &&
        now - l->last_rx_ms >= l->o.idle_timeout_ms) {
        snprintf(text, sizeof(text), "relay %s silent for %lld ms", l->addr,
                 (long long)(now - l->last_rx_ms));
        slp_evbuffer_add_error(bufferevent_get_output(l->bev), SLP_E_TIMEOUT, NULL);
        drain(l, SLPCLIENT_LOST, 0, text);
        return;
    }
    if (l->connected && now - l->last_tx_ms >= PING_AFTER_MS) {
        struct slp_frame ping = { .type = SLP_PING, .ping = { (uint64_t)clock_mono_us() } };
        send_frame(l, &ping);
    }
}

struct slpclient *slpclient_start(struct event_base *base, struct evdns_base *dns,
                                  const char *addr, const struct slp_frame *request,
                                  const struct slpclient_options *o,
                                  const struct slpclient_handler *h, void *arg)
{
    char host[256];
    int port;
    if (net_split_hostport(addr, host, sizeof(host), &port) == -1 || port == 0) {
        log_error("relay address %s: not host:port", addr);
        return NULL;
    }
    struct slpclient *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->o = *o;
    l->h = h;
    l->arg = arg;
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    snprintf(l->node, sizeof(l->node), "%s", o->node);
    snprintf(l->agent, sizeof(l->agent), "%s", o->agent);
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
    if (h->writable != NULL)
        bufferevent_setwatermark(l->bev, EV_WRITE, o->low_water, 0);
    bufferevent_enable(l->bev, EV_READ | EV_WRITE);
    l->started_ms = l->last_rx_ms = l->last_tx_ms = clock_mono_ms();
    struct slp_frame hello = { .type = SLP_HELLO, .hello = {
        role, SLP_VERSION, slp_cstr(l->node), slp_cstr(l->agent) } };
    if (send_frame(l, &hello) == -1 || send_frame(l, request) == -1) {
        log_error("relay %s: cannot encode HELLO and %s (node id or names invalid?)", addr,
                  slp_type_name(request->type));
        goto fail;
    }
    l->state = S_AWAIT_HELLO;
    struct timeval tv = clock_tv_ms(TICK_MS);
    evtimer_add(l->tick, &tv);
    if (bufferevent_socket_connect_hostname(l->bev, dns, AF_UNSPEC, host, port) == -1)
        on_event(l->bev, BEV_EVENT_ERROR, l);    /* reported through closed() */
    return l;
fail:
    slpclient_free(l);
    return NULL;
}

/* One readv(2) of up to SUB_READ_MAX bytes straight into the input buffer's
 * free space (evbuffer_read would take 4 KiB at a time). Returns what
 * read(2) returns. */
static ssize_t read_into(struct evbuffer *in, evutil_socket_t fd)
{
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    evbuffer_unfreeze(in, 0);              /* a bufferevent keeps its input's end frozen */
    int nv = evbuffer_reserve_space(in, SUB_READ_MAX, v, 2);
    ssize_t n = -1;
    if (nv > 0) {
        for (int i = 0; i < nv; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len;
        }
        n = readv(fd, iov, nv);
        size_t left = n > 0 ? (size_t)n : 0;
        for (int i = 0; i < nv; i++) {
            v[i].iov_len = left < v[i].iov_len ? left : v[i].iov_len;
            left -= v[i].iov_len;
        }
        evbuffer_commit_space(in, v, nv);
    } else {
        errno = ENOMEM;
    }
    evbuffer_freeze(in, 0);
    return n;
}

void slpclient_read(struct slpclient *l)
{
    if (!l->o.polled || l->state != S_OPEN)
        return;
    struct evbuffer *in = bufferevent_get_input(l->bev);
    evutil_socket_t fd = bufferevent_getfd(l->bev);
    for (int i = 0; i < 16 && l->state == S_OPEN; i++) {   /* a few reads at most */
        ssize_t n = read_into(in, fd);
        if (n > 0) {
            on_read(l->bev, l);
            if (n < SUB_READ_MAX)
                return;
            continue;
        }
        if (n == 0)
            on_event(l->bev, BEV_EVENT_READING | BEV_EVENT_EOF, l);
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            on_event(l->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, l);
        return;
    }
}

size_t slpclient_pending(const struct slpclient *l)
{
    return l->bev ? evbuffer_get_length(bufferevent_get_output(l->bev)) : 0;
}

bool slpclient_open(const struct slpclient *l)
{
    return l->state == S_OPEN;
}

int slpclient_send_media(struct slpclient *l, const uint8_t hdr[SLP_MEDIA_HEADER_LEN],
                         const uint8_t *ts, size_t len)
{
    if (l->state != S_OPEN)
        return -1;
    struct evbuffer *out = bufferevent_get_output(l->bev);
    if (evbuffer_add(out, hdr, SLP_MEDIA_HEADER_LEN) == -1 || evbuffer_add(out, ts, len) == -1)
        return -1;
    l->last_tx_ms = clock_mono_ms();
    return 0;
}

int slpclient_send_frames(struct slpclient *l, struct evbuffer *frames)
{
    if (l->state != S_OPEN ||
        evbuffer_add_buffer(bufferevent_get_output(l->bev), frames) == -1)
        return -1;
    l->last_tx_ms = clock_mono_ms();
    return 0;
}

void slpclient_end(struct slpclient *l, const struct slp_frame *last)
{
    if (l->state >= S_DRAINING)
        return;
    if (last != NULL && l->state == S_OPEN)
        send_frame(l, last);
    drain(l, SLPCLIENT_FINISHED, 0, "");
}

void slpclient_free(struct slpclient *l)
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
