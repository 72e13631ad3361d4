/* slpcat publish: reads TS from a file or stdin, paces it (by its PCR, at a
 * fixed --rate, or not at all with --fast), and feeds it to the TS annotator
 * the way ingest receives a live stream, so that the frames' wall clocks are
 * real; each frame goes out as one MEDIA frame. --raw skips the annotator:
 * the input is cut into frames of whole packets with no flags and no checks.
 *
 *   [lease] -> connect, HELLO + PUBLISH -> ACCEPT -> pump ... EOF -> EOS ->
 *   drain -> [release lease] -> exit
 *
 * The pump reads while the connection's output is below HIGH_WATER and the
 * pacer allows; it sleeps on a timer (pacing), on the output draining, or on
 * stdin becoming readable, so nothing ever busy-waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "lease.h"
#include "link.h"
#include "slpcat.h"
#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/slp.h"
#include "sluice/ts.h"

#define IN_CAP (64 * 1024)          /* one read */
#define HIGH_WATER (1024 * 1024)    /* stop reading while this much is unsent */
#define PUMP_BUDGET (4 * 1024 * 1024) /* bytes per turn of the loop */
#define PCR_HZ 27000000LL
#define PCR_JUMP (5 * PCR_HZ)       /* a larger jump (or one back) re-bases the pacer */

/* Turns input positions into send times. */
struct pacer {
    int64_t t0_us;               /* monotonic time of the base */
    int64_t pcr0, last_pcr;      /* PCR mode: the base PCR and the latest, or -1 */
    int pcr_pid;                 /* the PID whose PCR paces; -1 until known */
    uint64_t bytes0;             /* rate mode: bytes fed at the base */
};

struct raw_batch {               /* --raw: whole packets waiting for a frame */
    uint8_t *buf;
    size_t len, cap;
    int64_t wall_us;
};

struct publisher {
    struct slpcat *s;
    struct link *link;
    struct lease *lease;
    char publisher_id[SLP_ID_MAX + 1];
    int fd;
    bool regular;                /* a regular file: reads never block; can loop */
    struct event *readable;      /* stdin as a pipe: wait for data */
    struct event *pump_ev;       /* pacing sleeps and deferred pumping */
    uint8_t in[IN_CAP];
    size_t in_len, in_pos;
    uint64_t fed, read_this_pass;
    struct ts_annotator *ann;
    struct raw_batch raw;
    struct pacer pacer;
    bool open, ending;
    int end_code;                /* once ending: the exit code */
    uint64_t frames, keyframes, bytes;
};

/* ------------------------------------------------------------------------ */
/* Pacing                                                                   */

static void pacer_rebase(struct pacer *pc, uint64_t fed)
{
    pc->t0_us = clock_mono_us();
    pc->pcr0 = pc->last_pcr = -1;
    pc->bytes0 = fed;
}

/* A first PCR, or one that jumps (a splice, the 2^33 wrap): the timeline
 * starts again at <pcr>, now or where the old one had got to if later. */
static void pacer_restart_pcr(struct pacer *pc, int64_t pcr)
{
    int64_t now = clock_mono_us();
    int64_t old_end = pc->pcr0 < 0 ? now : pc->t0_us + (pc->last_pcr - pc->pcr0) / 27;
    pc->t0_us = old_end > now ? old_end : now;
    pc->pcr0 = pcr;
}

/* When the packet at <pkt> (the <fed>th byte of input) is due, in monotonic
 * µs; 0 when it may go at once. */
static int64_t pacer_due(struct publisher *p, const uint8_t *pkt, uint64_t fed)
{
    struct pacer *pc = &p->pacer;
    if (p->s->cfg.fast)
        return 0;
    if (p->s->cfg.rate > 0)
        return pc->t0_us + (int64_t)((fed - pc->bytes0) * 8 * 1000000 / (uint64_t)p->s->cfg.rate);
    int64_t pcr = ts_packet_pcr(pkt);
    if (pcr < 0)
        return 0;
    int pid = (int)ts_packet_pid(pkt);
    if (p->ann != NULL && ts_annotator_program(p->ann)->pcr_pid >= 0)
        pc->pcr_pid = ts_annotator_program(p->ann)->pcr_pid;
    if (pc->pcr_pid < 0)
        pc->pcr_pid = pid;
    if (pid != pc->pcr_pid)
        return 0;
    if (pc->pcr0 < 0 || pcr < pc->last_pcr || pcr - pc->last_pcr > PCR_JUMP)
        pacer_restart_pcr(pc, pcr);
    pc->last_pcr = pcr;
    return pc->t0_us + (pcr - pc->pcr0) / 27;
}

