/* SLP connections: see conn.h. */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "chunk.h"
#include "publisher.h"
#include "relay.h"
#include "stream.h"
#include "subscriber.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/slp.h"

/* One read from a publisher (libevent's own reads stop at 4 KiB); a little
 * under 64 KiB so that libevent's chain for it, header included, is 64 KiB. */
#define READ_PUBLISHER (64 * 1024 - 256)
#define READ_OTHER 4096              /* from anyone else: control frames only */
#define CONTROL_OUT_MAX (64 * 1024)  /* a non-subscriber's queue (PONGs, ERROR) */

static const char *role_name(const struct conn *c)
{
    if (c->sess.state == SLP_S_NEW)
        return "client";
    return c->sess.client == SLP_ROLE_PUBLISHER ? "publisher" : "subscriber";
}

const char *conn_state_name(enum conn_state s)
{
    switch (s) {
    case CONN_HANDSHAKE:  return "handshake";
    case CONN_DECIDING:   return "deciding";
    case CONN_PUBLISHING: return "publishing";
    case CONN_WAITING:    return "waiting";
    case CONN_SUBSCRIBED: return "subscribed";
    case CONN_CLOSING:    return "closing";
    case CONN_LINGER:     return "linger";
    case CONN_DEAD:       return "closed";
    }
    return "?";
}

bool conn_is_subscriber(const struct conn *c)
{
    return c->state == CONN_WAITING || c->state == CONN_SUBSCRIBED;
}

bool conn_is_publisher(const struct conn *c)
{
    return c->state == CONN_PUBLISHING;
}

void conn_set_state(struct conn *c, enum conn_state st)
{
    struct relay *r = c->relay;
    r->npublishers -= conn_is_publisher(c);
    r->nsubscribers -= conn_is_subscriber(c);
    c->state = st;
    r->npublishers += conn_is_publisher(c);
    r->nsubscribers += conn_is_subscriber(c);
}

/* ------------------------------------------------------------------------ */
/* Closing                                                                  */

void conn_detach(struct conn *c, const char *why)
{
    struct stream *s = c->stream;
    if (s == NULL)
        return;
    if (s->publisher == c)
        stream_publisher_lost(s, why);
    else if (c->sess.client == SLP_ROLE_SUBSCRIBER)
        stream_remove_sub(s, c);
    c->stream = NULL;
}

void conn_close(struct conn *c, const char *why)
{
    struct relay *r = c->relay;
    if (c->state == CONN_DEAD)
        return;
    log_debug("conn %llu (%s %s): closed: %s", (unsigned long long)c->id, role_name(c),
              c->peer, why);
    conn_detach(c, why);
    publisher_forget(c);
    conn_set_state(c, CONN_DEAD);
    event_del(c->rev);
    event_del(c->wev);
    close(c->fd);
    c->fd = -1;
    outq_fini(&c->out);          /* drops its chunk references now */
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        r->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = NULL;
    c->next = r->dead;
    r->dead = c;
    r->nconns--;
    event_active(r->reaper, EV_TIMEOUT, 0);
    relay_check_drained(r);
}

static void conn_free(struct conn *c)
{
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    if (c->in != NULL)
        evbuffer_free(c->in);
    outq_fini(&c->out);
    if (c->fd != -1)
        close(c->fd);
    free(c);
}

void conn_reap(struct relay *r)
{
    while (r->dead != NULL) {
        struct conn *c = r->dead;
        r->dead = c->next;
        conn_free(c);
    }
}

void conn_free_all(struct relay *r)
{
    while (r->conns != NULL)
        conn_close(r->conns, "exiting");
    conn_reap(r);
}

/* Everything we had to say is out: half-close, then read until the peer
 * closes too. Closing with unread bytes would reset the connection, and a
 * reset can destroy our last frames before the peer reads them. */
static void half_close(struct conn *c)
{
    shutdown(c->fd, SHUT_WR);
    conn_set_state(c, CONN_LINGER);
    c->deadline_ms = clock_mono_ms() + LINGER_MS;
    evbuffer_drain(c->in, evbuffer_get_length(c->in));
}

void conn_end(struct conn *c, const struct slp_frame *last, int64_t drain_ms)
{
    if (c->state >= CONN_CLOSING)
        return;
    char why[64];
    if (last != NULL && last->type == SLP_ERROR)
        snprintf(why, sizeof(why), "sent ERROR %s", slp_error_name(last->err.code));
    else
        snprintf(why, sizeof(why), "%s", last != NULL ? "sent EOS" : "closing");
    conn_detach(c, why);
    publisher_forget(c);
    if (last != NULL && outq_push_frame(&c->out, last) == -1) {
        conn_close(c, "cannot queue the last frame");
        return;
    }
    conn_set_state(c, CONN_CLOSING);
    c->deadline_ms = clock_mono_ms() + drain_ms;
    conn_flush(c);
}

