/* slpload subscribe: N SLP subscribers in one loop. Each read lands in one
 * shared buffer and is walked for frame boundaries only: a MEDIA body is
 * counted and skipped without a copy, control bodies (at most 1 KiB) are
 * kept to answer PING and to read EOS and ERROR. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "slpload.h"
#include "sluice/clock.h"
#include "sluice/slp.h"

#define READ_BUF (256 * 1024)
#define PING_MS 5000

enum reader_state { R_HANDSHAKE, R_OPEN, R_ENDED };

struct reader {
    struct readers *rs;
    int fd;
    struct event *ev;
    enum reader_state state;
    uint8_t frame[SLP_HEADER_LEN + SLP_MAX_CONTROL];  /* the header, and a control body */
    size_t have;                 /* bytes of frame[] filled */
    size_t body_left;            /* bytes of the current body still to come */
    bool in_body;
    struct slp_frame f;          /* the current frame's header */
    uint64_t bytes, frames, keyframes, gaps;
    int error_code;              /* an ERROR from the relay, or ours (< 0) */
    int eos_reason;
};

struct readers {
    struct slpload *s;
    struct reader *r;
    unsigned n, ended;
    uint8_t *buf;
    struct event *ping;
};

static void end_reader(struct reader *r, int error_code)
{
    if (r->state == R_ENDED)
        return;
    r->state = R_ENDED;
    if (error_code != 0 && r->error_code == 0)
        r->error_code = error_code;
    event_del(r->ev);
    close(r->fd);
    r->fd = -1;
    r->rs->ended++;
    if (r->rs->ended == r->rs->n)
        event_base_loopbreak(r->rs->s->base);
}

static void send_bytes(struct reader *r, const uint8_t *p, size_t n)
{
    if (r->state != R_ENDED && write(r->fd, p, n) != (ssize_t)n)
        end_reader(r, -2);
}

static void control_frame(struct reader *r)
{
    struct slp_frame f;
    if (slp_decode(r->frame, r->have, &f) != SLP_OK) {
        end_reader(r, -1);
        return;
    }
    switch (f.type) {
    case SLP_ACCEPT:
        r->state = R_OPEN;
        return;
    case SLP_PING: {
        uint8_t pong[SLP_HEADER_LEN + 8];
        struct slp_frame p = { .type = SLP_PONG, .ping = f.ping };
        send_bytes(r, pong, slp_encode(pong, sizeof(pong), &p));
        return;
    }
    case SLP_EOS:
        r->eos_reason = f.eos.reason;
        end_reader(r, 0);
        return;
    case SLP_ERROR:
        end_reader(r, f.err.code);
        return;
    default:
        return;
    }
}

/* A header is complete: judge it, count MEDIA. */
static void header_done(struct reader *r)
{
    if (slp_decode_header(r->frame, SLP_HEADER_LEN, &r->f) != SLP_OK) {
        end_reader(r, -1);
        return;
    }
    r->in_body = true;
    r->body_left = r->f.size - SLP_HEADER_LEN;
    if (r->f.type == SLP_MEDIA) {
        r->frames++;
        r->keyframes += (r->f.flags & SLP_F_KEYFRAME) != 0;
        r->gaps += (r->f.flags & SLP_F_DISCONTINUITY) != 0;
    }
}

static void walk(struct reader *r, const uint8_t *p, size_t n)
{
    while (n > 0 && r->state != R_ENDED) {
        if (!r->in_body) {
            size_t take = SLP_HEADER_LEN - r->have < n ? SLP_HEADER_LEN - r->have : n;
            memcpy(r->frame + r->have, p, take);
            r->have += take;
            p += take;
            n -= take;
            if (r->have == SLP_HEADER_LEN)
                header_done(r);
            continue;
        }
        size_t take = r->body_left < n ? r->body_left : n;
        if (r->f.type != SLP_MEDIA) {
            memcpy(r->frame + r->have, p, take);
            r->have += take;
        }
        p += take;
        n -= take;
        r->body_left -= take;
        if (r->body_left == 0) {
            if (r->f.type != SLP_MEDIA)
                control_frame(r);
            r->in_body = false;
            r->have = 0;
        }
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct reader *r = arg;
    ssize_t n = read(fd, r->rs->buf, READ_BUF);
    if (n > 0) {
        r->bytes += (size_t)n;
        walk(r, r->rs->buf, (size_t)n);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        end_reader(r, n == 0 ? -3 : -4);
    }
}

static void on_ping(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct readers *rs = arg;
    uint8_t ping[SLP_HEADER_LEN + 8];
    struct slp_frame p = { .type = SLP_PING, .ping = { (uint64_t)clock_mono_us() } };
    size_t len = slp_encode(ping, sizeof(ping), &p);
    for (unsigned i = 0; i < rs->n; i++)
        send_bytes(&rs->r[i], ping, len);
}

/* Connects reader <r> (blocking, on loopback that is instant) and sends
 * HELLO and SUBSCRIBE. Returns 0 or -1. */
static int connect_reader(struct readers *rs, struct reader *r, const struct sockaddr *sa,
                          socklen_t salen, const uint8_t *hello, size_t hlen)
{
    const struct slpload_config *c = &rs->s->cfg;
    r->fd = socket(sa->sa_family, SOCK_STREAM, 0);
    if (r->fd == -1)
        return -1;
    if (c->rcvbuf > 0) {
        int b = (int)c->rcvbuf;
        setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &b, sizeof(b));
    }
    int one = 1;
    setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(r->fd, sa, salen) == -1 || write(r->fd, hello, hlen) != (ssize_t)hlen)
        return -1;
    evutil_make_socket_nonblocking(r->fd);
    r->ev = event_new(rs->s->base, r->fd, EV_READ | EV_PERSIST, on_read, r);
    return r->ev ? event_add(r->ev, NULL) : -1;
}

