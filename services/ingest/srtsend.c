/* Sending to viewers: see srtsrv.h and srtsrv_int.h. The loop appends TS to
 * a connection's send queue (srtsrv_send); the SRT thread cuts it into
 * messages of whole TS packets and hands them to libsrt, waiting for
 * SRT_EPOLL_OUT only while libsrt's send buffer is full; a viewer whose
 * stream ended is closed once what it was sent is acknowledged.
 *
 * The send queues go the other way from the queue to the loop (srtsrv.c),
 * with the same discipline: the loop appends under s->mu, lists the
 * connection in s->sendlist, and writes the command eventfd only when
 * s->send_wake was clear; the SRT thread clears it when it takes the list, at
 * its next flush (so a batch of any size costs one write and at most one
 * wakeup per batch_ms).
 */
#include "srtsrv_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/clock.h"

#define SPAN_FROM (64 * 1024)       /* libsrt's send buffer span is read beyond this */
#define TLPKTDROP_MIN_MS 1000       /* libsrt's sender drop: 1.25 x latency, at least this */

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

/* Throws away what was queued to send to <c>, and refuses more. */
void srtsrv_forget_sends(struct srtsrv *s, struct srtsrv_conn *c)
{
    pthread_mutex_lock(&s->mu);
    c->gone = true;
    for (unsigned i = 0; c->send_listed && i < s->nsendlist; i++) {
        if (s->sendlist[i] == c) {
            s->sendlist[i] = s->sendlist[--s->nsendlist];
            c->send_listed = false;
        }
    }
    srtsrv_chunks_free_locked(s, c->sq_head);
    srtsrv_chunks_free_locked(s, c->out_head);
    c->sq_head = c->sq_tail = c->out_head = c->out_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    atomic_store(&c->queued, 0);
    atomic_store(&c->in_srt, 0);
    unlist_sending(s, c);
    free(c->carry);
    c->carry = NULL;
    c->carry_len = 0;
}

/* Reads what libsrt holds unacknowledged for <c>: its bytes, and once they
 * are more than a little, its age span (srt_bstats). Returns the bytes. */
size_t srtsrv_note_backlog(struct srtsrv_conn *c)
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
        srtsrv_chunks_free_locked(s, done);
        pthread_mutex_unlock(&s->mu);
    }
    if (rc == 0)
        watch_out(s, c, true);
    srtsrv_note_backlog(c);
    if (c->out_head == NULL && c->carry_len == 0)
        unlist_sending(s, c);
}

/* Every batch_ms: takes what the loop queued since, then sends what can go. */
void srtsrv_flush_sends(struct srtsrv *s, int64_t now)
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
void srtsrv_on_writable(struct srtsrv *s, struct srtsrv_conn *c)
{
    watch_out(s, c, false);
    if (c->sending)
        send_conn(s, c, clock_mono_ms());
}

/* A drained close is due: nothing queued here, nothing unacknowledged in
 * libsrt, and then the viewer's latency passed, so that what it holds for
 * playing out is played before our shutdown breaks its connection (or the
 * time is up). */
bool srtsrv_drained(struct srtsrv_conn *c, int64_t now)
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

/* A viewer whose stream ended: closed once what it was sent is acknowledged
 * (libsrt drops unsent data at close in live mode), within <ms>. */
void srtsrv_close_when_drained(struct srtsrv *s, struct srtsrv_conn *c, int ms)
{
    if (c->closing)
        return;                          /* a close is already on its way */
    c->draining = true;
    c->drain_until_ms = clock_mono_ms() + ms;
    c->closing = true;
    s->closing[s->nclosing++] = c;
}

/* ---- the loop side ------------------------------------------------------ */

void srtsrv_close_drained(struct srtsrv *s, struct srtsrv_conn *c, int within_ms)
{
    srtsrv_command(s, CMD_CLOSE_DRAINED, c->sock, within_ms);
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
            if ((e = srtsrv_chunk_alloc_locked(s)) == NULL)
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