/* ------------------------------------------------------------------------ */
/* Frames out                                                               */

static void send_frame(struct publisher *p, uint16_t flags, int64_t pts, int64_t wall_us,
                       const uint8_t *ts, size_t len)
{
    uint8_t hdr[SLP_MEDIA_HEADER_LEN];
    if (slp_encode_media_header(hdr, flags, pts, wall_us, len) == 0 ||
        link_send_media(p->link, hdr, ts, len) == -1)
        return;
    p->frames++;
    p->keyframes += (flags & SLP_F_KEYFRAME) != 0;
    p->bytes += len;
}

static void on_annotated(const struct ts_frame *f, void *arg)
{
    struct publisher *p = arg;
    send_frame(p, f->flags, f->pts, f->wall_us, f->ts, f->len);
}

static void raw_flush(struct publisher *p)
{
    size_t whole = p->raw.len - p->raw.len % TS_PACKET;
    if (whole > 0)
        send_frame(p, 0, SLP_PTS_NONE, p->raw.wall_us, p->raw.buf, whole);
    memmove(p->raw.buf, p->raw.buf + whole, p->raw.len - whole);
    p->raw.len -= whole;
}

/* --raw: batches bytes into frames of up to max_packets whole packets. */
static void raw_feed(struct publisher *p, const uint8_t *b, size_t n)
{
    while (n > 0) {
        if (p->raw.len == 0)
            p->raw.wall_us = clock_wall_us();
        size_t take = p->raw.cap - p->raw.len < n ? p->raw.cap - p->raw.len : n;
        memcpy(p->raw.buf + p->raw.len, b, take);
        p->raw.len += take;
        b += take;
        n -= take;
        if (p->raw.len == p->raw.cap)
            raw_flush(p);
    }
}

static void feed(struct publisher *p, size_t from, size_t to)
{
    if (to <= from)
        return;
    if (p->ann != NULL)
        ts_annotator_feed(p->ann, p->in + from, to - from, clock_wall_us(), on_annotated, p);
    else
        raw_feed(p, p->in + from, to - from);
    p->fed += to - from;
}

/* Feeds what is due of the input buffer. Returns how long to wait (µs) for
 * the next packet, or 0 when the buffer is used up. */