static size_t handshake(const struct slpload_config *c, uint8_t *buf, size_t cap)
{
    enum slp_start start = SLP_START_KEYFRAME;
    slp_start_parse(c->from, &start);
    struct slp_frame hello = { .type = SLP_HELLO, .hello = {
        SLP_ROLE_SUBSCRIBER, SLP_VERSION, slp_cstr("slpload"), slp_cstr("slpload/1") } };
    struct slp_frame sub = { .type = SLP_SUBSCRIBE, .subscribe = {
        slp_cstr(c->stream), start, (uint32_t)(c->wait_s * 1000) } };
    size_t n = slp_encode(buf, cap, &hello);
    size_t m = n ? slp_encode(buf + n, cap - n, &sub) : 0;
    return m ? n + m : 0;
}

struct readers *readers_start(struct slpload *s)
{
    const struct slpload_config *c = &s->cfg;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    uint8_t hello[2 * (SLP_HEADER_LEN + SLP_MAX_CONTROL)];
    size_t hlen = handshake(c, hello, sizeof(hello));
    if (hlen == 0 || evutil_parse_sockaddr_port(c->relay, (struct sockaddr *)&ss, &sslen) == -1) {
        fprintf(stderr, "slpload: --relay %s: want ip:port; --stream a valid name\n", c->relay);
        return NULL;
    }
    struct readers *rs = calloc(1, sizeof(*rs));
    if (rs == NULL)
        return NULL;
    rs->s = s;
    rs->n = (unsigned)c->count;
    rs->r = calloc(rs->n, sizeof(*rs->r));
    rs->buf = malloc(READ_BUF);
    rs->ping = event_new(s->base, -1, EV_PERSIST, on_ping, rs);
    if (rs->r == NULL || rs->buf == NULL || rs->ping == NULL) {
        readers_free(rs);
        return NULL;
    }
    for (unsigned i = 0; i < rs->n; i++) {
        rs->r[i].rs = rs;
        rs->r[i].fd = -1;
        if (connect_reader(rs, &rs->r[i], (struct sockaddr *)&ss, (socklen_t)sslen, hello,
                           hlen) == -1) {
            fprintf(stderr, "slpload: reader %u: cannot connect to %s: %s\n", i, c->relay,
                    strerror(errno));
            readers_free(rs);
            return NULL;
        }
    }
    struct timeval tv = clock_tv_ms(PING_MS);
    event_add(rs->ping, &tv);
    return rs;
}

bool readers_done(const struct readers *rs)
{
    return rs->ended == rs->n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void readers_report(const struct readers *rs, double seconds)
{
    uint64_t total = 0, frames = 0, gaps = 0, with_gaps = 0, keyframes = 0;
    unsigned accepted = 0, eos = 0, errors = 0;
    uint64_t *b = calloc(rs->n ? rs->n : 1, sizeof(*b));
    for (unsigned i = 0; i < rs->n; i++) {
        const struct reader *r = &rs->r[i];
        total += r->bytes;
        frames += r->frames;
        keyframes += r->keyframes;
        gaps += r->gaps;
        with_gaps += r->gaps > 0;
        accepted += r->state != R_HANDSHAKE;
        eos += r->eos_reason != 0;
        errors += r->error_code != 0;
        if (b != NULL)
            b[i] = r->bytes;
    }
    if (b != NULL)
        qsort(b, rs->n, sizeof(*b), cmp_u64);
    printf("\"readers\":%u,\"accepted\":%u,\"eos\":%u,\"errors\":%u,\"bytes\":%llu,"
           "\"bytes_per_s\":%.0f,\"frames\":%llu,\"keyframes\":%llu,\"gaps\":%llu,"
           "\"readers_with_gaps\":%llu,\"reader_bytes_min\":%llu,\"reader_bytes_max\":%llu",
           rs->n, accepted, eos, errors, (unsigned long long)total,
           seconds > 0 ? total / seconds : 0.0, (unsigned long long)frames,
           (unsigned long long)keyframes, (unsigned long long)gaps,
           (unsigned long long)with_gaps, (unsigned long long)(b && rs->n ? b[0] : 0),
           (unsigned long long)(b && rs->n ? b[rs->n - 1] : 0));
    free(b);
    if (!rs->s->cfg.per_reader)
        return;
    printf(",\"per_reader\":[");
    for (unsigned i = 0; i < rs->n; i++) {
        const struct reader *r = &rs->r[i];
        printf("%s{\"bytes\":%llu,\"frames\":%llu,\"keyframes\":%llu,\"gaps\":%llu,"
               "\"error\":%d,\"eos\":%d}", i ? "," : "", (unsigned long long)r->bytes,
               (unsigned long long)r->frames, (unsigned long long)r->keyframes,
               (unsigned long long)r->gaps, r->error_code, r->eos_reason);
    }
    printf("]");
}

void readers_free(struct readers *rs)
{
    if (rs == NULL)
        return;
    for (unsigned i = 0; rs->r != NULL && i < rs->n; i++) {
        if (rs->r[i].ev != NULL)
            event_free(rs->r[i].ev);
        if (rs->r[i].fd != -1)
            close(rs->r[i].fd);
    }
    if (rs->ping != NULL)
        event_free(rs->ping);
    free(rs->r);
    free(rs->buf);
    free(rs);
}
