/* The SRT listener: the only module of ingest that touches libsrt.
 *
 * Threads (see docs/ingest.md, "Inside"):
 *  - libsrt's receive thread runs the listen callback for every handshake;
 *    it asks the gate (a function given here, which must decide from memory
 *    and never block) and refuses with the gate's code, or accepts, setting
 *    the stream's passphrase on the new socket.
 *  - one thread of ours polls every SRT socket with srt_epoll_wait (the
 *    listener, the connections, and an eventfd through which the loop sends
 *    commands), accepts, reads, and every <batch_ms> hands what it read to
 *    the libevent loop in chunks of many packets, with one eventfd write for
 *    the whole batch. It also polls libsrt's statistics every <stats_ms>.
 *  - the libevent loop receives everything through the handler below, in
 *    order per connection: accepted, then data and stats, then closed, once.
 *
 * Sending (a viewer, m=request) goes the other way: the loop appends TS to a
 * queue per connection (srtsrv_send) and wakes the SRT thread through the
 * command eventfd at most once a batch; every <batch_ms> the SRT thread cuts
 * each queue into messages of <payload_size> (7 TS packets) and hands them to
 * libsrt, waiting for SRT_EPOLL_OUT only when libsrt's send buffer is full.
 * The loop sees how far a viewer is behind (srtsrv_backlog) and drops, not
 * this module.
 *
 * Nothing of libsrt crosses this header: a connection is an opaque handle.
 */
#ifndef SLUICE_INGEST_SRTSRV_H
#define SLUICE_INGEST_SRTSRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct srtsrv;
struct srtsrv_conn;

#define SRTSRV_ADDR_MAX 64
#define SRTSRV_PASSPHRASE_MAX 79
#define SRTSRV_DETAIL_MAX 192

struct srtsrv_options {
    const char *listen;          /* "host:port", "[v6]:port"; port 0 picks one */
    int latency_ms;              /* SRTO_LATENCY (receive and peer) */
    int payload_size;            /* SRTO_PAYLOADSIZE */
    int64_t rcvbuf;              /* SRTO_RCVBUF bytes; 0 = libsrt's default */
    int64_t udp_rcvbuf;          /* SRTO_UDP_RCVBUF bytes; 0 = libsrt's default */
    int peer_idle_ms;            /* SRTO_PEERIDLETIMEO */
    unsigned max_conns;          /* beyond, handshakes are refused with 1402 */
    int batch_ms;                /* hand-off interval */
    int stats_ms;                /* statistics polling interval */
    int backlog;                 /* srt_listen backlog */
};

/* What the gate decides for one handshake. */
struct srtsrv_verdict {
    int code;                                     /* 0: accept; else 1000..2999 */
    const char *why;                              /* static, for the log */
    char detail[SRTSRV_DETAIL_MAX];               /* what was asked, safe to log */
    char passphrase[SRTSRV_PASSPHRASE_MAX + 1];   /* set on the socket if not "" */
};

/* Called on libsrt's receive thread: <streamid> as the caller sent it (never
 * NULL, maybe ""), <addr> its address. Must not block, not touch the loop. */
typedef void (*srtsrv_gate_fn)(const char *streamid, const char *addr,
                               struct srtsrv_verdict *v, void *arg);

struct srtsrv_peer {
    const char *streamid;
    const char *addr;            /* "203.0.113.7:50114", "[2001:db8::1]:50114" */
};

/* libsrt's counters for one connection (srt_bstats), as totals. */
struct srtsrv_stats {
    int64_t data_pkts_sent, data_pkts_recv, data_pkts_lost, data_pkts_dropped;
    int64_t data_bytes_sent, data_bytes_recv, data_bytes_lost;
    int64_t ctrl_pkts_sent, ctrl_pkts_recv;
    int64_t ctrl_bytes_sent, ctrl_bytes_recv;     /* estimated from the packet counts */
    double rtt_ms, rtt_var_ms;                    /* the variance is our own estimate */
    int64_t rcv_buf_ms;                           /* what waits in libsrt's receiver */
};

enum srtsrv_end {
    SRTSRV_ENDED,    /* the peer closed: a publisher while still sending, or a viewer */
    SRTSRV_LOST,     /* the peer went silent until the idle timeout */
    SRTSRV_CLOSED,   /* we closed it (srtsrv_close, shutdown) */
};

struct srtsrv_reject {
    int code;
    const char *why;
    const char *detail;          /* the gate's description, safe to log */
    const char *addr;
};