void conn_error(struct conn *c, enum slp_error code, const char *fmt, ...)
{
    char text[SLP_TEXT_MAX + 1];
    if (c->state >= CONN_CLOSING)
        return;
    if (fmt == NULL) {
        snprintf(text, sizeof(text), "%s", slp_error_text(code));
    } else {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
    }
    log_info("conn %llu (%s %s): ERROR %s: %s", (unsigned long long)c->id, role_name(c),
             c->peer, slp_error_name(code), text);
    metric_add(metric_at(c->relay->fam[M_ERRORS_SENT], slp_error_name(code)), 1);
    struct slp_frame f = { .type = SLP_ERROR, .err = { (uint16_t)code, slp_cstr(text) } };
    conn_end(c, &f, ERROR_DRAIN_MS);
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

int conn_send(struct conn *c, const struct slp_frame *f)
{
    if (c->state >= CONN_CLOSING)
        return -1;
    size_t bound = conn_is_subscriber(c) ? (size_t)c->relay->cfg->max_queue : CONTROL_OUT_MAX;
    if (f->type == SLP_PONG && outq_bytes(&c->out) + SLP_HEADER_LEN + 8 > bound)
        return 0;                /* it is not reading: it will not miss the PONG */
    if (outq_bytes(&c->out) == 0)
        c->sub.behind_since_ms = clock_mono_ms();
    if (outq_push_frame(&c->out, f) == -1)
        return -1;
    c->last_tx_ms = clock_mono_ms();
    return 0;
}

/* The queue went empty (or was written into). */
static void on_written(struct conn *c, size_t n)
{
    if (c->stream != NULL && c->sess.client == SLP_ROLE_SUBSCRIBER) {
        metric_add(c->stream->m.bytes_out, (double)n);
        c->sub.bytes += n;
    }
}

/* Writes once. Returns false if <c> was closed. */
static bool write_now(struct conn *c)
{
    ssize_t n = outq_write(&c->out, c->fd);
    if (n > 0)
        on_written(c, (size_t)n);
    else if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        char why[96];
        snprintf(why, sizeof(why), "write: %s", strerror(errno));
        conn_close(c, why);
        return false;
    }
    if (outq_bytes(&c->out) > 0) {
        if (!c->writing && event_add(c->wev, NULL) == 0)
            c->writing = true;
        return true;
    }
    c->sub.behind_since_ms = 0;
    if (c->writing) {
        event_del(c->wev);
        c->writing = false;
    }
    if (c->state == CONN_CLOSING)
        half_close(c);
    return true;
}

