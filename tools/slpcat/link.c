/* The SLP connection of slpcat: see link.h and proto/SLP.md section 6. */
#include "link.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "slpcat.h"
#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/net.h"

#define LOW_WATER (256 * 1024)   /* writable() when the output drops to this */
#define PING_AFTER_MS 5000       /* send a PING when we sent nothing this long */
#define DRAIN_MS 1000            /* how long our last frames may take to go */
#define LINGER_MS 2000           /* then how long we wait for the relay to close */
#define TICK_MS 250              /* timeouts are checked this often */

struct link {
    struct slpcat *s;
    enum slp_role role;
    enum link_state state;
    const struct link_handler *h;
    void *arg;
    struct bufferevent *bev;
    struct event *tick;          /* every TICK_MS: timeouts and keepalive */
    struct slp_frame request;    /* what we asked (strings point into s->cfg) */
    uint8_t *rx;                 /* SLP_MAX_FRAME bytes: the frame being handled */
    int64_t started_ms, last_rx_ms, last_tx_ms, drain_deadline_ms;
    int code;                    /* exit code to report when closed */
    bool connected;
    bool write_shut;             /* draining: all sent, FIN sent, reading till EOF */
    struct slp_session sess;     /* which frames may arrive now */
};

static const char *request_name(const struct link *l)
{
    return slp_type_name(l->request.type);
}

static void close_now(struct link *l)
{
    if (l->state == LINK_CLOSED)
        return;
    l->state = LINK_CLOSED;
    if (l->bev != NULL) {
        bufferevent_free(l->bev);
        l->bev = NULL;
    }
    evtimer_del(l->tick);
    l->h->closed(l->code, l->arg);
}

/* All our output is sent: half-close and read (discarding) until the relay
 * closes too. Closing with unread bytes would reset the connection, and a
 * reset can destroy our last frames before the relay has read them. */
static void shut_write(struct link *l)
{
    l->write_shut = true;
    l->drain_deadline_ms = clock_mono_ms() + LINGER_MS;
    shutdown(bufferevent_getfd(l->bev), SHUT_WR);
    evbuffer_drain(bufferevent_get_input(l->bev), evbuffer_get_length(bufferevent_get_input(l->bev)));
}

/* Starts closing gracefully, reporting <code>: our output drains (for as
 * long as the idle timeout when all went well, a second otherwise), then
 * shut_write(). */
static void drain(struct link *l, int code)
{
    if (l->state >= LINK_DRAINING)
        return;
    l->code = code;
    l->state = LINK_DRAINING;
    l->drain_deadline_ms = clock_mono_ms() +
                           (code == SLPCAT_EXIT_OK ? l->s->cfg.idle_timeout_ms : DRAIN_MS);
    if (l->bev == NULL || !l->connected || code == SLPCAT_EXIT_NETWORK) {
        close_now(l);          /* nobody to say goodbye to, or no point */
        return;
    }
    if (evbuffer_get_length(bufferevent_get_output(l->bev)) == 0)
        shut_write(l);
    else
        bufferevent_setwatermark(l->bev, EV_WRITE, 0, 0);
}

static int send_frame(struct link *l, const struct slp_frame *f)
{
    if (l->bev == NULL || slp_evbuffer_add(bufferevent_get_output(l->bev), f) == -1)
        return -1;
    l->last_tx_ms = clock_mono_ms();
    return 0;
}

/* The relay broke the protocol: tell it (ERROR <code>), say so, close. */
static void protocol_error(struct link *l, enum slp_error code, const char *why)
{
    slpcat_say("bad frame from the relay: %s (%s)", why, slp_error_name(code));
    slp_evbuffer_add_error(bufferevent_get_output(l->bev), code, "%s", why);
    drain(l, SLPCAT_EXIT_PROTOCOL);
}

static void on_error_frame(struct link *l, const struct slp_frame *f)
{
    char text[4 * SLP_TEXT_MAX + 8];
    const char *name = slp_error_name(f->err.code);
    char num[16];
    if (name == NULL) {
        snprintf(num, sizeof(num), "error %u", f->err.code);
        name = num;
    }
    log_escape(text, sizeof(text), f->err.text.p, f->err.text.len);
    if (l->state < LINK_OPEN)
        slpcat_say("relay refused %s: %s: %s", request_name(l), name, text);
    else
        slpcat_say("relay ended the session: %s: %s", name, text);
    l->state = LINK_DRAINING;     /* an ERROR is never answered: close at once */
    l->code = SLPCAT_EXIT_REFUSED;
    close_now(l);
}

