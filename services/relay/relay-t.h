/* sluice-relay: types only (prototypes are in each module's header).
 *
 *   relay      the daemon: listener, tick, stream table, connection list
 *   conn       one SLP connection (any role), its socket, queue and state
 *   stream     one stream name: its publisher, GOP cache and subscribers
 *
 * Who points at whom: the relay owns every conn (relay->conns) and every
 * stream (its hash table). A stream points at its publisher conn and lists
 * its subscriber conns; each of those points back at the stream. A conn that
 * leaves its stream is unlinked at once; a stream with neither a publisher
 * (live or in its grace) nor subscribers is freed.
 */
#ifndef RELAY_T_H
#define RELAY_T_H

#include <stdbool.h>
#include <stdint.h>

#include "gop.h"
#include "known.h"
#include "outq.h"
#include "policy.h"
#include "sluice/names.h"
#include "sluice/slp-t.h"

#define RELAY_AGENT "sluice-relay/0.1"

struct chunk;
struct daemon;
struct event;
struct evbuffer;
struct evconnlistener;
struct metric;
struct metric_series;
struct redis;
struct registry;

struct relay_config {
    char *listen;                 /* SLP, host:port */
    char *admin_listen;
    char *advertise;              /* what others dial; "" = derived from listen */
    int64_t heartbeat_ms;         /* Redis records are refreshed this often */
    int64_t max_queue;            /* bytes a subscriber may have queued */
    int64_t gop_cache_max;        /* bytes of GOP cache per stream */
    int64_t slow_timeout_ms;      /* a queue that never empties for this long: too_slow */
    int64_t publisher_grace_ms;   /* how long a lost publisher may take to come back */
    int64_t known_publisher_ttl_ms; /* Redis down: a publisher seen this recently may publish */
    int64_t max_wait_ms;          /* cap on SUBSCRIBE wait_ms */
    int64_t handshake_timeout_ms; /* HELLO, then the request, each within this */
    int64_t idle_timeout_ms;      /* nothing received for this long: timeout */
    int64_t max_connections;      /* SLP connections; beyond, ERROR overloaded */
};

/* Where a connection is. The handshake states follow SLP.md section 6; the
 * last two are the graceful close of section 6, "Closing". */
enum conn_state {
    CONN_HANDSHAKE,    /* the peer's HELLO, then its request, are due */
    CONN_DECIDING,     /* publisher: its lease is being checked in Redis */
    CONN_PUBLISHING,   /* publisher: accepted, sending MEDIA */
    CONN_WAITING,      /* subscriber: accepted, its stream is not live yet */
    CONN_SUBSCRIBED,   /* subscriber: attached to a live stream */
    CONN_CLOSING,      /* our last frames go out (bounded), then we half-close */
    CONN_LINGER,       /* half-closed: reading and discarding until the peer closes */
    CONN_DEAD,         /* closed: freed once the current callback returns */
};

struct lease_check;

struct conn_pub {
    char id[SLP_ID_MAX + 1];      /* the publisher id of its PUBLISH */
    struct chunk *publish;        /* that PUBLISH frame, to forward */
    struct lease_check *check;    /* the lease lookup in flight, or NULL */
    uint64_t frames, bytes, keyframes;
};

struct conn_sub {
    enum sub_phase phase;
    enum slp_start start;
    int64_t behind_since_ms;      /* its queue has not been empty since then; 0: empty */
    uint64_t frames, bytes, drops, dropped_bytes, gaps;
    struct conn *prev, *next;     /* the stream's subscribers */
};

struct conn {
    struct relay *relay;
    uint64_t id;
    int fd;
    enum conn_state state;
    struct slp_session sess;
    struct event *rev, *wev;
    bool writing;                 /* wev is armed: the socket was full */
    struct evbuffer *in;
    struct outq out;
    int64_t connected_ms, last_rx_ms, last_tx_ms;
    int64_t deadline_ms;          /* of the current state (handshake, wait, close), or 0 */
    int64_t rtt_us;               /* from our last PING's PONG; -1 unknown */
    char peer[64];                /* "ip:port" */
    char node[SLP_ID_MAX + 1];    /* from its HELLO (visible ASCII) */
    char agent[SLP_AGENT_MAX + 1];
    struct stream *stream;        /* publishing to, subscribed or waiting for */
    struct conn_pub pub;
    struct conn_sub sub;
    struct conn *prev, *next;     /* relay->conns */
};

enum stream_state {
    STREAM_IDLE,       /* not live: only subscribers waiting for it */
    STREAM_LIVE,       /* a publisher is connected */
    STREAM_LOST,       /* its publisher went without EOS: waiting for it (grace) */
};

/* Per-stream metric series, kept so that a hot-path update is one addition. */
struct stream_series {
    struct metric_series *bytes_in, *frames_in, *keyframes_in;
    struct metric_series *bytes_out, *frames_out;
    struct metric_series *dropped_frames, *dropped_bytes, *gaps;
    struct metric_series *queued, *queued_max, *gop_bytes, *subscribers;
};

struct stream {
    struct relay *relay;
    char name[STREAM_NAME_MAX + 1];
    enum stream_state state;
    struct conn *publisher;             /* LIVE: its connection */
    struct chunk *publish;              /* LIVE, LOST: the PUBLISH subscribers get */
    char publisher_id[SLP_ID_MAX + 1];  /* LIVE, LOST: that publisher's id */
    char *record;                       /* LIVE, LOST: the sluice:stream:<name> JSON */
    bool keyed;                         /* the current publisher has sent a keyframe */
    bool announced;                     /* stream.start went out for this publisher */
    struct gop gop;
    struct conn *subs;                  /* subscribers, waiting ones included */
    unsigned nsubs;
    int64_t lost_ms;                    /* LOST: since when */
    uint64_t frames_in, bytes_in, keyframes_in, changes;
    struct stream_series m;
    struct stream *hnext;               /* hash chain */
};

/* Metric families, in the order of status.c's table. */
enum relay_metric {
    M_CONNECTIONS, M_CONNECTIONS_TOTAL, M_STREAMS, M_PUBLISHERS, M_SUBSCRIBERS,
    M_BYTES_IN, M_FRAMES_IN, M_KEYFRAMES_IN, M_BYTES_OUT, M_FRAMES_OUT,
    M_DROPPED_FRAMES, M_DROPPED_BYTES, M_GAPS, M_QUEUED, M_QUEUED_MAX, M_QUEUE_LIMIT,
    M_GOP_BYTES, M_STREAM_SUBSCRIBERS, M_CUTOFFS, M_ERRORS_SENT, M_PUBLISHER_CHANGES,
    M_REDIS_UP,
    M_COUNT
};

struct relay {
    struct daemon *d;
    const struct relay_config *cfg;
    struct redis *redis;
    struct registry *reg;
    struct evconnlistener *listener;
    struct event *tick;
    char advertise[300];          /* host:port for sluice:stream and sluice:relay */
    struct stream **bucket;       /* stream table: chained, power-of-two size */
    unsigned nbuckets, nstreams;
    struct known known;           /* the last publisher of each name, for Redis outages */
    struct conn *conns;           /* open connections */
    struct conn *dead;            /* closed ones, freed by the reaper */
    struct event *reaper;         /* frees the dead after the current callback */
    unsigned nconns, npublishers, nsubscribers;
    uint64_t next_id;
    bool stopping, held;
    struct metric *fam[M_COUNT];
    struct metric_series *connections_total;
};

#endif
