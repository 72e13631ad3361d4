/* The SRT listener and its thread: see srtsrv.h. The only file that includes
 * libsrt.
 *
 *   libsrt RcvQ thread   on_listen(): gate, reject code or passphrase
 *   our SRT thread       srt_epoll_wait() on the listener, the connections and
 *                        the command eventfd; accept, read into chunks, hand
 *                        them over every batch_ms; statistics
 *   the libevent loop    on_wake(): takes the whole queue at once, dispatches;
 *                        srtsrv_send(): appends to a connection's send queue
 *
 * Queue discipline: producers append under s->mu and write the loop's eventfd
 * only when s->signalled was clear, so a batch of any size costs one write and
 * one wakeup; the loop clears s->signalled before it takes the queue, so
 * nothing appended afterwards can be missed.
 *
 * The send queues go the other way with the same discipline: the loop
 * appends under s->mu, lists the connection in s->sendlist, and writes the
 * command eventfd only when s->send_wake was clear; the SRT thread clears it
 * when it takes the list, at its next flush (so a batch of any size costs one
 * write and at most one wakeup per batch_ms).
 */
#include "srtsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <srt/srt.h>

#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/net.h"

#define CHUNK_CAP (32 * 1024)       /* bytes of one hand-off chunk */
#define MSG_MAX 1500                /* one SRT message, at most (SRT_LIVE_MAX_PLSIZE 1456) */
#define READS_PER_TURN 256          /* messages read from one socket per turn (a batch) */
#define FREE_CHUNKS_MAX 256         /* chunks kept for reuse */
#define OUTSTANDING_MAX 2048        /* chunks the loop may be behind (64 MiB) */
#define REJECTS_MAX 1024            /* refusals waiting to be logged */
#define WAIT_MAX_MS 1000
#define SRTSRV_TS_PACKET 188
#define SPAN_FROM (64 * 1024)       /* libsrt's send buffer span is read beyond this */
#define TLPKTDROP_MIN_MS 1000       /* libsrt's sender drop: 1.25 x latency, at least this */
#define WATCH_MS 1000               /* the idle watchdog's period */
#define CLOSE_GRACE_MS 200          /* no close sooner after accept: see srtsrv_close() */
#define CTRL_ACK_BYTES 72           /* full ACK: SRT 16 + 28, UDP/IPv4 28 */
#define CTRL_NAK_BYTES 52           /* one loss range: SRT 16 + 8, UDP/IPv4 28 */

enum ev_kind { QE_ACCEPTED, QE_DATA, QE_STATS, QE_CLOSED, QE_REJECTED };

/* One item of the queue to the loop. Data events are chunks: CHUNK_CAP bytes
 * follow the struct. */
struct ev {
    struct ev *next;
    enum ev_kind kind;
    struct srtsrv_conn *conn;
    union {
        struct { size_t len; int64_t wall_us; int64_t first_ms; } data;
        struct srtsrv_stats stats;
        enum srtsrv_end end;
        struct {
            int code;
            const char *why;
            char detail[SRTSRV_DETAIL_MAX];
            char addr[SRTSRV_ADDR_MAX];
        } rej;
    };
    uint8_t bytes[];
};

struct srtsrv_conn {
    SRTSOCKET sock;
    void *user;                        /* the loop's */
    char addr[SRTSRV_ADDR_MAX];
    char streamid[513];
    /* the SRT thread's */
    struct ev *chunk;                  /* being filled */
    int64_t last_rx_ms;
    double rtt_mean, rtt_var;
    bool have_rtt;
    bool dirty;                        /* listed in s->dirty */
    int64_t accepted_ms;
    bool closing;                      /* listed in s->closing: closed once old enough */
    int64_t heard, heard_ms;           /* packets libsrt counted from the peer, and when */
    int64_t latency_us;                /* the receive latency agreed in the handshake */
    /* sending (a viewer) */
    struct ev *sq_head, *sq_tail;      /* queued by the loop, under s->mu */
    bool send_listed;                  /* in s->sendlist (s->mu) */
    bool gone;                         /* ended: the loop's sends are refused (s->mu) */
    atomic_size_t queued;              /* bytes in sq and out, not yet in libsrt */
    atomic_size_t in_srt;              /* libsrt's send buffer, bytes, last seen */
    atomic_int_fast64_t in_srt_ms;     /* and its age span (when over SPAN_FROM) */
    int64_t peer_latency_ms;           /* the viewer's receive latency */
    bool sender;                       /* the SRT thread's from here on */
    struct ev *out_head, *out_tail;    /* taken from sq, being sent */
    size_t out_off;                    /* bytes of out_head already sent */
    uint8_t *carry;                    /* a message being assembled (msg_size bytes) */
    size_t carry_len;
    int64_t carry_ms;                  /* when its first byte came */
    bool sending;                      /* listed in s->senders */
    bool blocked;                      /* libsrt's buffer was full: waiting for OUT */
    bool draining;                     /* closing once everything is acknowledged */
    int64_t drain_until_ms;
    int64_t acked_ms;                  /* when everything was, while draining (0: not yet) */
};

enum cmd_kind { CMD_CLOSE, CMD_CLOSE_DRAINED, CMD_SENDER, CMD_STOP_LISTEN, CMD_QUIT };

struct cmd {
    enum cmd_kind kind;
    SRTSOCKET sock;
    int ms;
};

/* SRTSOCKET -> connection, open addressing; the SRT thread's only. */
struct sockmap {
    SRTSOCKET *keys;                   /* SRT_INVALID_SOCK = empty */
    struct srtsrv_conn **vals;
    size_t cap, n;
};

struct srtsrv {
    struct srtsrv_options o;
    srtsrv_gate_fn gate;
    void *gate_arg;
    const struct srtsrv_handler *h;
    void *arg;
    int port;
    SRTSOCKET listener;
    int eid;
    int cmdfd;                         /* loop -> SRT thread */
    int wakefd;                        /* SRT thread, RcvQ -> loop */
    struct event *wake_ev;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;                /* guards everything below it */
    struct ev *head, *tail;            /* to the loop */
    struct ev *free_chunks;
    unsigned nfree;
    struct cmd *cmds;
    size_t ncmds, cmdcap;
    struct srtsrv_conn **sendlist;     /* connections the loop queued sends for */
    unsigned nsendlist;
    atomic_bool send_wake;             /* the SRT thread was told about sendlist */
    atomic_bool signalled;
    atomic_uint nconns;
    atomic_uint outstanding;           /* chunks handed over, not yet back */
    atomic_uint pending_rejects;
    atomic_uint_fast64_t handoffs, chunks, dropped_bytes, rejects_unlogged;
    atomic_uint_fast64_t sent_msgs, send_wakes;
    /* the SRT thread's */
    struct sockmap map;
    struct ev *out_head, *out_tail;    /* this turn's events */
    SRTSOCKET *ready, *wready;
    int msg_size;                      /* bytes per message sent: whole TS packets */
    bool send_due;                     /* s->sendlist is to be taken at the next flush */
    struct srtsrv_conn **senders;      /* connections with bytes to send */
    unsigned nsenders;
    struct srtsrv_conn **dirty;        /* connections holding unsent bytes */
    unsigned ndirty;
    struct srtsrv_conn **closing;      /* closes waiting for CLOSE_GRACE_MS */
    unsigned nclosing;
    bool listening;
};