struct srtsrv_handler {
    /* A connection passed the gate and the handshake. Returns the owner that
     * the other callbacks get, or NULL to have it closed (closed() is then
     * not called). */
    void *(*accepted)(struct srtsrv_conn *c, const struct srtsrv_peer *peer, void *arg);
    /* <len> bytes of the stream as received; <wall_us> when the first came.
     * <buf> is valid during the call only. */
    void (*data)(void *user, const uint8_t *buf, size_t len, int64_t wall_us);
    void (*stats)(void *user, const struct srtsrv_stats *st);
    /* The connection is gone; its handle is invalid once this returns.
     * <closed_us>: when the SRT thread closed the socket (clock_mono_us),
     * up to a turn of that thread before this call. */
    void (*closed)(void *user, enum srtsrv_end end, int64_t closed_us);
    /* A handshake the gate refused (for the log and the metrics). */
    void (*rejected)(const struct srtsrv_reject *r, void *arg);
};

/* Binds, listens, and starts the thread. NULL with a malloc'd message in
 * *<err> (bad address, port taken, libsrt failure). */
struct srtsrv *srtsrv_new(struct event_base *base, const struct srtsrv_options *o,
                          srtsrv_gate_fn gate, void *gate_arg,
                          const struct srtsrv_handler *h, void *arg, char **err);

/* The bound UDP port. */
int srtsrv_port(const struct srtsrv *s);

/* Closes the listener: no new connections (the graceful stop). */
void srtsrv_stop_accepting(struct srtsrv *s);

/* Closes a connection; closed(SRTSRV_CLOSED) follows unless the connection
 * ended meanwhile (then closed() reports that). A connection younger than
 * 200 ms is closed when it reaches that age, so that the caller, done with
 * its handshake by then, does take our shutdown (see srtsrv.c). Loop only. */
void srtsrv_close(struct srtsrv *s, struct srtsrv_conn *c);

/* <c> is a connection we send to (a viewer). The idle watchdog then judges
 * it by the acknowledgements of what we sent it: a viewer that has nothing
 * to acknowledge (waiting for its stream) sends only keepalives, which
 * libsrt does not count, and is left to libsrt's own peer idle timeout.
 * Loop only. */
void srtsrv_set_sender(struct srtsrv *s, struct srtsrv_conn *c);

/* Queues <len> bytes of TS (whole 188-byte packets) to send to <c>; copied.
 * Returns 0, or -1 if the connection has ended or out of memory. Unbounded
 * here: the caller bounds it with srtsrv_backlog(). Loop only. */
int srtsrv_send(struct srtsrv *s, struct srtsrv_conn *c, const uint8_t *ts, size_t len);

/* How far behind a viewer is, as the SRT thread last saw it (at most a batch
 * ago): <bytes> sent and not yet acknowledged (queued here, and in libsrt's
 * send buffer); <ms> the age span of libsrt's send buffer (0 while it holds
 * little); <drop_ms> the span beyond which libsrt drops packets itself (its
 * too-late packet drop: 1.25 times the viewer's latency, at least 1 s). */
void srtsrv_backlog(const struct srtsrv_conn *c, size_t *bytes, int64_t *ms, int64_t *drop_ms);

/* As srtsrv_close, but what was queued goes out first and is acknowledged
 * (or <within_ms> passes): the end of a viewer's stream. Loop only. */
void srtsrv_close_drained(struct srtsrv *s, struct srtsrv_conn *c, int within_ms);

/* Open connections (accepted and not yet closed). */
unsigned srtsrv_connections(const struct srtsrv *s);

/* Counters for the metrics, read on the loop. */
struct srtsrv_counters {
    uint64_t handoffs;           /* loop wakeups */
    uint64_t chunks;             /* data chunks handed over */
    uint64_t dropped_bytes;      /* read while the loop was too far behind */
    uint64_t sent_msgs;          /* messages handed to libsrt (viewers) */
    uint64_t send_wakes;         /* SRT thread wakeups by the loop for sending */
    uint64_t rejects_unlogged;   /* refusals beyond the log queue's bound */
};
void srtsrv_counters(const struct srtsrv *s, struct srtsrv_counters *out);

/* Stops the thread, closes every socket (no callbacks), frees everything and
 * shuts libsrt down. Call after the loop has stopped. NULL is fine. */
void srtsrv_free(struct srtsrv *s);

#endif