static int64_t feed_due(struct publisher *p)
{
    size_t start = p->in_pos;
    while (p->in_pos < p->in_len) {
        const uint8_t *b = p->in + p->in_pos;
        if (b[0] != 0x47) {            /* not a packet start: passed on, unpaced */
            p->in_pos++;
            continue;
        }
        if (p->in_len - p->in_pos < TS_PACKET)
            break;                     /* a partial packet waits for the next read */
        int64_t wait = pacer_due(p, b, p->fed + (p->in_pos - start)) - clock_mono_us();
        if (wait > 0) {
            feed(p, start, p->in_pos);
            return wait;
        }
        p->in_pos += TS_PACKET;
    }
    feed(p, start, p->in_pos);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Input                                                                    */

enum refill { REFILL_OK, REFILL_WAIT, REFILL_EOF, REFILL_ERROR };

static enum refill refill(struct publisher *p)
{
    size_t keep = p->in_len - p->in_pos;      /* a partial packet */
    memmove(p->in, p->in + p->in_pos, keep);
    p->in_len = keep;
    p->in_pos = 0;
    ssize_t n = read(p->fd, p->in + keep, sizeof(p->in) - keep);
    if (n > 0) {
        p->in_len += (size_t)n;
        p->read_this_pass += (size_t)n;
        return REFILL_OK;
    }
    if (n == 0)
        return REFILL_EOF;
    if (errno == EAGAIN || errno == EINTR)
        return REFILL_WAIT;
    slpcat_say("cannot read %s: %s", p->s->cfg.file, strerror(errno));
    return REFILL_ERROR;
}

static void finish(struct publisher *p, int code, const char *why);

/* End of the input: again from the top with --loop, else EOS. */
static void end_of_input(struct publisher *p)
{
    if (p->s->cfg.loop && p->read_this_pass > 0 && lseek(p->fd, 0, SEEK_SET) == 0) {
        feed(p, p->in_pos, p->in_len);         /* the last partial bytes */
        p->in_len = p->in_pos = 0;
        p->read_this_pass = 0;
        if (p->ann != NULL)
            ts_annotator_discontinuity(p->ann);
        pacer_rebase(&p->pacer, p->fed);
        log_info("looping: from the start of %s", p->s->cfg.file);
        return;
    }
    feed(p, p->in_pos, p->in_len);
    p->in_pos = p->in_len;
    if (p->ann != NULL)
        ts_annotator_flush(p->ann, on_annotated, p);
    else
        raw_flush(p);
    finish(p, SLPCAT_EXIT_OK, "end of input");
}

static void pump_later(struct publisher *p, int64_t us)
{
    struct timeval tv = { (time_t)(us / 1000000), (suseconds_t)(us % 1000000) };
    evtimer_add(p->pump_ev, &tv);
}

/* Reads, paces and sends until something says wait. */
static void pump(struct publisher *p)
{
    if (!p->open || p->ending)
        return;
    for (uint64_t start = p->fed; p->fed - start < PUMP_BUDGET;) {
        if (link_pending(p->link) > HIGH_WATER)
            return;                              /* writable() resumes */
        if (p->in_pos >= p->in_len || p->in_len - p->in_pos < TS_PACKET) {
            enum refill r = refill(p);
            if (r == REFILL_WAIT) {
                event_add(p->readable, NULL);
                return;
            }
            if (r == REFILL_ERROR) {
                finish(p, SLPCAT_EXIT_IO, NULL);
                return;
            }
            if (r == REFILL_EOF) {
                end_of_input(p);
                if (p->ending)
                    return;
                continue;
            }
        }
        int64_t wait = feed_due(p);
        if (wait > 0) {
            if (p->ann == NULL)
                raw_flush(p);          /* --raw: frames go out at least per pause */
            pump_later(p, wait);
            return;
        }
    }
    pump_later(p, 0);                            /* let the loop breathe */
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

/* ------------------------------------------------------------------------ */
/* Session                                                                  */

static void on_accepted(void *arg)
{
    struct publisher *p = arg;
    p->open = true;
    pacer_rebase(&p->pacer, p->fed);
    log_info("publishing %s as %s", p->s->cfg.stream, p->publisher_id);
    pump_later(p, 0);         /* not from inside the read callback */
}

static void on_writable(void *arg)
{
    pump(arg);
}

static void on_lease(enum lease_event ev, const char *other, void *arg);

static void on_closed(int code, void *arg)
{
    struct publisher *p = arg;
    if (!p->ending)
        p->end_code = code;
    else if (p->end_code == SLPCAT_EXIT_OK)
        p->end_code = code;
    p->ending = true;
    log_info("sent %llu frames (%llu keyframes), %llu bytes of TS",
             (unsigned long long)p->frames, (unsigned long long)p->keyframes,
             (unsigned long long)p->bytes);
    if (p->lease != NULL)
        lease_release(p->lease);         /* LEASE_EV_RELEASED quits */
    else
        slpcat_quit(p->s, p->end_code);
}

static const struct link_handler handler = { on_accepted, NULL, on_writable, on_closed };

/* Ends the session with <code>; <why> (NULL: none) goes in the EOS. */
static void finish(struct publisher *p, int code, const char *why)
{
    if (p->ending)
        return;
    p->ending = true;
    p->end_code = code;
    evtimer_del(p->pump_ev);
    event_del(p->readable);
    struct slp_frame eos = { .type = SLP_EOS, .eos = { SLP_EOS_ENDED, slp_cstr(why) } };
    link_end(p->link, why != NULL ? &eos : NULL, code);
}

static int connect_relay(struct publisher *p)
{
    const struct slpcat_config *c = &p->s->cfg;
    struct slp_frame req = { .type = SLP_PUBLISH, .publish = {
        slp_cstr(c->stream), slp_cstr(p->publisher_id), slp_cstr(p->s->node),
        slp_cstr(c->protocol), slp_cstr(c->client), clock_wall_us() } };
    p->link = link_start(p->s, &req, &handler, p);
    return p->link != NULL ? 0 : -1;
}

static void on_lease(enum lease_event ev, const char *other, void *arg)
{
    struct publisher *p = arg;
    switch (ev) {
    case LEASE_EV_HELD:
        if (connect_relay(p) == -1)
            slpcat_quit(p->s, SLPCAT_EXIT_USAGE);
        return;
    case LEASE_EV_REFUSED:
        if (other != NULL)
            slpcat_say("stream %s is being published by %s (sluice:lease:publish:%s); "
                       "--takeover takes it", p->s->cfg.stream, other, p->s->cfg.stream);
        else
            slpcat_say("cannot take the publish lease: Redis at %s does not answer",
                       p->s->cfg.redis_url);
        p->ending = true;
        p->end_code = SLPCAT_EXIT_LEASE;
        lease_release(p->lease);
        return;
    case LEASE_EV_LOST:
        slpcat_say("lost the publish lease of %s to %s: stopping", p->s->cfg.stream, other);
        if (p->link != NULL && !p->ending) {
            finish(p, SLPCAT_EXIT_LEASE, NULL);  /* no EOS: the stream goes on elsewhere */
            return;
        }
        p->ending = true;
        p->end_code = SLPCAT_EXIT_LEASE;
        lease_release(p->lease);
        return;
    case LEASE_EV_RELEASED:
        slpcat_quit(p->s, p->end_code);
        return;
    }
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                    */

static int open_input(struct publisher *p)
{
    const char *file = p->s->cfg.file;
    p->fd = strcmp(file, "-") == 0 ? 0 : open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (p->fd == -1 || fstat(p->fd, &st) == -1) {
        slpcat_say("cannot open %s: %s", file, strerror(errno));
        return -1;
    }
    p->regular = S_ISREG(st.st_mode);
    if (p->s->cfg.loop && !p->regular) {
        slpcat_say("--loop needs a regular file, not %s", file);
        return -1;
    }
    if (!p->regular)
        fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
    return 0;
}

/* slpcat-<node>-<pid>-<random>: unique, visible ASCII, within SLP_ID_MAX. */
static void make_publisher_id(struct publisher *p)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint32_t)clock_mono_us();
    snprintf(p->publisher_id, sizeof(p->publisher_id), "slpcat-%.64s-%d-%08x", p->s->node,
             (int)getpid(), r);
}

static int setup(struct publisher *p)
{
    const struct slpcat_config *c = &p->s->cfg;
    if (open_input(p) == -1)
        return SLPCAT_EXIT_IO;
    p->readable = event_new(p->s->base, p->fd, EV_READ, on_pump, p);
    p->pump_ev = evtimer_new(p->s->base, on_pump, p);
    struct ts_annotator_options o = { .max_packets = (unsigned)c->max_packets };
    if (c->raw) {
        p->raw.cap = (size_t)c->max_packets * TS_PACKET;
        p->raw.buf = malloc(p->raw.cap);
    } else {
        p->ann = ts_annotator_new(&o);
    }
    if (p->readable == NULL || p->pump_ev == NULL || (c->raw ? !p->raw.buf : !p->ann))
        return SLPCAT_EXIT_IO;
    p->pacer.pcr_pid = -1;
    if (c->publisher_id[0] != '\0')
        snprintf(p->publisher_id, sizeof(p->publisher_id), "%s", c->publisher_id);
    else
        make_publisher_id(p);
    if (c->redis_url[0] != '\0') {
        p->lease = lease_start(p->s, c->stream, p->publisher_id, on_lease, p);
        return p->lease ? SLPCAT_EXIT_OK : SLPCAT_EXIT_LEASE;
    }
    if (c->publisher_id[0] == '\0') {
        slpcat_say("publish needs --publisher-id (the lease holder) or --redis-url "
                   "(to take the lease)");
        return SLPCAT_EXIT_USAGE;
    }
    return connect_relay(p) == 0 ? SLPCAT_EXIT_OK : SLPCAT_EXIT_USAGE;
}

struct publisher *publish_start(struct slpcat *s, int *exit_code)
{
    struct publisher *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        *exit_code = SLPCAT_EXIT_IO;
        return NULL;
    }
    p->s = s;
    p->fd = -1;
    *exit_code = setup(p);
    if (*exit_code != SLPCAT_EXIT_OK) {
        publish_free(p);
        return NULL;
    }
    return p;
}

void publish_stop(struct publisher *p)
{
    if (p->link == NULL) {                 /* still taking the lease */
        p->ending = true;
        p->end_code = SLPCAT_EXIT_OK;
        lease_release(p->lease);
        return;
    }
    if (link_open(p->link)) {
        if (p->ann != NULL)
            ts_annotator_flush(p->ann, on_annotated, p);
        else
            raw_flush(p);
    }
    finish(p, SLPCAT_EXIT_OK, "stopped");
}

void publish_free(struct publisher *p)
{
    if (p == NULL)
        return;
    link_free(p->link);
    lease_free(p->lease);
    if (p->readable != NULL)
        event_free(p->readable);
    if (p->pump_ev != NULL)
        event_free(p->pump_ev);
    ts_annotator_free(p->ann);
    free(p->raw.buf);
    if (p->fd > 0)
        close(p->fd);
    free(p);
}