/* ---- small helpers ------------------------------------------------------ */

static void format_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(out, outlen, "%s:%d", host, port);
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(out, outlen, "[%s]:%d", host, port);
    } else {
        snprintf(out, outlen, "?");
    }
}

static const char *srt_error_text(void)
{
    return srt_getlasterror_str();
}

/* ---- libsrt's log into ours --------------------------------------------- */

#define SRT_LOGS_PER_SECOND 20

/* libsrt logs from its own threads, the receive thread included, and some of
 * its lines come once per event (a drop, a refusal): at most
 * SRT_LOGS_PER_SECOND lines a second get through, so a burst cannot flood the
 * log or stall libsrt on a slow stderr; the rest are counted and summed up. */
static atomic_int_fast64_t log_window;
static atomic_uint log_lines, log_suppressed;

static bool srt_log_allowed(void)
{
    int64_t now = clock_mono_ms() / 1000;
    int64_t window = atomic_load(&log_window);
    if (now != window && atomic_compare_exchange_strong(&log_window, &window, now)) {
        unsigned dropped = atomic_exchange(&log_suppressed, 0);
        atomic_store(&log_lines, 0);
        if (dropped > 0)
            log_warn("srt: %u more lines from libsrt were not logged", dropped);
    }
    if (atomic_fetch_add(&log_lines, 1) < SRT_LOGS_PER_SECOND)
        return true;
    atomic_fetch_add(&log_suppressed, 1);
    return false;
}

static void on_srt_log(void *opaque, int level, const char *file, int line, const char *area,
                       const char *message)
{
    (void)opaque;
    (void)file;
    (void)line;
    /* libsrt's notices are the details of every handshake: debug for us; so
     * are the two warnings it writes for every refusal, which we log once */
    enum log_level l = level <= LOG_ERR ? LOGL_ERROR : level == LOG_WARNING ? LOGL_WARN
                                                                            : LOGL_DEBUG;
    if (message == NULL)
        return;
    if (l == LOGL_WARN && (strstr(message, "connection rejected due to") ||
                           strstr(message, "rsp(REJECT)")))
        l = LOGL_DEBUG;
    if (l < log_min_level || !srt_log_allowed())
        return;
    while (*message == ':' || *message == ' ')
        message++;
    size_t len = strlen(message);
    while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == ' '))
        len--;
    char text[600];
    log_write(l, "srt: %s: %s", area ? area : "-", log_escape(text, sizeof(text), message, len));
}

/* What libsrt should produce for our level (its debug level is a flood). */
static int srt_level(enum log_level l)
{
    switch (l) {
    case LOGL_DEBUG: return LOG_NOTICE;
    case LOGL_INFO:
    case LOGL_WARN: return LOG_WARNING;
    default: return LOG_ERR;
    }
}

/* ---- the socket map ----------------------------------------------------- */

