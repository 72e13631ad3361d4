/* slpload floor: the syscall floor of fan-out. It plays a relay that has
 * nothing to decide: it cuts a TS file into MEDIA frames once, up front
 * (libcommon's TS annotator, as a publisher would), accepts N subscribers,
 * answers their handshake, then paces the frames at --rate (looping the file)
 * and writes each frame to every subscriber with one write(2), as the relay
 * does when frames arrive one per read. What it costs is what the bare
 * system calls of that fan-out cost.
 *
 * A subscriber whose socket is full gets the rest later (an evbuffer and
 * EV_WRITE), and is counted as a stall.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "slpload.h"
#include "sluice/clock.h"
#include "sluice/slp.h"
#include "sluice/ts.h"

struct sink {
    struct floor_writer *fw;
    int fd;
    bool subscribed;             /* its HELLO and SUBSCRIBE came: it gets the stream */
    struct event *rev, *wev;
    struct evbuffer *pending;    /* only while its socket is full */
    uint64_t bytes, stalls;
};

struct frame {
    uint8_t *data;               /* the whole MEDIA frame */
    size_t len;
};

struct floor_writer {
    struct slpload *s;
    struct evconnlistener *l;
    struct sink *k;
    unsigned n, slots, accepted, connected;   /* connected: subscribed sinks */
    struct frame *frame;
    unsigned nframes, cap, next;
    uint8_t hello[3 * (SLP_HEADER_LEN + SLP_MAX_CONTROL)];
    size_t hello_len;
    struct event *pace;
    int64_t t0_us;
    uint64_t paced_bytes;        /* TS bytes of the frames sent so far */
    uint64_t frames_sent, writes;
};

/* ------------------------------------------------------------------------ */
/* The frames                                                               */

static void on_frame(const struct ts_frame *f, void *arg)
{
    struct floor_writer *fw = arg;
    if (fw->nframes == fw->cap) {
        unsigned cap = fw->cap ? 2 * fw->cap : 1024;
        struct frame *nf = realloc(fw->frame, cap * sizeof(*nf));
        if (nf == NULL)
            return;
        fw->frame = nf;
        fw->cap = cap;
    }
    struct frame *fr = &fw->frame[fw->nframes];
    fr->len = SLP_MEDIA_HEADER_LEN + f->len;
    if ((fr->data = malloc(fr->len)) == NULL)
        return;
    slp_encode_media_header(fr->data, f->flags, f->pts, f->wall_us, f->len);
    memcpy(fr->data + SLP_MEDIA_HEADER_LEN, f->ts, f->len);
    fw->nframes++;
}

static int load_frames(struct floor_writer *fw, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd == -1 || fstat(fd, &st) == -1) {
        fprintf(stderr, "slpload: cannot open %s: %s\n", path, strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    uint8_t *buf = malloc((size_t)st.st_size);
    ssize_t got = buf ? read(fd, buf, (size_t)st.st_size) : -1;
    close(fd);
    struct ts_annotator *a = ts_annotator_new(NULL);
    if (got <= 0 || a == NULL) {
        free(buf);
        ts_annotator_free(a);
        return -1;
    }
    ts_annotator_feed(a, buf, (size_t)got, clock_wall_us(), on_frame, fw);
    ts_annotator_flush(a, on_frame, fw);
    ts_annotator_free(a);
    free(buf);
    return fw->nframes > 0 ? 0 : -1;
}

static size_t make_hello(struct floor_writer *fw)
{
    struct slp_frame f[3] = {
        { .type = SLP_HELLO, .hello = { SLP_ROLE_RELAY, SLP_VERSION, slp_cstr("floor"),
                                        slp_cstr("slpload-floor/1") } },
        { .type = SLP_ACCEPT, .accept = { SLP_SUBSCRIBE } },
        { .type = SLP_PUBLISH, .publish = { slp_cstr(fw->s->cfg.stream), slp_cstr("floor"),
                                            slp_cstr("floor"), slp_cstr("slpload"),
                                            slp_cstr(""), clock_wall_us() } },
    };
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        size_t m = slp_encode(fw->hello + n, sizeof(fw->hello) - n, &f[i]);
        if (m == 0)
            return 0;
        n += m;
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct sink *k = arg;
    int n = evbuffer_write(k->pending, fd);
    if (n > 0)
        k->bytes += (size_t)n;
    if (evbuffer_get_length(k->pending) == 0)
        event_del(k->wev);
}

static void send_to(struct sink *k, const uint8_t *p, size_t len)
{
    if (k->fd == -1)
        return;
    if (evbuffer_get_length(k->pending) > 0) {
        evbuffer_add(k->pending, p, len);
        return;
    }
    ssize_t n = write(k->fd, p, len);
    k->fw->writes++;
    if (n < 0)
        n = 0;
    k->bytes += (size_t)n;
    if ((size_t)n < len) {
        k->stalls++;
        evbuffer_add(k->pending, p + n, len - (size_t)n);
        event_add(k->wev, NULL);
    }
}

/* Sends every frame that is due, then sleeps until the next one. */
static void on_pace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct floor_writer *fw = arg;
    int64_t now = clock_mono_us();
    for (;;) {
        const struct frame *f = &fw->frame[fw->next];
        int64_t due = fw->t0_us + (int64_t)(fw->paced_bytes * 8 * 1000000 /
                                            (uint64_t)fw->s->cfg.rate);
        if (due > now) {
            struct timeval tv = { (time_t)((due - now) / 1000000),
                                  (suseconds_t)((due - now) % 1000000) };
            evtimer_add(fw->pace, &tv);
            return;
        }
        for (unsigned i = 0; i < fw->accepted; i++) {
            if (fw->k[i].subscribed)
                send_to(&fw->k[i], f->data, f->len);
        }
        fw->frames_sent++;
        fw->paced_bytes += f->len - SLP_MEDIA_HEADER_LEN;
        fw->next = (fw->next + 1) % fw->nframes;
    }
}

