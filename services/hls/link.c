/* One SLP subscription to a relay: see link.h. */
#include "link.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/net.h"
#include "sluice/slp.h"

#define AGENT "sluice-hls/0.1"
#define PING_AFTER_MS 5000      /* we send PING when we sent nothing this long */
#define LINGER_MS 1000          /* closing: how long we read until the relay closes */
#define TICK_MS 250
#define MAX_READ (256 * 1024)   /* per read(2): frames come in batches, not one by one */

enum link_state { L_CONNECTING, L_AWAIT_HELLO, L_AWAIT_ACCEPT, L_OPEN, L_DRAINING };

struct link {
    struct bufferevent *bev;
    struct event *tick, *reap;
    enum link_state state;
    struct slp_session sess;
    const struct link_handler *h;
    void *arg;
    uint8_t *rx;
    int64_t started_ms, last_rx_ms, last_tx_ms, drain_deadline_ms;
    int64_t connect_timeout_ms, idle_timeout_ms;
    bool connected;
    bool connect_failed;        /* at once, in link_open: reported from the tick */
    char relay[300];
    char stream[SLP_ID_MAX + 1];
    struct link *prev, *next;   /* every link alive, for link_free_all() */
};

static struct link *all_links;

static const char *const end_names[] = {
    "eos", "refused", "network", "timeout", "protocol",
};

const char *link_end_name(enum link_end why)
{
    return (unsigned)why < sizeof(end_names) / sizeof(end_names[0]) ? end_names[why] : "?";
}

static void link_free(struct link *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        all_links = l->next;
    if (l->next)
        l->next->prev = l->prev;
    if (l->bev)
        bufferevent_free(l->bev);
    if (l->tick)
        event_free(l->tick);
    if (l->reap)
        event_free(l->reap);
    free(l);
}

void link_free_all(void)
{
    while (all_links != NULL)
        link_free(all_links);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    link_free(arg);
}

/* Frees the link once the current callback has returned. */
static void reap(struct link *l)
{
    l->state = L_DRAINING;
    if (l->bev)
        bufferevent_disable(l->bev, EV_READ | EV_WRITE);
    evtimer_del(l->tick);
    event_active(l->reap, EV_TIMEOUT, 0);
}

/* Closes gracefully: our output (a PONG, an ERROR) goes, we half-close, then
 * read and discard until the relay closes, for LINGER_MS at most. */