static size_t map_slot(const struct sockmap *m, SRTSOCKET k)
{
    size_t i = ((uint32_t)k * 2654435761u) & (m->cap - 1);
    while (m->keys[i] != SRT_INVALID_SOCK && m->keys[i] != k)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int map_init(struct sockmap *m, unsigned max)
{
    m->cap = 16;
    while (m->cap < 2 * (size_t)max + 2)
        m->cap *= 2;
    m->keys = malloc(m->cap * sizeof(*m->keys));
    m->vals = calloc(m->cap, sizeof(*m->vals));
    if (m->keys == NULL || m->vals == NULL)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        m->keys[i] = SRT_INVALID_SOCK;
    return 0;
}

static struct srtsrv_conn *map_get(const struct sockmap *m, SRTSOCKET k)
{
    size_t i = map_slot(m, k);
    return m->keys[i] == k ? m->vals[i] : NULL;
}

static void map_put(struct sockmap *m, SRTSOCKET k, struct srtsrv_conn *c)
{
    size_t i = map_slot(m, k);
    m->n += m->keys[i] != k;
    m->keys[i] = k;
    m->vals[i] = c;
}

/* Linear probing deletion: shifts the following run back into the hole. */
static void map_del(struct sockmap *m, SRTSOCKET k)
{
    size_t mask = m->cap - 1, i = map_slot(m, k);
    if (m->keys[i] != k)
        return;
    m->n--;
    for (size_t j = (i + 1) & mask; m->keys[j] != SRT_INVALID_SOCK; j = (j + 1) & mask) {
        size_t home = ((uint32_t)m->keys[j] * 2654435761u) & mask;
        /* move j into i if its home is not in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = SRT_INVALID_SOCK;
    m->vals[i] = NULL;
}

/* ---- the queue to the loop ---------------------------------------------- */

static void wake_loop(struct srtsrv *s)
{
    if (!atomic_exchange(&s->signalled, true)) {
        uint64_t one = 1;
        ssize_t n = write(s->wakefd, &one, sizeof(one));
        (void)n;                    /* an eventfd counter cannot be full here */
    }
}

/* Appends the list <head>..<tail> to the loop's queue and wakes it. */
static void push_list(struct srtsrv *s, struct ev *head, struct ev *tail)
{
    if (head == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = head;
    else
        s->head = head;
    s->tail = tail;
    pthread_mutex_unlock(&s->mu);
    wake_loop(s);
}

/* SRT thread: queues <e> for the end of this turn. */
static void out(struct srtsrv *s, struct ev *e)
{
    e->next = NULL;
    if (s->out_tail)
        s->out_tail->next = e;
    else
        s->out_head = e;
    s->out_tail = e;
}

static void publish_turn(struct srtsrv *s)
{
    struct ev *head = s->out_head, *tail = s->out_tail;
    s->out_head = s->out_tail = NULL;
    push_list(s, head, tail);
}

static struct ev *ev_new(enum ev_kind kind, struct srtsrv_conn *c)
{
    struct ev *e = calloc(1, sizeof(*e));
    if (e != NULL) {
        e->kind = kind;
        e->conn = c;
    }
    return e;
}

/* A chunk, reused if one is free, cleared; s->mu held. NULL if out of memory. */
static struct ev *chunk_alloc_locked(struct srtsrv *s)
{
    struct ev *e = s->free_chunks;
    if (e != NULL) {
        s->free_chunks = e->next;
        s->nfree--;
    } else if ((e = malloc(sizeof(*e) + CHUNK_CAP)) == NULL) {
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    e->kind = QE_DATA;
    return e;
}

/* Gives the list of chunks <e> (linked by next) back; s->mu held. */
static void chunks_free_locked(struct srtsrv *s, struct ev *e)
{
    while (e != NULL) {
        struct ev *next = e->next;
        if (s->nfree < FREE_CHUNKS_MAX) {
            e->next = s->free_chunks;
            s->free_chunks = e;
            s->nfree++;
        } else {
            free(e);
        }
        e = next;
    }
}

/* SRT thread: a chunk to fill with what a connection sends us; NULL when the
 * loop is too far behind (the data is then dropped) or out of memory. */
static struct ev *chunk_get(struct srtsrv *s)
{
    if (atomic_load(&s->outstanding) >= OUTSTANDING_MAX)
        return NULL;
    pthread_mutex_lock(&s->mu);
    struct ev *e = chunk_alloc_locked(s);
    pthread_mutex_unlock(&s->mu);
    if (e != NULL)
        atomic_fetch_add(&s->outstanding, 1);
    return e;
}

/* Loop: gives received chunks back (a list linked by next). */
static void chunks_put(struct srtsrv *s, struct ev *list)
{
    unsigned n = 0;
    for (struct ev *e = list; e != NULL; e = e->next)
        n++;
    atomic_fetch_sub(&s->outstanding, n);
    pthread_mutex_lock(&s->mu);
    chunks_free_locked(s, list);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the listen callback (libsrt's receive thread) ---------------------- */

static void queue_reject(struct srtsrv *s, const struct srtsrv_verdict *v, const char *addr)
{
    struct ev *e = NULL;
    if (atomic_fetch_add(&s->pending_rejects, 1) < REJECTS_MAX)
        e = ev_new(QE_REJECTED, NULL);
    if (e == NULL) {
        atomic_fetch_sub(&s->pending_rejects, 1);
        atomic_fetch_add(&s->rejects_unlogged, 1);
        return;
    }
    e->rej.code = v->code;
    e->rej.why = v->why ? v->why : "";
    snprintf(e->rej.detail, sizeof(e->rej.detail), "%s", v->detail);
    snprintf(e->rej.addr, sizeof(e->rej.addr), "%s", addr);
    push_list(s, e, e);
}

static int on_listen(void *opaque, SRTSOCKET ns, int hsversion, const struct sockaddr *peer,
                     const char *streamid)
{
    struct srtsrv *s = opaque;
    char addr[SRTSRV_ADDR_MAX];
    struct srtsrv_verdict v = { 0 };
    format_addr(peer, addr, sizeof(addr));
    if (streamid == NULL)
        streamid = "";
    if (hsversion < 5) {
        v.code = 1400;            /* HSv4 callers cannot send a StreamID */
        v.why = "SRT handshake version 4 (no StreamID)";
    } else if (atomic_load(&s->nconns) >= s->o.max_conns) {
        v.code = 1402;
        v.why = "too many connections";
    } else {
        s->gate(streamid, addr, &v, s->gate_arg);
    }
    if (v.code == 0 && v.passphrase[0] != '\0' &&
        srt_setsockflag(ns, SRTO_PASSPHRASE, v.passphrase, (int)strlen(v.passphrase)) ==
            SRT_ERROR) {
        v.code = 1500;
        v.why = "cannot set the passphrase";
    }
    if (v.code == 0)
        return 0;
    srt_setrejectreason(ns, v.code);
    queue_reject(s, &v, addr);
    return -1;
}

/* ---- the SRT thread ----------------------------------------------------- */

static void unlist_sending(struct srtsrv *s, struct srtsrv_conn *c);

/* Throws away what was queued to send to <c>, and refuses more. */
static void forget_sends(struct srtsrv *s, struct srtsrv_conn *c)
{
    pthread_mutex_lock(&s->mu);
    c->gone = true;
    for (unsigned i = 0; c->send_listed && i < s->nsendlist; i++) {
        if (s->sendlist[i] == c) {
            s->sendlist[i] = s->sendlist[--s->nsendlist];
            c->send_listed = false;
        }
    }
    chunks_free_locked(s, c->sq_head);
    chunks_free_locked(s, c->out_head);
    c->sq_head = c->sq_tail = c->out_head = c->out_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    atomic_store(&c->queued, 0);
    atomic_store(&c->in_srt, 0);
    unlist_sending(s, c);
    free(c->carry);
    c->carry = NULL;
    c->carry_len = 0;
}

/* Ends connection <c>: forgets it, closes the socket, hands over what it
 * read and says closed. The loop frees <c>. */
static void end_conn(struct srtsrv *s, struct srtsrv_conn *c, enum srtsrv_end end)
{
    forget_sends(s, c);
    srt_epoll_remove_usock(s->eid, c->sock);
    srt_close(c->sock);
    map_del(&s->map, c->sock);
    atomic_fetch_sub(&s->nconns, 1);
    for (unsigned i = 0; c->dirty && i < s->ndirty; i++) {
        if (s->dirty[i] == c) {
            s->dirty[i] = s->dirty[--s->ndirty];
            c->dirty = false;
        }
    }
    for (unsigned i = 0; c->closing && i < s->nclosing; i++) {
        if (s->closing[i] == c) {
            s->closing[i] = s->closing[--s->nclosing];
            c->closing = false;
        }
    }
    if (c->chunk != NULL) {
        if (c->chunk->data.len > 0)
            out(s, c->chunk);
        else
            chunks_put(s, c->chunk);
        c->chunk = NULL;
    }
    struct ev *e = ev_new(QE_CLOSED, c);
    if (e == NULL) {                   /* cannot tell the loop: keep trying next turn */
        log_error("srt: out of memory closing a connection");
        abort();
    }
    e->end = end;
    out(s, e);
}

static void accept_one(struct srtsrv *s, SRTSOCKET ns, const struct sockaddr *sa)
{
    struct srtsrv_conn *c = calloc(1, sizeof(*c));
    struct ev *e = c ? ev_new(QE_ACCEPTED, c) : NULL;
    bool no = false;
    int events = SRT_EPOLL_IN | SRT_EPOLL_ERR;
    int len;
    if (e == NULL || s->map.n >= s->o.max_conns ||
        srt_setsockflag(ns, SRTO_RCVSYN, &no, sizeof(no)) == SRT_ERROR ||
        srt_epoll_add_usock(s->eid, ns, &events) == SRT_ERROR) {
        log_warn("srt: dropping a new connection: %s",
                 e == NULL ? "out of memory" : srt_error_text());
        srt_close(ns);
        free(c);
        free(e);
        return;
    }
    c->sock = ns;
    c->last_rx_ms = c->accepted_ms = c->heard_ms = clock_mono_ms();
    format_addr(sa, c->addr, sizeof(c->addr));
    len = (int)sizeof(c->streamid) - 1;
    if (srt_getsockflag(ns, SRTO_STREAMID, c->streamid, &len) == SRT_ERROR || len < 0)
        len = 0;
    c->streamid[len] = '\0';
    int latency = s->o.latency_ms;
    len = sizeof(latency);
    srt_getsockflag(ns, SRTO_RCVLATENCY, &latency, &len);
    c->latency_us = (int64_t)latency * 1000;
    latency = s->o.latency_ms;
    len = sizeof(latency);
    srt_getsockflag(ns, SRTO_PEERLATENCY, &latency, &len);
    c->peer_latency_ms = latency;
    map_put(&s->map, ns, c);
    atomic_fetch_add(&s->nconns, 1);
    out(s, e);
}

/* One connection per readiness: the epoll is level-triggered, so another
 * pending one is reported on the next turn (and libsrt logs an error for an
 * accept that finds nothing). */
static void accept_next(struct srtsrv *s)
{
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    SRTSOCKET ns = srt_accept(s->listener, (struct sockaddr *)&sa, &len);
    if (ns == SRT_INVALID_SOCK) {
        if (srt_getlasterror(NULL) != SRT_EASYNCRCV)
            log_warn("srt: accept: %s", srt_error_text());
        return;
    }
    accept_one(s, ns, (struct sockaddr *)&sa);
}

static void append_read(struct srtsrv *s, struct srtsrv_conn *c, size_t n);

/* Reads what <c> has, up to READS_PER_TURN messages. */
static void read_conn(struct srtsrv *s, struct srtsrv_conn *c)
{
    static uint8_t scratch[MSG_MAX];   /* dropping: the SRT thread's only */
    int64_t now = clock_mono_ms();
    for (int i = 0; i < READS_PER_TURN; i++) {
        if (c->chunk != NULL && CHUNK_CAP - c->chunk->data.len < (size_t)MSG_MAX) {
            out(s, c->chunk);                     /* full: goes at once */
            c->chunk = NULL;
        }
        if (c->chunk == NULL && !c->sender && (c->chunk = chunk_get(s)) != NULL)
            c->chunk->conn = c;
        uint8_t *dst = c->chunk ? c->chunk->bytes + c->chunk->data.len : scratch;
        int cap = c->chunk ? (int)(CHUNK_CAP - c->chunk->data.len) : (int)sizeof(scratch);
        int n = srt_recvmsg(c->sock, (char *)dst, cap);
        if (n == SRT_ERROR) {
            if (srt_getlasterror(NULL) == SRT_EASYNCRCV)
                return;
            /* a peer that was sending until now closed on purpose; one that
             * went silent for most of the idle timeout was lost; a viewer
             * sends nothing: its close is its end */
            end_conn(s, c, !c->sender && now - c->last_rx_ms >= s->o.peer_idle_ms / 2
                               ? SRTSRV_LOST : SRTSRV_ENDED);
            return;
        }
        if (n <= 0)
            return;
        c->last_rx_ms = now;
        if (c->chunk == NULL) {
            if (!c->sender)                       /* a viewer's bytes mean nothing */
                atomic_fetch_add(&s->dropped_bytes, (uint64_t)n);
        } else {
            append_read(s, c, (size_t)n);
        }
        /* libsrt reports "nothing more" by throwing (and catching) a C++
         * exception inside srt_recvmsg: asking first is far cheaper */
        int events = 0, elen = sizeof(events);
        if (srt_getsockflag(c->sock, SRTO_EVENT, &events, &elen) == SRT_ERROR ||
            !(events & (SRT_EPOLL_IN | SRT_EPOLL_ERR)))
            return;
    }
}

/* Counts <n> bytes just read into <c>'s chunk. */
static void append_read(struct srtsrv *s, struct srtsrv_conn *c, size_t n)
{
    if (c->chunk->data.len == 0) {
        /* libsrt hands each packet over its latency after it arrived: the
         * frame's wall clock is when the packet arrived (SLP.md 9), within
         * a batch (the thread reads once a batch) */
        c->chunk->data.wall_us = clock_wall_us() - c->latency_us;
        c->chunk->data.first_ms = c->last_rx_ms;
        if (!c->dirty) {
            c->dirty = true;
            s->dirty[s->ndirty++] = c;
        }
    }
    c->chunk->data.len += n;
}

/* Every batch_ms: whatever each connection read goes to the loop. */
static void flush_chunks(struct srtsrv *s)
{
    for (unsigned i = 0; i < s->ndirty; i++) {
        struct srtsrv_conn *c = s->dirty[i];
        c->dirty = false;
        if (c->chunk != NULL && c->chunk->data.len > 0) {
            out(s, c->chunk);
            c->chunk = NULL;
        }
    }
    s->ndirty = 0;
}

/* ---- sending (the SRT thread) ------------------------------------------- */

static void mark_sending(struct srtsrv *s, struct srtsrv_conn *c)
{
    if (!c->sending) {
        c->sending = true;
        s->senders[s->nsenders++] = c;
    }
}

static void unlist_sending(struct srtsrv *s, struct srtsrv_conn *c)
{
    for (unsigned i = 0; c->sending && i < s->nsenders; i++) {
        if (s->senders[i] == c) {
            s->senders[i] = s->senders[--s->nsenders];
            c->sending = false;
        }
    }
}

/* Reads what libsrt holds unacknowledged for <c>: its bytes, and once they
 * are more than a little, its age span (srt_bstats). Returns the bytes. */
static size_t note_backlog(struct srtsrv_conn *c)
{
    size_t bytes = 0;
    SRT_TRACEBSTATS b;
    if (srt_getsndbuffer(c->sock, NULL, &bytes) == SRT_ERROR)
        return 0;
    atomic_store(&c->in_srt, bytes);
    int64_t ms = 0;
    if (bytes > SPAN_FROM && srt_bstats(c->sock, &b, 0) != SRT_ERROR)
        ms = b.msSndBuf;
    atomic_store(&c->in_srt_ms, ms);
    return bytes;
}

/* Hands one message to libsrt. Returns 1 when it took it, 0 when its send
 * buffer is full, -1 when the connection is broken (its end follows as an
 * epoll error). */
static int send_msg(struct srtsrv *s, struct srtsrv_conn *c, const uint8_t *buf, size_t len)
{
    if (srt_sendmsg2(c->sock, (const char *)buf, (int)len, NULL) != SRT_ERROR) {
        atomic_fetch_sub(&c->queued, len);
        atomic_fetch_add(&s->sent_msgs, 1);
        return 1;
    }
    return srt_getlasterror(NULL) == SRT_EASYNCSND ? 0 : -1;
}

static void watch_out(struct srtsrv *s, struct srtsrv_conn *c, bool on)
{
    int events = SRT_EPOLL_IN | SRT_EPOLL_ERR | (on ? SRT_EPOLL_OUT : 0);
    c->blocked = on;
    srt_epoll_update_usock(s->eid, c->sock, &events);
}

/* Sends what <c> has: whole messages straight from its chunks; an odd end is
 * kept in the carry to be completed by what comes next, and goes alone once
 * it has waited a batch. Stops when libsrt's send buffer is full, and waits
 * for SRT_EPOLL_OUT. */
static void send_conn(struct srtsrv *s, struct srtsrv_conn *c, int64_t now)
{
    size_t msg = (size_t)s->msg_size;
    struct ev *done = NULL;
    int rc = 1;
    if (c->carry == NULL && (c->carry = malloc(msg)) == NULL)
        return;
    while (rc == 1) {
        struct ev *e = c->out_head;
        if (e != NULL && c->out_off == e->data.len) {      /* used up */
            c->out_head = e->next;
            if (c->out_head == NULL)
                c->out_tail = NULL;
            e->next = done;
            done = e;
            c->out_off = 0;
            continue;
        }
        size_t avail = e != NULL ? e->data.len - c->out_off : 0;
        if (c->carry_len > 0 && c->carry_len < msg && avail > 0) {
            size_t take = msg - c->carry_len < avail ? msg - c->carry_len : avail;
            memcpy(c->carry + c->carry_len, e->bytes + c->out_off, take);
            c->carry_len += take;
            c->out_off += take;
            continue;
        }
        if (c->carry_len > 0) {
            if (c->carry_len < msg && now - c->carry_ms < s->o.batch_ms)
                break;                                     /* the rest may come */
            if ((rc = send_msg(s, c, c->carry, c->carry_len)) == 1)
                c->carry_len = 0;
            continue;
        }
        if (e == NULL)
            break;
        if (avail < msg) {
            memcpy(c->carry, e->bytes + c->out_off, avail);
            c->carry_len = avail;
            c->carry_ms = now;
            c->out_off += avail;
            continue;
        }
        if ((rc = send_msg(s, c, e->bytes + c->out_off, msg)) == 1)
            c->out_off += msg;
    }
    if (done != NULL) {
        pthread_mutex_lock(&s->mu);
        chunks_free_locked(s, done);
        pthread_mutex_unlock(&s->mu);
    }
    if (rc == 0)
        watch_out(s, c, true);
    note_backlog(c);
    if (c->out_head == NULL && c->carry_len == 0)
        unlist_sending(s, c);
}

/* Every batch_ms: takes what the loop queued since, then sends what can go. */
static void flush_sends(struct srtsrv *s, int64_t now)
{
    if (atomic_load(&s->send_wake)) {
        atomic_store(&s->send_wake, false);      /* before taking: nothing is missed */
        atomic_fetch_add(&s->send_wakes, 1);
        pthread_mutex_lock(&s->mu);
        for (unsigned i = 0; i < s->nsendlist; i++) {
            struct srtsrv_conn *c = s->sendlist[i];
            c->send_listed = false;
            if (c->sq_head == NULL)
                continue;
            if (c->out_tail != NULL)
                c->out_tail->next = c->sq_head;
            else
                c->out_head = c->sq_head;
            c->out_tail = c->sq_tail;
            c->sq_head = c->sq_tail = NULL;
            mark_sending(s, c);
        }
        s->nsendlist = 0;
        pthread_mutex_unlock(&s->mu);
    }
    for (unsigned i = s->nsenders; i-- > 0;) {   /* backwards: send_conn may unlist */
        struct srtsrv_conn *c = s->senders[i];
        if (!c->blocked)
            send_conn(s, c, now);
    }
}

/* libsrt's send buffer has room again for <c>. */
static void on_writable(struct srtsrv *s, struct srtsrv_conn *c)
{
    watch_out(s, c, false);
    if (c->sending)
        send_conn(s, c, clock_mono_ms());
}

/* A drained close is due: nothing queued here, nothing unacknowledged in
 * libsrt, and then the viewer's latency passed, so that what it holds for
 * playing out is played before our shutdown breaks its connection (or the
 * time is up). */
static bool drained(struct srtsrv_conn *c, int64_t now)
{
    size_t bytes = 0;
    if (now >= c->drain_until_ms)
        return true;
    if (atomic_load(&c->queued) > 0 || srt_getsndbuffer(c->sock, NULL, &bytes) == SRT_ERROR ||
        bytes > 0)
        return false;
    if (c->acked_ms == 0)
        c->acked_ms = now;
    return now - c->acked_ms >= c->peer_latency_ms + CLOSE_GRACE_MS / 4;
}

static void fill_stats(struct srtsrv_conn *c, const SRT_TRACEBSTATS *b, struct srtsrv_stats *st)
{
    st->data_pkts_sent = b->pktSentTotal;
    st->data_pkts_recv = b->pktRecvTotal;
    st->data_pkts_lost = (int64_t)b->pktRcvLossTotal + b->pktSndLossTotal;
    st->data_pkts_dropped = (int64_t)b->pktRcvDropTotal + b->pktSndDropTotal;
    st->data_bytes_sent = (int64_t)b->byteSentTotal;
    st->data_bytes_recv = (int64_t)b->byteRecvTotal;
    int64_t per_sent = b->pktSentTotal > 0 ? (int64_t)b->byteSentTotal / b->pktSentTotal : 0;
    st->data_bytes_lost = (int64_t)b->byteRcvLossTotal + (int64_t)b->pktSndLossTotal * per_sent;
    st->ctrl_pkts_sent = (int64_t)b->pktSentACKTotal + b->pktSentNAKTotal;
    st->ctrl_pkts_recv = (int64_t)b->pktRecvACKTotal + b->pktRecvNAKTotal;
    st->ctrl_bytes_sent = (int64_t)b->pktSentACKTotal * CTRL_ACK_BYTES +
                          (int64_t)b->pktSentNAKTotal * CTRL_NAK_BYTES;
    st->ctrl_bytes_recv = (int64_t)b->pktRecvACKTotal * CTRL_ACK_BYTES +
                          (int64_t)b->pktRecvNAKTotal * CTRL_NAK_BYTES;
    st->rcv_buf_ms = b->msRcvBuf;
    /* libsrt 1.5 gives the smoothed RTT but not its variance: estimate it
     * from our samples as RFC 6298 does (rttvar = 3/4 rttvar + 1/4 |dev|) */
    double rtt = b->msRTT;
    if (!c->have_rtt) {
        c->rtt_mean = rtt;
        c->rtt_var = rtt / 2;
        c->have_rtt = true;
    } else {
        double dev = rtt > c->rtt_mean ? rtt - c->rtt_mean : c->rtt_mean - rtt;
        c->rtt_var = 0.75 * c->rtt_var + 0.25 * dev;
        c->rtt_mean = 0.875 * c->rtt_mean + 0.125 * rtt;
    }
    st->rtt_ms = rtt;
    st->rtt_var_ms = c->rtt_var;
}

/* Every WATCH_MS: libsrt's counters for each connection. A connection from
 * which libsrt has counted nothing (no data, no ACK, no NAK) for the idle
 * timeout is ended as lost, whatever libsrt says of it: under load, libsrt
 * 1.5.1 was seen keeping a connection "connected" for good after its caller
 * had gone, holding undeliverable data behind a gap. A viewer is silent only
 * while it leaves what we sent unacknowledged. Every stats_ms the counters
 * also go to the loop. */
static void watch(struct srtsrv *s, bool report)
{
    int64_t now = clock_mono_ms();
    for (size_t i = 0; i < s->map.cap; i++) {
        struct srtsrv_conn *c = s->map.vals[i];
        SRT_TRACEBSTATS b;
        if (c == NULL || srt_bstats(c->sock, &b, 0) == SRT_ERROR)
            continue;
        int64_t heard = b.pktRecvTotal + b.pktRecvACKTotal + b.pktRecvNAKTotal;
        size_t unacked = c->sender ? note_backlog(c) : 0;
        if (heard != c->heard || (c->sender && unacked == 0)) {
            /* a viewer with nothing to acknowledge sends only keepalives,
             * which libsrt does not count: its own idle timeout judges it */
            c->heard = heard;
            c->heard_ms = now;
        } else if (now - c->heard_ms >= s->o.peer_idle_ms && !c->closing) {
            log_info("srt: %s silent for %lld ms: lost", c->addr, (long long)(now - c->heard_ms));
            end_conn(s, c, SRTSRV_LOST);
            continue;
        }
        struct ev *e;
        if (!report || (e = ev_new(QE_STATS, c)) == NULL)
            continue;
        fill_stats(c, &b, &e->stats);
        out(s, e);
    }
}

static void stop_listening(struct srtsrv *s)
{
    if (!s->listening)
        return;
    s->listening = false;
    srt_epoll_remove_usock(s->eid, s->listener);
    srt_close(s->listener);
    s->listener = SRT_INVALID_SOCK;
    log_info("srt: listener closed");
}

/* A caller learns that we closed from our shutdown packet. One that comes
 * right after our handshake answer can reach the caller while it is still
 * switching from connecting to connected, and libsrt then drops it: the
 * caller would notice only at its idle timeout, seconds later. So a
 * connection is closed no sooner than CLOSE_GRACE_MS after it was accepted;
 * meanwhile the loop ignores what it sends. */
static void close_when_old_enough(struct srtsrv *s, struct srtsrv_conn *c)
{
    c->draining = false;                 /* a plain close overrides a drained one */
    if (clock_mono_ms() - c->accepted_ms >= CLOSE_GRACE_MS) {
        end_conn(s, c, SRTSRV_CLOSED);
    } else if (!c->closing) {
        c->closing = true;
        s->closing[s->nclosing++] = c;
    }
}

/* A viewer whose stream ended: closed once what it was sent is acknowledged
 * (libsrt drops unsent data at close in live mode), within <ms>. */
static void close_drained(struct srtsrv *s, struct srtsrv_conn *c, int ms)
{
    if (c->closing)
        return;                          /* a close is already on its way */
    c->draining = true;
    c->drain_until_ms = clock_mono_ms() + ms;
    c->closing = true;
    s->closing[s->nclosing++] = c;
}

static void close_old_enough(struct srtsrv *s)
{
    int64_t now = clock_mono_ms();
    for (unsigned i = 0; i < s->nclosing;) {
        struct srtsrv_conn *c = s->closing[i];
        if (now - c->accepted_ms >= CLOSE_GRACE_MS && (!c->draining || drained(c, now)))
            end_conn(s, c, SRTSRV_CLOSED);     /* takes it off the list */
        else
            i++;
    }
}

/* Runs the loop's commands. Returns false once told to quit. */
static bool run_commands(struct srtsrv *s)
{
    uint64_t count;
    ssize_t n = read(s->cmdfd, &count, sizeof(count));
    (void)n;
    pthread_mutex_lock(&s->mu);
    struct cmd *cmds = s->cmds;
    size_t ncmds = s->ncmds;
    s->cmds = NULL;
    s->ncmds = s->cmdcap = 0;
    pthread_mutex_unlock(&s->mu);
    bool go_on = true;
    for (size_t i = 0; i < ncmds; i++) {
        struct srtsrv_conn *c;
        switch (cmds[i].kind) {
        case CMD_CLOSE:
            if ((c = map_get(&s->map, cmds[i].sock)) != NULL)
                close_when_old_enough(s, c);
            break;
        case CMD_CLOSE_DRAINED:
            if ((c = map_get(&s->map, cmds[i].sock)) != NULL)
                close_drained(s, c, cmds[i].ms);
            break;
        case CMD_SENDER:
            if ((c = map_get(&s->map, cmds[i].sock)) != NULL)
                c->sender = true;
            break;
        case CMD_STOP_LISTEN:
            stop_listening(s);
            break;
        case CMD_QUIT:
            go_on = false;
            break;
        }
    }
    free(cmds);
    return go_on;
}

static void *srt_thread(void *arg)
{
    struct srtsrv *s = arg;
    int64_t now = clock_mono_ms();
    int64_t next_stats = now + s->o.stats_ms, next_flush = now + s->o.batch_ms;
    int64_t next_watch = now + WATCH_MS;
    int cap = (int)s->o.max_conns + 2;
    bool go_on = true;
    while (go_on) {
        now = clock_mono_ms();
        /* with connections open, the thread runs once a batch, not once a
         * packet: libsrt's epoll wakes its waiter for every packet that
         * becomes readable, and at 25 000 packets a second those wakeups
         * were most of this thread's cost. It sleeps on the command eventfd
         * alone (the loop's commands still wake it at once), then takes
         * whatever libsrt has ready. Idle, libsrt's epoll wakes it for a
         * handshake. */
        bool paced = s->map.n > 0;
        bool flush = paced || s->ndirty > 0 || s->nsenders > 0 || atomic_load(&s->send_wake);
        int64_t until = next_stats < next_watch ? next_stats : next_watch;
        if (flush && next_flush < until)
            until = next_flush;
        if (s->nclosing > 0 && now + CLOSE_GRACE_MS / 4 < until)
            until = now + CLOSE_GRACE_MS / 4;
        int64_t timeout = until > now ? until - now : 0;
        if (timeout > WAIT_MAX_MS)
            timeout = WAIT_MAX_MS;
        if (paced && timeout > 0) {
            struct pollfd pfd = { .fd = s->cmdfd, .events = POLLIN };
            poll(&pfd, 1, (int)timeout);
            timeout = 0;
        }
        int rn = cap, wn = cap, ln = 1;
        SYSSOCKET lr[1];
        if (srt_epoll_wait(s->eid, s->ready, &rn, s->wready, &wn, timeout, lr, &ln, NULL,
                           NULL) == SRT_ERROR) {
            if (srt_getlasterror(NULL) != SRT_ETIMEOUT) {
                log_warn("srt: epoll: %s", srt_error_text());
                usleep(10000);             /* never spin on a persistent error */
            }
            rn = wn = ln = 0;
        }
        if (ln > 0)
            go_on = run_commands(s);
        for (int i = 0; i < rn && i < cap && go_on; i++) {
            struct srtsrv_conn *c;
            if (s->listening && s->ready[i] == s->listener)
                accept_next(s);
            else if ((c = map_get(&s->map, s->ready[i])) != NULL)
                read_conn(s, c);
        }
        for (int i = 0; i < wn && i < cap && go_on; i++) {
            struct srtsrv_conn *c = map_get(&s->map, s->wready[i]);
            if (c != NULL && c->blocked)
                on_writable(s, c);
        }
        if (s->nclosing > 0)
            close_old_enough(s);
        now = clock_mono_ms();
        if (now >= next_flush) {
            flush_chunks(s);
            flush_sends(s, now);
            next_flush = now + s->o.batch_ms;
        }
        if (now >= next_stats || now >= next_watch) {
            bool report = now >= next_stats;
            watch(s, report);
            next_watch = now + WATCH_MS;
            if (report)
                next_stats = now + s->o.stats_ms;
        }
        publish_turn(s);
    }
    return NULL;
}

/* ---- the loop side ------------------------------------------------------ */

static void dispatch(struct srtsrv *s, struct ev *e)
{
    struct srtsrv_conn *c = e->conn;
    switch (e->kind) {
    case QE_ACCEPTED: {
        struct srtsrv_peer peer = { c->streamid, c->addr };
        c->user = s->h->accepted(c, &peer, s->arg);
        if (c->user == NULL)
            srtsrv_close(s, c);
        return;
    }
    case QE_DATA:
        atomic_fetch_add(&s->chunks, 1);
        if (c->user != NULL)
            s->h->data(c->user, e->bytes, e->data.len, e->data.wall_us);
        return;
    case QE_STATS:
        if (c->user != NULL)
            s->h->stats(c->user, &e->stats);
        return;
    case QE_CLOSED:
        if (c->user != NULL)
            s->h->closed(c->user, e->end);
        free(c);
        return;
    case QE_REJECTED: {
        struct srtsrv_reject r = { e->rej.code, e->rej.why, e->rej.detail, e->rej.addr };
        atomic_fetch_sub(&s->pending_rejects, 1);
        s->h->rejected(&r, s->arg);
        return;
    }
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct srtsrv *s = arg;
    uint64_t count;
    ssize_t n = read(fd, &count, sizeof(count));
    (void)n;
    atomic_store(&s->signalled, false);
    pthread_mutex_lock(&s->mu);
    struct ev *e = s->head;
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->handoffs, 1);
    struct ev *used = NULL;
    while (e != NULL) {
        struct ev *next = e->next;
        dispatch(s, e);
        if (e->kind == QE_DATA) {
            e->next = used;
            used = e;
        } else {
            free(e);
        }
        e = next;
    }
    chunks_put(s, used);
}

static void command(struct srtsrv *s, enum cmd_kind kind, SRTSOCKET sock, int ms)
{
    pthread_mutex_lock(&s->mu);
    if (s->ncmds == s->cmdcap) {
        size_t cap = s->cmdcap ? 2 * s->cmdcap : 16;
        struct cmd *c = realloc(s->cmds, cap * sizeof(*c));
        if (c == NULL) {
            pthread_mutex_unlock(&s->mu);
            log_error("srt: out of memory queueing a command");
            return;
        }
        s->cmds = c;
        s->cmdcap = cap;
    }
    s->cmds[s->ncmds++] = (struct cmd){ kind, sock, ms };
    pthread_mutex_unlock(&s->mu);
    uint64_t one = 1;
    ssize_t n = write(s->cmdfd, &one, sizeof(one));
    (void)n;
}

void srtsrv_close(struct srtsrv *s, struct srtsrv_conn *c)
{
    command(s, CMD_CLOSE, c->sock, 0);
}

void srtsrv_close_drained(struct srtsrv *s, struct srtsrv_conn *c, int within_ms)
{
    command(s, CMD_CLOSE_DRAINED, c->sock, within_ms);
}

void srtsrv_set_sender(struct srtsrv *s, struct srtsrv_conn *c)
{
    command(s, CMD_SENDER, c->sock, 0);
}

void srtsrv_stop_accepting(struct srtsrv *s)
{
    command(s, CMD_STOP_LISTEN, SRT_INVALID_SOCK, 0);
}

int srtsrv_send(struct srtsrv *s, struct srtsrv_conn *c, const uint8_t *ts, size_t len)
{
    size_t left = len;
    pthread_mutex_lock(&s->mu);
    if (c->gone) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    while (left > 0) {
        struct ev *e = c->sq_tail;
        if (e == NULL || e->data.len == CHUNK_CAP) {
            if ((e = chunk_alloc_locked(s)) == NULL)
                break;
            e->conn = c;
            if (c->sq_tail != NULL)
                c->sq_tail->next = e;
            else
                c->sq_head = e;
            c->sq_tail = e;
        }
        size_t n = CHUNK_CAP - e->data.len < left ? CHUNK_CAP - e->data.len : left;
        memcpy(e->bytes + e->data.len, ts, n);
        e->data.len += n;
        ts += n;
        left -= n;
    }
    bool queued = left < len;
    if (queued && !c->send_listed) {
        c->send_listed = true;
        s->sendlist[s->nsendlist++] = c;
    }
    atomic_fetch_add(&c->queued, len - left);      /* under the lock: before any send */
    pthread_mutex_unlock(&s->mu);
    if (queued && !atomic_exchange(&s->send_wake, true)) {
        uint64_t one = 1;
        ssize_t n = write(s->cmdfd, &one, sizeof(one));
        (void)n;
    }
    return left == 0 ? 0 : -1;
}

void srtsrv_backlog(const struct srtsrv_conn *c, size_t *bytes, int64_t *ms, int64_t *drop_ms)
{
    struct srtsrv_conn *m = (struct srtsrv_conn *)c;
    *bytes = atomic_load(&m->queued) + atomic_load(&m->in_srt);
    *ms = atomic_load(&m->in_srt_ms);
    *drop_ms = m->peer_latency_ms * 5 / 4;
    if (*drop_ms < TLPKTDROP_MIN_MS)
        *drop_ms = TLPKTDROP_MIN_MS;
}

unsigned srtsrv_connections(const struct srtsrv *s)
{
    return atomic_load(&((struct srtsrv *)s)->nconns);
}

int srtsrv_port(const struct srtsrv *s)
{
    return s->port;
}

void srtsrv_counters(const struct srtsrv *s, struct srtsrv_counters *o)
{
    struct srtsrv *m = (struct srtsrv *)s;
    o->handoffs = atomic_load(&m->handoffs);
    o->chunks = atomic_load(&m->chunks);
    o->dropped_bytes = atomic_load(&m->dropped_bytes);
    o->rejects_unlogged = atomic_load(&m->rejects_unlogged);
    o->sent_msgs = atomic_load(&m->sent_msgs);
    o->send_wakes = atomic_load(&m->send_wakes);
}

/* ---- setup -------------------------------------------------------------- */

static int fail(char **err, const char *what, const char *detail)
{
    if (asprintf(err, "srt: %s: %s", what, detail) == -1)
        *err = NULL;
    return -1;
}

static int set_flag(SRTSOCKET sock, SRT_SOCKOPT opt, int value, const char *name, char **err)
{
    if (srt_setsockflag(sock, opt, &value, sizeof(value)) == SRT_ERROR)
        return fail(err, name, srt_error_text());
    return 0;
}

/* The listener's options; accepted sockets inherit them. */
static int configure(struct srtsrv *s, char **err)
{
    const struct srtsrv_options *o = &s->o;
    bool no = false;
    int live = SRTT_LIVE;
    if (srt_setsockflag(s->listener, SRTO_TRANSTYPE, &live, sizeof(live)) == SRT_ERROR ||
        srt_setsockflag(s->listener, SRTO_RCVSYN, &no, sizeof(no)) == SRT_ERROR ||
        srt_setsockflag(s->listener, SRTO_SNDSYN, &no, sizeof(no)) == SRT_ERROR)
        return fail(err, "socket options", srt_error_text());
    if (set_flag(s->listener, SRTO_LATENCY, o->latency_ms, "latency", err) == -1 ||
        set_flag(s->listener, SRTO_PAYLOADSIZE, o->payload_size, "payload size", err) == -1 ||
        set_flag(s->listener, SRTO_PEERIDLETIMEO, o->peer_idle_ms, "peer idle timeout", err) == -1)
        return -1;
    if (o->rcvbuf > 0 &&
        set_flag(s->listener, SRTO_RCVBUF, (int)o->rcvbuf, "receive buffer", err) == -1)
        return -1;
    if (o->udp_rcvbuf > 0 &&
        set_flag(s->listener, SRTO_UDP_RCVBUF, (int)o->udp_rcvbuf, "UDP receive buffer", err) == -1)
        return -1;
    return 0;
}

static int bind_listener(struct srtsrv *s, char **err)
{
    char host[256];
    int port;
    if (net_split_hostport(s->o.listen, host, sizeof(host), &port) == -1)
        return fail(err, s->o.listen, "not host:port");
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, service, &hints, &ai);
    if (rc != 0)
        return fail(err, s->o.listen, gai_strerror(rc));
    s->listener = srt_create_socket();
    int v6only = 0;
    rc = s->listener == SRT_INVALID_SOCK ? -1 : configure(s, err);
    if (rc == 0 && ai->ai_family == AF_INET6)
        srt_setsockflag(s->listener, SRTO_IPV6ONLY, &v6only, sizeof(v6only));
    if (rc == 0 && srt_bind(s->listener, ai->ai_addr, (int)ai->ai_addrlen) == SRT_ERROR)
        rc = fail(err, s->o.listen, srt_error_text());
    freeaddrinfo(ai);
    if (rc == -1)
        return *err ? -1 : fail(err, "socket", srt_error_text());
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    if (srt_getsockname(s->listener, (struct sockaddr *)&sa, &len) == 0)
        s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
    if (srt_listen_callback(s->listener, on_listen, s) == SRT_ERROR ||
        srt_listen(s->listener, s->o.backlog) == SRT_ERROR)
        return fail(err, "listen", srt_error_text());
    s->listening = true;
    return 0;
}

static int setup_polling(struct srtsrv *s, struct event_base *base, char **err)
{
    int in = SRT_EPOLL_IN | SRT_EPOLL_ERR;
    s->cmdfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->cmdfd == -1 || s->wakefd == -1)
        return fail(err, "eventfd", strerror(errno));
    s->wake_ev = event_new(base, s->wakefd, EV_READ | EV_PERSIST, on_wake, s);
    if (s->wake_ev == NULL || event_add(s->wake_ev, NULL) == -1)
        return fail(err, "event", "cannot watch the eventfd");
    s->eid = srt_epoll_create();
    if (s->eid == SRT_ERROR)
        return fail(err, "epoll", srt_error_text());
    srt_epoll_set(s->eid, SRT_EPOLL_ENABLE_EMPTY);
    if (srt_epoll_add_usock(s->eid, s->listener, &in) == SRT_ERROR ||
        srt_epoll_add_ssock(s->eid, s->cmdfd, &in) == SRT_ERROR)
        return fail(err, "epoll", srt_error_text());
    s->ready = calloc(s->o.max_conns + 2, sizeof(*s->ready));
    s->wready = calloc(s->o.max_conns + 2, sizeof(*s->wready));
    s->dirty = calloc(s->o.max_conns + 1, sizeof(*s->dirty));
    s->closing = calloc(s->o.max_conns + 1, sizeof(*s->closing));
    s->senders = calloc(s->o.max_conns + 1, sizeof(*s->senders));
    s->sendlist = calloc(s->o.max_conns + 1, sizeof(*s->sendlist));
    s->msg_size = s->o.payload_size / SRTSRV_TS_PACKET * SRTSRV_TS_PACKET;
    if (s->ready == NULL || s->wready == NULL || s->dirty == NULL || s->closing == NULL ||
        s->senders == NULL || s->sendlist == NULL ||
        map_init(&s->map, s->o.max_conns) == -1)
        return fail(err, "setup", "out of memory");
    return 0;
}

struct srtsrv *srtsrv_new(struct event_base *base, const struct srtsrv_options *o,
                          srtsrv_gate_fn gate, void *gate_arg,
                          const struct srtsrv_handler *h, void *arg, char **err)
{
    *err = NULL;
    struct srtsrv *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->o = *o;
    s->gate = gate;
    s->gate_arg = gate_arg;
    s->h = h;
    s->arg = arg;
    s->listener = SRT_INVALID_SOCK;
    s->eid = SRT_ERROR;
    s->cmdfd = s->wakefd = -1;
    pthread_mutex_init(&s->mu, NULL);
    if (srt_startup() == -1) {
        fail(err, "startup", srt_error_text());
        free(s);
        return NULL;
    }
    srt_setlogflags(SRT_LOGF_DISABLE_TIME | SRT_LOGF_DISABLE_THREADNAME |
                    SRT_LOGF_DISABLE_SEVERITY | SRT_LOGF_DISABLE_EOL);
    srt_setloghandler(NULL, on_srt_log);
    srt_setloglevel(srt_level(log_min_level));
    if (bind_listener(s, err) == -1 || setup_polling(s, base, err) == -1 ||
        pthread_create(&s->thread, NULL, srt_thread, s) != 0) {
        if (*err == NULL)
            fail(err, "thread", strerror(errno));
        srtsrv_free(s);
        return NULL;
    }
    s->thread_started = true;
    return s;
}

static void free_list(struct ev *e)
{
    while (e != NULL) {
        struct ev *next = e->next;
        if (e->kind == QE_CLOSED)
            free(e->conn);           /* forgotten by the thread, not yet by the loop */
        free(e);
        e = next;
    }
}

void srtsrv_free(struct srtsrv *s)
{
    if (s == NULL)
        return;
    if (s->thread_started) {
        command(s, CMD_QUIT, SRT_INVALID_SOCK, 0);
        pthread_join(s->thread, NULL);
    }
    for (size_t i = 0; s->map.vals && i < s->map.cap; i++) {
        struct srtsrv_conn *c = s->map.vals[i];
        if (c != NULL) {
            srt_close(c->sock);
            free(c->chunk);
            free_list(c->sq_head);
            free_list(c->out_head);
            free(c->carry);
            free(c);
        }
    }
    free(s->map.keys);
    free(s->map.vals);
    free(s->ready);
    free(s->wready);
    free(s->dirty);
    free(s->closing);
    free(s->senders);
    free(s->sendlist);
    if (s->listener != SRT_INVALID_SOCK)
        srt_close(s->listener);
    if (s->eid != SRT_ERROR)
        srt_epoll_release(s->eid);
    free_list(s->out_head);
    free_list(s->head);
    free_list(s->free_chunks);
    free(s->cmds);
    if (s->wake_ev)
        event_free(s->wake_ev);
    if (s->cmdfd != -1)
        close(s->cmdfd);
    if (s->wakefd != -1)
        close(s->wakefd);
    pthread_mutex_destroy(&s->mu);
    srt_cleanup();
    srt_setloghandler(NULL, NULL);
    free(s);
}