void conn_flush(struct conn *c)
{
    if (c->state == CONN_DEAD || c->writing)
        return;              /* dead, or the socket is full: on_writable goes on */
    write_now(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    write_now(arg);
}

/* ------------------------------------------------------------------------ */
/* Input                                                                    */

/* One read of up to <want> bytes into <in>, straight into its free space.
 * Returns the bytes read, 0 at EOF, or -1 with errno. */
static ssize_t read_into(struct evbuffer *in, int fd, size_t want)
{
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    int nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
    if (nv <= 0) {
        errno = ENOMEM;
        return -1;
    }
    for (int i = 0; i < nv; i++) {
        iov[i].iov_base = v[i].iov_base;
        iov[i].iov_len = v[i].iov_len;
    }
    ssize_t n = readv(fd, iov, nv);
    if (n <= 0)
        return n;
    size_t left = (size_t)n;
    int used = 0;
    for (; used < nv && left > 0; used++) {
        if (v[used].iov_len > left)
            v[used].iov_len = left;
        left -= v[used].iov_len;
    }
    if (evbuffer_commit_space(in, v, used) == -1) {
        errno = ENOMEM;
        return -1;
    }
    return n;
}

/* The peer broke the protocol: ERROR <code> and close. */
static void protocol_error(struct conn *c, enum slp_error code, const char *why)
{
    conn_error(c, code, "%s", why);
}

static void on_hello(struct conn *c, const struct slp_frame *f)
{
    snprintf(c->node, sizeof(c->node), "%.*s", (int)f->hello.node.len, f->hello.node.p);
    snprintf(c->agent, sizeof(c->agent), "%.*s", (int)f->hello.agent.len, f->hello.agent.p);
    c->deadline_ms = clock_mono_ms() + c->relay->cfg->handshake_timeout_ms;
    struct slp_frame hello = { .type = SLP_HELLO, .hello = {
        SLP_ROLE_RELAY, SLP_VERSION, slp_cstr(c->relay->d->node_id), slp_cstr(RELAY_AGENT) } };
    conn_send(c, &hello);
}

static void on_pong(struct conn *c, const struct slp_frame *f)
{
    int64_t rtt = clock_mono_us() - (int64_t)f->ping.token;
    if (rtt >= 0 && rtt < 3600LL * 1000000)   /* ours, not an unsolicited one */
        c->rtt_us = rtt;
}

static void on_error_frame(struct conn *c, const struct slp_frame *f)
{
    char text[4 * SLP_TEXT_MAX + 8];
    const char *name = slp_error_name(f->err.code);
    log_escape(text, sizeof(text), f->err.text.p, f->err.text.len);
    log_info("conn %llu (%s %s): peer sent ERROR %s (%u): %s", (unsigned long long)c->id,
             role_name(c), c->peer, name ? name : "?", f->err.code, text);
    conn_close(c, "peer sent ERROR");    /* never answered; the peer closes too */
}

/* A whole, valid frame the session allows now. <m> holds it if it is MEDIA. */
static void dispatch(struct conn *c, const struct slp_frame *f, struct chunk *m)
{
    switch (f->type) {
    case SLP_HELLO:
        on_hello(c, f);
        return;
    case SLP_PUBLISH:
        publisher_request(c, f);
        return;
    case SLP_SUBSCRIBE:
        subscriber_request(c, f);
        return;
    case SLP_MEDIA:
        publisher_media(c, m);
        return;
    case SLP_EOS:
        publisher_eos(c, f);
        return;
    case SLP_PING: {
        struct slp_frame pong = { .type = SLP_PONG, .ping = f->ping };
        conn_send(c, &pong);
        return;
    }
    case SLP_PONG:
        on_pong(c, f);
        return;
    case SLP_ERROR:
        on_error_frame(c, f);
        return;
    case SLP_ACCEPT:
        return;                  /* refused by the session: a relay gets no ACCEPT */
    }
}

/* Takes the whole frame at the front of c->in and handles it. Returns false
 * when <c> can take no more input (closing, closed). */
static bool take_frame(struct conn *c, struct slp_frame *f)
{
    uint8_t ctl[SLP_HEADER_LEN + SLP_MAX_CONTROL];
    struct chunk *m = NULL;
    uint8_t *buf = ctl;
    size_t cap = sizeof(ctl);
    if (f->type == SLP_MEDIA) {
        if ((m = chunk_new(f->size)) == NULL) {
            conn_error(c, SLP_E_INTERNAL, "out of memory");
            return false;
        }
        buf = m->buf.data;
        cap = m->buf.len;
    }
    if (slp_evbuffer_take(c->in, buf, cap, f) != SLP_OK) {
        protocol_error(c, f->error, f->why);
        chunk_unref(m);
        return false;
    }
    const char *why;
    enum slp_error e = slp_session_recv(&c->sess, f, &why);
    if (e != SLP_E_NONE) {
        protocol_error(c, e, why);
        chunk_unref(m);
        return false;
    }
    if (m != NULL) {
        m->type = SLP_MEDIA;
        m->flags = f->flags;
        m->pts = f->media.pts;
        m->wall_us = f->media.wall_us;
    }
    dispatch(c, f, m);
    chunk_unref(m);
    return c->state < CONN_CLOSING;
}

/* Handles every whole frame buffered. A frame's header is judged as soon as
 * it is in, so nobody makes us buffer a body we would refuse: MEDIA only
 * from an accepted publisher, anything else at most 1 KiB (the codec). */
static void process_input(struct conn *c)
{
    struct slp_frame f;
    while (c->state < CONN_CLOSING) {
        enum slp_status st = slp_evbuffer_peek(c->in, &f);
        if (st == SLP_INVALID) {
            protocol_error(c, f.error, f.why);
            return;
        }
        if (f.type == SLP_MEDIA && c->state != CONN_PUBLISHING) {
            protocol_error(c, SLP_E_UNEXPECTED,
                           c->state == CONN_DECIDING    ? "MEDIA before ACCEPT"
                           : c->state == CONN_HANDSHAKE ? "MEDIA before PUBLISH"
                                                        : "MEDIA from a subscriber");
            return;
        }
        if (st == SLP_NEED_MORE || !take_frame(c, &f))
            return;
    }
}

static void on_eof(struct conn *c)
{
    if (c->state == CONN_LINGER) {
        conn_close(c, "closed by the peer after our last frame");
    } else if (c->state == CONN_CLOSING) {
        conn_close(c, "peer closed while our last frames were going out");
    } else if (evbuffer_get_length(c->in) > 0) {
        char why[64];
        snprintf(why, sizeof(why), "closed inside a frame (%zu bytes)", evbuffer_get_length(c->in));
        conn_close(c, why);
    } else {
        conn_close(c, "closed by the peer");
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    size_t want = c->state == CONN_PUBLISHING ? READ_PUBLISHER : READ_OTHER;
    ssize_t n = read_into(c->in, fd, want);
    if (n == 0) {
        on_eof(c);
        return;
    }
    if (n == -1) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            char why[96];
            snprintf(why, sizeof(why), "read: %s", strerror(errno));
            conn_close(c, why);
        }
        return;
    }
    if (c->state >= CONN_CLOSING) {          /* closing: the rest is not read */
        evbuffer_drain(c->in, evbuffer_get_length(c->in));
        return;
    }
    c->last_rx_ms = clock_mono_ms();
    process_input(c);
    /* one write per subscriber for all the frames this read brought (a stream
     * that lost or ended its publisher meanwhile has flushed already) */
    if (c->state == CONN_PUBLISHING && c->stream != NULL)
        stream_flush(c->stream);
    conn_flush(c);
}