static void drain(struct link *l)
{
    if (!l->connected || l->bev == NULL) {
        reap(l);
        return;
    }
    l->state = L_DRAINING;
    l->drain_deadline_ms = clock_mono_ms() + LINGER_MS;
    struct evbuffer *in = bufferevent_get_input(l->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_enable(l->bev, EV_READ);        /* to see the relay close */
    if (evbuffer_get_length(bufferevent_get_output(l->bev)) == 0)
        shutdown(bufferevent_getfd(l->bev), SHUT_WR);
    else
        bufferevent_setwatermark(l->bev, EV_WRITE, 0, 0);
}

/* The link ends by itself: tell the owner, then close. */
static void end(struct link *l, enum link_end why, const char *detail)
{
    if (l->state == L_DRAINING)
        return;
    l->state = L_DRAINING;     /* no more frames, whatever the callback does */
    l->h->ended(why, detail, l->arg);
    drain(l);
}

void link_close(struct link *l)
{
    if (l->state == L_DRAINING)
        return;
    drain(l);
}

bool link_accepted(const struct link *l)
{
    return l->state == L_OPEN;
}

const char *link_relay(const struct link *l)
{
    return l->relay;
}

static int send_frame(struct link *l, const struct slp_frame *f)
{
    if (slp_evbuffer_add(bufferevent_get_output(l->bev), f) == -1)
        return -1;
    l->last_tx_ms = clock_mono_ms();
    return 0;
}

static void protocol_error(struct link *l, enum slp_error code, const char *why)
{
    char detail[160];
    snprintf(detail, sizeof(detail), "%s (%s)", why, slp_error_name(code));
    slp_evbuffer_add_error(bufferevent_get_output(l->bev), code, "%s", why);
    end(l, LINK_END_PROTOCOL, detail);
}

static void on_error_frame(struct link *l, const struct slp_frame *f)
{
    char text[4 * SLP_TEXT_MAX + 8], detail[sizeof(text) + 48];
    const char *name = slp_error_name(f->err.code);
    log_escape(text, sizeof(text), f->err.text.p, f->err.text.len);
    if (name)
        snprintf(detail, sizeof(detail), "%s: %s", name, text);
    else
        snprintf(detail, sizeof(detail), "error %u: %s", f->err.code, text);
    end(l, LINK_END_REFUSED, detail);
}

static void on_eos(struct link *l, const struct slp_frame *f)
{
    char text[4 * SLP_TEXT_MAX + 8], detail[sizeof(text) + 48];
    const char *name = slp_eos_name(f->eos.reason);
    log_escape(text, sizeof(text), f->eos.text.p, f->eos.text.len);
    snprintf(detail, sizeof(detail), "%s%s%s", name ? name : "(unknown reason)",
             text[0] ? ": " : "", text);
    end(l, LINK_END_EOS, detail);
}

static void on_frame(struct link *l, const struct slp_frame *f)
{
    const char *why;
    enum slp_error e = slp_session_recv(&l->sess, f, &why);
    if (e != SLP_E_NONE) {
        protocol_error(l, e, why);
        return;
    }
    switch (f->type) {
    case SLP_MEDIA:
        l->h->media(f, l->arg);
        return;
    case SLP_PING: {
        struct slp_frame pong = { .type = SLP_PONG, .ping = f->ping };
        send_frame(l, &pong);
        return;
    }
    case SLP_PONG:
        return;
    case SLP_HELLO:
        l->state = L_AWAIT_ACCEPT;
        return;
    case SLP_ACCEPT:
        l->state = L_OPEN;
        bufferevent_disable(l->bev, EV_READ);   /* from now on, link_read_all() */
        l->h->accepted(l->arg);
        return;
    case SLP_PUBLISH:
        l->h->publish(&f->publish, l->arg);
        return;
    case SLP_EOS:
        on_eos(l, f);
        return;
    case SLP_ERROR:
        on_error_frame(l, f);
        return;
    default:
        protocol_error(l, SLP_E_UNEXPECTED, "frame not allowed here");
        return;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct link *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (l->state == L_DRAINING) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    struct slp_frame f;
    enum slp_status st = SLP_NEED_MORE;
    while (l->state != L_DRAINING && (st = slp_evbuffer_peek(in, &f)) == SLP_OK) {
        st = slp_evbuffer_take(in, l->rx, SLP_MAX_FRAME, &f);
        if (st != SLP_OK)
            break;
        l->last_rx_ms = clock_mono_ms();
        on_frame(l, &f);
    }
    if (l->state != L_DRAINING && st == SLP_INVALID)
        protocol_error(l, f.error, f.why);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct link *l = arg;
    if (l->state == L_DRAINING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct link *l = arg;
    if (what & BEV_EVENT_CONNECTED) {
        l->connected = true;
        return;
    }
    if (l->state == L_DRAINING) {       /* the relay closed after our half-close */
        reap(l);
        return;
    }
    char detail[640];
    if (!l->connected) {
        int dns = bufferevent_socket_get_dns_error(l->bev);
        snprintf(detail, sizeof(detail), "cannot connect to %s: %s", l->relay,
                 dns ? evutil_gai_strerror(dns)
                     : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    } else {
        snprintf(detail, sizeof(detail), "relay %s closed the connection", l->relay);
    }
    l->connected = false;          /* nothing left to say goodbye to */
    end(l, LINK_END_NETWORK, detail);
}

/* One readv(2) of up to MAX_READ bytes straight into the input buffer's free
 * space (evbuffer_read would take 4 KiB at a time). Returns what read(2)
 * returns. */
static ssize_t read_into(struct evbuffer *in, evutil_socket_t fd)
{
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    evbuffer_unfreeze(in, 0);              /* a bufferevent keeps its input's end frozen */
    int nv = evbuffer_reserve_space(in, MAX_READ, v, 2);
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

/* Reads what the socket holds (a few reads at most) and handles it. */
static void read_now(struct link *l)
{
    struct evbuffer *in = bufferevent_get_input(l->bev);
    evutil_socket_t fd = bufferevent_getfd(l->bev);
    for (int i = 0; i < 16 && l->state == L_OPEN; i++) {
        ssize_t n = read_into(in, fd);
        if (n > 0) {
            on_read(l->bev, l);
            if (n < MAX_READ)
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

void link_read_all(void)
{
    for (struct link *l = all_links; l != NULL; l = l->next) {
        if (l->state == L_OPEN)
            read_now(l);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct link *l = arg;
    int64_t now = clock_mono_ms();
    char detail[640];
    if (l->state == L_DRAINING) {
        if (now >= l->drain_deadline_ms)
            reap(l);
        return;
    }
    if (l->connect_failed) {
        snprintf(detail, sizeof(detail), "cannot connect to %s", l->relay);
        end(l, LINK_END_NETWORK, detail);
        return;
    }
    if (l->state < L_OPEN && now - l->started_ms >= l->connect_timeout_ms) {
        snprintf(detail, sizeof(detail), "relay %s: no %s within %lld ms", l->relay,
                 !l->connected ? "connection" : l->state == L_AWAIT_HELLO ? "HELLO" : "ACCEPT",
                 (long long)l->connect_timeout_ms);
        end(l, LINK_END_TIMEOUT, detail);
        return;
    }
    if (l->connected && now - l->last_rx_ms >= l->idle_timeout_ms) {
        snprintf(detail, sizeof(detail), "relay %s silent for %lld ms", l->relay,
                 (long long)(now - l->last_rx_ms));
        slp_evbuffer_add_error(bufferevent_get_output(l->bev), SLP_E_TIMEOUT, NULL);
        end(l, LINK_END_TIMEOUT, detail);
        return;
    }
    if (l->connected && now - l->last_tx_ms >= PING_AFTER_MS) {
        struct slp_frame ping = { .type = SLP_PING, .ping = { (uint64_t)clock_mono_us() } };
        send_frame(l, &ping);
    }
}

static int start(struct link *l, struct evdns_base *dns, const struct link_options *o)
{
    char host[256];
    int port;
    if (net_split_hostport(o->relay, host, sizeof(host), &port) == -1 || port == 0) {
        log_warn("stream %s: relay address %s is not host:port", o->stream, o->relay);
        return -1;
    }
    struct slp_frame hello = { .type = SLP_HELLO, .hello = {
        SLP_ROLE_SUBSCRIBER, SLP_VERSION, slp_cstr(o->node), slp_cstr(AGENT) } };
    struct slp_frame sub = { .type = SLP_SUBSCRIBE, .subscribe = {
        slp_cstr(o->stream), SLP_START_KEYFRAME, o->wait_ms } };
    bufferevent_setcb(l->bev, on_read, on_write, on_event, l);
    bufferevent_set_max_single_read(l->bev, MAX_READ);
    bufferevent_enable(l->bev, EV_READ | EV_WRITE);
    if (send_frame(l, &hello) == -1 || send_frame(l, &sub) == -1) {
        log_warn("stream %s: cannot encode HELLO/SUBSCRIBE (node id %s?)", o->stream, o->node);
        return -1;
    }
    struct timeval tick = clock_tv_ms(TICK_MS);
    evtimer_add(l->tick, &tick);
    l->state = L_AWAIT_HELLO;
    if (bufferevent_socket_connect_hostname(l->bev, dns, AF_UNSPEC, host, port) == -1) {
        l->connect_failed = true;
        event_active(l->tick, EV_TIMEOUT, 0);
    }
    return 0;
}

struct link *link_open(struct event_base *base, struct evdns_base *dns, uint8_t *rx,
                       const struct link_options *o, const struct link_handler *h, void *arg)
{
    struct link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->next = all_links;
    if (all_links)
        all_links->prev = l;
    all_links = l;
    l->h = h;
    l->arg = arg;
    l->rx = rx;
    l->connect_timeout_ms = o->connect_timeout_ms;
    l->idle_timeout_ms = o->idle_timeout_ms;
    l->started_ms = l->last_rx_ms = l->last_tx_ms = clock_mono_ms();
    snprintf(l->relay, sizeof(l->relay), "%s", o->relay);
    snprintf(l->stream, sizeof(l->stream), "%s", o->stream);
    slp_session_init(&l->sess, false, SLP_ROLE_SUBSCRIBER);
    l->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    l->tick = event_new(base, -1, EV_PERSIST, on_tick, l);
    l->reap = event_new(base, -1, 0, on_reap, l);
    if (l->bev == NULL || l->tick == NULL || l->reap == NULL || start(l, dns, o) == -1) {
        link_free(l);
        return NULL;
    }
    return l;
}
