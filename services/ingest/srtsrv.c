/* The SRT listener and its thread: see srtsrv.h. Its files share
 * srtsrv_int.h; this one holds the queue to the loop, the listen callback, the
 * SRT thread (accept, read, statistics and the idle watchdog, the loop's
 * commands), and the loop side.
 *
 *   libsrt RcvQ thread   srtsrv_on_listen(): gate, reject code or passphrase
 *   our SRT thread       srt_epoll_wait() on the listener, the connections and
 *                        the command eventfd; accept, read into chunks, hand
 *                        them over every batch_ms; statistics; sending
 *                        (srtsend.c)
 *   the libevent loop    srtsrv_on_wake(): takes the whole queue at once,
 *                        dispatches; srtsrv_send() (srtsend.c): appends to a
 *                        connection's send queue
 *
 * Queue discipline: producers append under s->mu and write the loop's eventfd
 * only when s->signalled was clear, so a batch of any size costs one write and
 * one wakeup; the loop clears s->signalled before it takes the queue, so
 * nothing appended afterwards can be missed. The send queues go the other way
 * with the same discipline (srtsend.c).
 */
#include "srtsrv_int.h"

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "sluice/clock.h"
#include "sluice/log.h"

#define MSG_MAX 1500                /* one SRT message, at most (SRT_LIVE_MAX_PLSIZE 1456) */
#define READS_PER_TURN 256          /* messages read from one socket per turn (a batch) */
#define FREE_CHUNKS_MAX 256         /* chunks kept for reuse */
#define OUTSTANDING_MAX 2048        /* chunks the loop may be behind (64 MiB) */
#define REJECTS_MAX 1024            /* refusals waiting to be logged */
#define WAIT_MAX_MS 1000
#define WATCH_MS 1000               /* the idle watchdog's period */
#define CTRL_ACK_BYTES 72           /* full ACK: SRT 16 + 28, UDP/IPv4 28 */
#define CTRL_NAK_BYTES 52           /* one loss range: SRT 16 + 8, UDP/IPv4 28 */

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
struct ev *srtsrv_chunk_alloc_locked(struct srtsrv *s)
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
void srtsrv_chunks_free_locked(struct srtsrv *s, struct ev *e)
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
    struct ev *e = srtsrv_chunk_alloc_locked(s);
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
    srtsrv_chunks_free_locked(s, list);
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

int srtsrv_on_listen(void *opaque, SRTSOCKET ns, int hsversion, const struct sockaddr *peer,
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

/* Ends connection <c>: forgets it, closes the socket, hands over what it
 * read and says closed. The loop frees <c>. */
static void end_conn(struct srtsrv *s, struct srtsrv_conn *c, enum srtsrv_end end)
{
    srtsrv_forget_sends(s, c);
    srt_epoll_remove_usock(s->eid, c->sock);
    srt_close(c->sock);
    int64_t closed_us = clock_mono_us();   /* for sluice_ingest_revoke_seconds */
    srtsrv_map_del(&s->map, c->sock);
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
    e->closed.end = end;
    e->closed.at_us = closed_us;
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
                 e == NULL ? "out of memory" : srtsrv_error_text());
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
    srtsrv_map_put(&s->map, ns, c);
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
            log_warn("srt: accept: %s", srtsrv_error_text());
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

/* ---- statistics and the idle watchdog (the SRT thread) ------------------ */

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
        size_t unacked = c->sender ? srtsrv_note_backlog(c) : 0;
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

/* ---- the loop's commands, and the thread itself ------------------------- */

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

static void close_old_enough(struct srtsrv *s)
{
    int64_t now = clock_mono_ms();
    for (unsigned i = 0; i < s->nclosing;) {
        struct srtsrv_conn *c = s->closing[i];
        if (now - c->accepted_ms >= CLOSE_GRACE_MS && (!c->draining || srtsrv_drained(c, now)))
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
            if ((c = srtsrv_map_get(&s->map, cmds[i].sock)) != NULL)
                close_when_old_enough(s, c);
            break;
        case CMD_CLOSE_DRAINED:
            if ((c = srtsrv_map_get(&s->map, cmds[i].sock)) != NULL)
                srtsrv_close_when_drained(s, c, cmds[i].ms);
            break;
        case CMD_SENDER:
            if ((c = srtsrv_map_get(&s->map, cmds[i].sock)) != NULL)
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

void *srtsrv_thread(void *arg)
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
                log_warn("srt: epoll: %s", srtsrv_error_text());
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
            else if ((c = srtsrv_map_get(&s->map, s->ready[i])) != NULL)
                read_conn(s, c);
        }
        for (int i = 0; i < wn && i < cap && go_on; i++) {
            struct srtsrv_conn *c = srtsrv_map_get(&s->map, s->wready[i]);
            if (c != NULL && c->blocked)
                srtsrv_on_writable(s, c);
        }
        if (s->nclosing > 0)
            close_old_enough(s);
        now = clock_mono_ms();
        if (now >= next_flush) {
            flush_chunks(s);
            srtsrv_flush_sends(s, now);
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
            s->h->closed(c->user, e->closed.end, e->closed.at_us);
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

void srtsrv_on_wake(evutil_socket_t fd, short what, void *arg)
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

void srtsrv_command(struct srtsrv *s, enum cmd_kind kind, SRTSOCKET sock, int ms)
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
    srtsrv_command(s, CMD_CLOSE, c->sock, 0);
}

void srtsrv_set_sender(struct srtsrv *s, struct srtsrv_conn *c)
{
    srtsrv_command(s, CMD_SENDER, c->sock, 0);
}

void srtsrv_stop_accepting(struct srtsrv *s)
{
    srtsrv_command(s, CMD_STOP_LISTEN, SRT_INVALID_SOCK, 0);
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