static void on_hello(struct link *l, const struct slp_frame *f)
{
    char node[4 * SLP_ID_MAX + 8], agent[4 * SLP_AGENT_MAX + 8];
    log_escape(node, sizeof(node), f->hello.node.p, f->hello.node.len);
    log_escape(agent, sizeof(agent), f->hello.agent.p, f->hello.agent.len);
    log_info("relay %s (%s), SLP up to version %u", node, agent, f->hello.version);
    l->state = LINK_AWAIT_ACCEPT;
}

static void on_accept(struct link *l)
{
    log_info("relay accepted %s", request_name(l));
    l->state = LINK_OPEN;
    l->h->accepted(l->arg);
}

/* Handles a decoded frame that the session allows here. */
static void on_frame(struct link *l, const struct slp_frame *f)
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
    case SLP_PONG:
        log_debug("PONG: round trip %lld us", (long long)(clock_mono_us() - (int64_t)f->ping.token));
        return;
    case SLP_ERROR:
        on_error_frame(l, f);
        return;
    case SLP_HELLO:
        on_hello(l, f);
        return;
    case SLP_ACCEPT:
        on_accept(l);
        return;
    default:                      /* PUBLISH, MEDIA, EOS, to a subscriber */
        l->h->frame(f, l->arg);
        return;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct link *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (l->state == LINK_DRAINING) {         /* we are closing: ignore the rest */
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    struct slp_frame f;
    enum slp_status st = SLP_NEED_MORE;
    while (l->state < LINK_DRAINING && (st = slp_evbuffer_peek(in, &f)) == SLP_OK) {
        st = slp_evbuffer_take(in, l->rx, SLP_MAX_FRAME, &f);
        if (st != SLP_OK)
            break;
        l->last_rx_ms = clock_mono_ms();
        on_frame(l, &f);
    }
    if (l->state < LINK_DRAINING && st == SLP_INVALID)
        protocol_error(l, f.error, f.why);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct link *l = arg;
    if (l->state == LINK_DRAINING) {
        if (!l->write_shut)
            shut_write(l);
    } else if (l->state == LINK_OPEN && l->h->writable)
        l->h->writable(l->arg);
}

static void on_connected(struct link *l)
{
    int one = 1;
    evutil_socket_t fd = bufferevent_getfd(l->bev);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    l->connected = true;
    log_info("connected to relay %s", l->s->cfg.relay);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct link *l = arg;
    if (what & BEV_EVENT_CONNECTED) {
        on_connected(l);
        return;
    }
    if (l->state == LINK_DRAINING) {
        close_now(l);
        return;
    }
    if (!l->connected) {
        int err = EVUTIL_SOCKET_ERROR();
        int dns = bufferevent_socket_get_dns_error(l->bev);
        slpcat_say("cannot connect to relay %s: %s", l->s->cfg.relay,
                   dns ? evutil_gai_strerror(dns) : evutil_socket_error_to_string(err));
    } else {
        slpcat_say("relay %s closed the connection%s", l->s->cfg.relay,
                   l->role == SLP_ROLE_SUBSCRIBER && l->state == LINK_OPEN ? " without EOS" : "");
    }
    l->code = SLPCAT_EXIT_NETWORK;
    l->state = LINK_DRAINING;
    close_now(l);
}

