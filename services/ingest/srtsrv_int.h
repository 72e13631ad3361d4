/* Private to the SRT listener's files (see srtsrv.h): its types, and what one
 * file calls in another. With them, the only place in ingest that includes
 * libsrt.
 *
 *   srtsrv.c    the queue to the loop (and the chunk pool), the listen
 *               callback, the SRT thread (accept, read, statistics and the
 *               idle watchdog, the loop's commands), the loop side
 *   srtsend.c   sending to viewers (send queues, 7-packet messages,
 *               SRT_EPOLL_OUT) and the drained close
 *   srtmap.c    the socket map: SRTSOCKET -> connection
 *   srtsetup.c  libsrt's log into ours, the listener's socket and options,
 *               srtsrv_new() and srtsrv_free()
 *
 * Who may touch what: the fields of struct srtsrv and struct srtsrv_conn say
 * (the loop's, the SRT thread's, or under s->mu); so do the functions below.
 */
#ifndef SLUICE_INGEST_SRTSRV_INT_H
#define SLUICE_INGEST_SRTSRV_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>
#include <srt/srt.h>

#include "srtsrv.h"

struct event;

#define CHUNK_CAP (32 * 1024)       /* bytes of one hand-off chunk */
#define CLOSE_GRACE_MS 200          /* no close sooner after accept: see srtsrv_close() */

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
        struct { enum srtsrv_end end; int64_t at_us; } closed;
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

/* libsrt's last error on this thread, for a message. */
static inline const char *srtsrv_error_text(void)
{
    return srt_getlasterror_str();
}

/* ---- srtsrv.c ----------------------------------------------------------- */

/* A chunk, reused if one is free, cleared; s->mu held. NULL if out of memory. */
struct ev *srtsrv_chunk_alloc_locked(struct srtsrv *s);
/* Gives the list of chunks <e> (linked by next) back; s->mu held. */
void srtsrv_chunks_free_locked(struct srtsrv *s, struct ev *e);
/* The listen callback (srt_listen_callback), on libsrt's receive thread;
 * <opaque> is the srtsrv. */
int srtsrv_on_listen(void *opaque, SRTSOCKET ns, int hsversion, const struct sockaddr *peer,
                     const char *streamid);
/* The SRT thread's body (pthread_create); <arg> is the srtsrv. */
void *srtsrv_thread(void *arg);
/* Loop: the wake eventfd's callback; <arg> is the srtsrv. */
void srtsrv_on_wake(evutil_socket_t fd, short what, void *arg);
/* Loop: queues a command for the SRT thread and wakes it. */
void srtsrv_command(struct srtsrv *s, enum cmd_kind kind, SRTSOCKET sock, int ms);

/* ---- srtsend.c (all on the SRT thread) ---------------------------------- */

/* Throws away what was queued to send to <c>, and refuses more. */
void srtsrv_forget_sends(struct srtsrv *s, struct srtsrv_conn *c);
/* Notes what libsrt holds unacknowledged for <c>; returns its bytes. */
size_t srtsrv_note_backlog(struct srtsrv_conn *c);
/* Every batch_ms: takes what the loop queued since, then sends what can go. */
void srtsrv_flush_sends(struct srtsrv *s, int64_t now);
/* libsrt's send buffer has room again for <c>. */
void srtsrv_on_writable(struct srtsrv *s, struct srtsrv_conn *c);
/* Whether <c>, closing drained, may now be closed. */
bool srtsrv_drained(struct srtsrv_conn *c, int64_t now);
/* CMD_CLOSE_DRAINED: lists <c> to be closed once drained, within <ms>. */
void srtsrv_close_when_drained(struct srtsrv *s, struct srtsrv_conn *c, int ms);

/* ---- srtmap.c (the SRT thread's) ---------------------------------------- */

/* Sized for <max> connections. 0, or -1 out of memory (srtsrv_free frees). */
int srtsrv_map_init(struct sockmap *m, unsigned max);
/* NULL if <k> is not there. */
struct srtsrv_conn *srtsrv_map_get(const struct sockmap *m, SRTSOCKET k);
void srtsrv_map_put(struct sockmap *m, SRTSOCKET k, struct srtsrv_conn *c);
void srtsrv_map_del(struct sockmap *m, SRTSOCKET k);

#endif