/* ------------------------------------------------------------------------ */
/* Accept, tick                                                             */

static void format_peer(char *dst, size_t len, const struct sockaddr *a)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)a;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(dst, len, "%s:%u", ip, ntohs(in->sin_port));
    } else if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(dst, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(dst, len, "?");
    }
}

/* At the connection cap: say so and close. What the client already sent is
 * read first, so that our close is a FIN and the ERROR arrives. */
static void refuse_overloaded(struct relay *r, int fd)
{
    uint8_t buf[SLP_HEADER_LEN + SLP_MAX_CONTROL], junk[4096];
    struct slp_frame f = { .type = SLP_ERROR, .err = {
        SLP_E_OVERLOADED, slp_cstr("relay at its connection limit") } };
    size_t n = slp_encode(buf, sizeof(buf), &f);
    while (read(fd, junk, sizeof(junk)) > 0)
        ;
    if (write(fd, buf, n) == -1)
        log_debug("overloaded: cannot write the ERROR: %s", strerror(errno));
    shutdown(fd, SHUT_WR);
    close(fd);
    metric_add(metric_at(r->fam[M_ERRORS_SENT], "overloaded"), 1);
}

void conn_accept(struct relay *r, int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addrlen;
    if (r->nconns >= (unsigned)r->cfg->max_connections) {
        refuse_overloaded(r, fd);
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->relay = r;
    c->fd = fd;
    c->id = ++r->next_id;
    c->rtt_us = -1;
    format_peer(c->peer, sizeof(c->peer), addr);
    c->in = evbuffer_new();
    c->rev = event_new(r->d->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(r->d->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    if (c->in == NULL || c->rev == NULL || c->wev == NULL || outq_init(&c->out) == -1 ||
        event_add(c->rev, NULL) == -1) {
        conn_free(c);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    slp_session_init(&c->sess, true, 0);
    c->state = CONN_HANDSHAKE;
    c->connected_ms = c->last_rx_ms = c->last_tx_ms = clock_mono_ms();
    c->deadline_ms = c->connected_ms + r->cfg->handshake_timeout_ms;
    c->next = r->conns;
    if (r->conns != NULL)
        r->conns->prev = c;
    r->conns = c;
    r->nconns++;
    metric_add(r->connections_total, 1);
    log_debug("conn %llu: from %s", (unsigned long long)c->id, c->peer);
}

static void keepalive(struct conn *c, int64_t now)
{
    if (now - c->last_tx_ms < KEEPALIVE_MS)
        return;
    struct slp_frame ping = { .type = SLP_PING, .ping = { (uint64_t)clock_mono_us() } };
    conn_send(c, &ping);
    conn_flush(c);
}

void conn_tick(struct conn *c, int64_t now)
{
    const struct relay_config *cfg = c->relay->cfg;
    switch (c->state) {
    case CONN_HANDSHAKE:
    case CONN_DECIDING:
        if (now >= c->deadline_ms)
            conn_error(c, SLP_E_TIMEOUT, "no %s within %lld ms",
                       c->sess.state == SLP_S_NEW ? "HELLO" : "request",
                       (long long)cfg->handshake_timeout_ms);
        return;
    case CONN_PUBLISHING:
    case CONN_WAITING:
    case CONN_SUBSCRIBED:
        if (now - c->last_rx_ms >= cfg->idle_timeout_ms) {
            metric_add(metric_at(c->relay->fam[M_CUTOFFS], "timeout"), 1);
            conn_error(c, SLP_E_TIMEOUT, "nothing received for %lld ms",
                       (long long)(now - c->last_rx_ms));
            return;
        }
        if (conn_is_subscriber(c) && subscriber_tick(c, now) == -1)
            return;
        keepalive(c, now);
        return;
    case CONN_CLOSING:
    case CONN_LINGER:
        if (now >= c->deadline_ms)
            conn_close(c, c->state == CONN_CLOSING ? "last frames not taken in time"
                                                   : "peer did not close in time");
        return;
    case CONN_DEAD:
        return;
    }
}