/* Every TICK_MS: the handshake and idle bounds, keepalive, the drain bound. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct link *l = arg;
    int64_t now = clock_mono_ms();
    if (l->state == LINK_DRAINING) {
        if (now >= l->drain_deadline_ms)
            close_now(l);
        return;
    }
    if (l->state < LINK_OPEN && now - l->started_ms >= l->s->cfg.connect_timeout_ms) {
        const char *waiting = !l->connected ? "to connect to"
                              : l->state == LINK_AWAIT_HELLO ? "for HELLO from" : "for ACCEPT from";
        slpcat_say("timed out waiting %s relay %s", waiting, l->s->cfg.relay);
        drain(l, SLPCAT_EXIT_NETWORK);
        return;
    }
    if (l->state >= LINK_AWAIT_HELLO && now - l->last_rx_ms >= l->s->cfg.idle_timeout_ms) {
        slpcat_say("relay %s silent for %lld ms", l->s->cfg.relay,
                   (long long)(now - l->last_rx_ms));
        slp_evbuffer_add_error(bufferevent_get_output(l->bev), SLP_E_TIMEOUT, NULL);
        drain(l, SLPCAT_EXIT_NETWORK);
        return;
    }
    if (l->state >= LINK_AWAIT_HELLO && now - l->last_tx_ms >= PING_AFTER_MS) {
        struct slp_frame ping = { .type = SLP_PING, .ping = { (uint64_t)clock_mono_us() } };
        send_frame(l, &ping);
    }
}

struct link *link_new(struct slpcat *s, enum slp_role role, const struct link_handler *h,
                      void *arg)
{
    struct link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->s = s;
    l->role = role;
    slp_session_init(&l->sess, false, role);
    l->h = h;
    l->arg = arg;
    l->rx = malloc(SLP_MAX_FRAME);
    l->tick = event_new(s->base, -1, EV_PERSIST, on_tick, l);
    if (l->rx == NULL || l->tick == NULL) {
        link_free(l);
        return NULL;
    }
    return l;
}

static int send_hello(struct link *l)
{
    struct slp_frame hello = { .type = SLP_HELLO, .hello = {
        l->role, SLP_VERSION, slp_cstr(l->s->node), slp_cstr("slpcat/1") } };
    return send_frame(l, &hello);
}

int link_start(struct link *l, const struct slp_frame *request)
{
    char host[256];
    int port;
    if (net_split_hostport(l->s->cfg.relay, host, sizeof(host), &port) == -1 || port == 0) {
        slpcat_say("--relay %s: not host:port", l->s->cfg.relay);
        return -1;
    }
    l->request = *request;
    l->bev = bufferevent_socket_new(l->s->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (l->bev == NULL)
        return -1;
    bufferevent_setcb(l->bev, on_read, on_write, on_event, l);
    bufferevent_setwatermark(l->bev, EV_WRITE, LOW_WATER, 0);
    bufferevent_enable(l->bev, EV_READ | EV_WRITE);
    l->started_ms = l->last_rx_ms = l->last_tx_ms = clock_mono_ms();
    struct timeval tick = { 0, TICK_MS * 1000 };
    evtimer_add(l->tick, &tick);
    /* HELLO and the request go out with the connection (SLP.md section 6) */
    if (send_hello(l) == -1 || send_frame(l, request) == -1) {
        slpcat_say("invalid %s (check --stream, --node-id, --publisher-id)", request_name(l));
        return -1;
    }
    l->state = LINK_AWAIT_HELLO;
    if (bufferevent_socket_connect_hostname(l->bev, l->s->dns, AF_UNSPEC, host, port) == -1)
        on_event(l->bev, BEV_EVENT_ERROR, l);    /* reported through closed() */
    return 0;
}

enum link_state link_state(const struct link *l)
{
    return l->state;
}

size_t link_pending(const struct link *l)
{
    return l->bev ? evbuffer_get_length(bufferevent_get_output(l->bev)) : 0;
}

int link_send_media(struct link *l, const uint8_t hdr[SLP_MEDIA_HEADER_LEN],
                    const uint8_t *ts, size_t len)
{
    if (l->state != LINK_OPEN)
        return -1;
    struct evbuffer *out = bufferevent_get_output(l->bev);
    if (evbuffer_add(out, hdr, SLP_MEDIA_HEADER_LEN) == -1 || evbuffer_add(out, ts, len) == -1)
        return -1;
    l->last_tx_ms = clock_mono_ms();
    return 0;
}

void link_end(struct link *l, const struct slp_frame *last, int code)
{
    if (l->state >= LINK_DRAINING)
        return;
    if (last != NULL && l->state == LINK_OPEN)
        send_frame(l, last);
    drain(l, code);
}

void link_free(struct link *l)
{
    if (l == NULL)
        return;
    if (l->bev != NULL)
        bufferevent_free(l->bev);
    if (l->tick != NULL)
        event_free(l->tick);
    free(l->rx);
    free(l);
}