/* ------------------------------------------------------------------------ */
/* Subscribers                                                              */

/* A subscriber's first bytes (HELLO, SUBSCRIBE) make it one: it gets the
 * handshake, and the pacing starts once all have come. Connections that
 * close without a word (a port probe) are only closed. Later bytes (PINGs)
 * are discarded. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct sink *k = arg;
    struct floor_writer *fw = k->fw;
    char junk[4096];
    ssize_t n = read(fd, junk, sizeof(junk));
    if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
        event_del(k->rev);
        event_del(k->wev);
        close(k->fd);
        k->fd = -1;
        return;
    }
    if (n <= 0 || k->subscribed || fw->connected == fw->n)
        return;
    k->subscribed = true;
    send_to(k, fw->hello, fw->hello_len);
    if (++fw->connected == fw->n) {
        fw->t0_us = clock_mono_us();
        event_active(fw->pace, EV_TIMEOUT, 0);
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    struct floor_writer *fw = arg;
    if (fw->accepted == fw->slots) {
        close(fd);
        return;
    }
    struct sink *k = &fw->k[fw->accepted++];
    k->fw = fw;
    k->fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    k->pending = evbuffer_new();
    k->rev = event_new(fw->s->base, fd, EV_READ | EV_PERSIST, on_readable, k);
    k->wev = event_new(fw->s->base, fd, EV_WRITE | EV_PERSIST, on_writable, k);
    event_add(k->rev, NULL);
}

struct floor_writer *floor_start(struct slpload *s)
{
    const struct slpload_config *c = &s->cfg;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    if (c->rate <= 0 || evutil_parse_sockaddr_port(c->listen, (struct sockaddr *)&ss, &sslen)) {
        fprintf(stderr, "slpload floor: needs --listen ip:port and --rate\n");
        return NULL;
    }
    struct floor_writer *fw = calloc(1, sizeof(*fw));
    if (fw == NULL)
        return NULL;
    fw->s = s;
    fw->n = (unsigned)c->count;
    fw->slots = fw->n + 16;          /* room for port probes */
    fw->k = calloc(fw->slots, sizeof(*fw->k));
    fw->pace = evtimer_new(s->base, on_pace, fw);
    fw->hello_len = make_hello(fw);
    if (fw->k == NULL || fw->pace == NULL || fw->hello_len == 0 || load_frames(fw, c->file) == -1) {
        fprintf(stderr, "slpload floor: cannot load %s\n", c->file);
        floor_free(fw);
        return NULL;
    }
    for (unsigned i = 0; i < fw->slots; i++)
        fw->k[i].fd = -1;
    fw->l = evconnlistener_new_bind(s->base, on_accept, fw, LEV_OPT_CLOSE_ON_FREE |
                                    LEV_OPT_REUSEABLE, 1024, (struct sockaddr *)&ss, sslen);
    if (fw->l == NULL) {
        fprintf(stderr, "slpload floor: cannot listen on %s: %s\n", c->listen, strerror(errno));
        floor_free(fw);
        return NULL;
    }
    return fw;
}

void floor_report(const struct floor_writer *fw, double seconds)
{
    uint64_t bytes = 0, stalls = 0;
    for (unsigned i = 0; i < fw->accepted; i++) {
        bytes += fw->k[i].bytes;
        stalls += fw->k[i].stalls;
    }
    printf("\"subscribers\":%u,\"connected\":%u,\"frames\":%llu,\"writes\":%llu,"
           "\"bytes\":%llu,\"bytes_per_s\":%.0f,\"stalls\":%llu,\"file_frames\":%u",
           fw->n, fw->connected, (unsigned long long)fw->frames_sent,
           (unsigned long long)fw->writes, (unsigned long long)bytes,
           seconds > 0 ? bytes / seconds : 0.0, (unsigned long long)stalls, fw->nframes);
}

void floor_free(struct floor_writer *fw)
{
    if (fw == NULL)
        return;
    for (unsigned i = 0; fw->k != NULL && i < fw->slots; i++) {
        struct sink *k = &fw->k[i];
        if (k->rev != NULL)
            event_free(k->rev);
        if (k->wev != NULL)
            event_free(k->wev);
        if (k->pending != NULL)
            evbuffer_free(k->pending);
        if (k->fd != -1)
            close(k->fd);
    }
    for (unsigned i = 0; i < fw->nframes; i++)
        free(fw->frame[i].data);
    if (fw->l != NULL)
        evconnlistener_free(fw->l);
    if (fw->pace != NULL)
        event_free(fw->pace);
    free(fw->frame);
    free(fw->k);
    free(fw);
}
