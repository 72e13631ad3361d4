/* srtload: SRT load in one process, for benchmarks and tests.
 *
 *   N publishers   callers with m=publish StreamIDs, each sending the same
 *                  pre-encoded MPEG-TS file (looped) in messages of 7 TS
 *                  packets, paced by the file's PCR (or --rate), each from
 *                  its own point in the file so their keyframes do not all
 *                  come at once;
 *   N viewers      callers with m=request StreamIDs, reading and counting;
 *   K handshakes   callers whose StreamID the listener is expected to refuse,
 *                  --parallel at a time: their reject codes are counted.
 *
 * One thread does all of it: a 1 ms tick sends what is due, polls every
 * socket with srt_epoll_uwait (timeout 0), reads what viewers got. All the
 * callers share one UDP port, so libsrt runs one sender and one receiver
 * thread for them (not two per connection). At the end it prints one JSON
 * object on stdout: totals per role, every connection's libsrt counters
 * (srt_bstats: packets sent and received, lost, retransmitted, dropped), the
 * reject codes, and srtload's own CPU time, so that a benchmark can show the
 * load costs less than what it loads.
 *
 *   main.c    options, the run, the report
 *   media.c   the TS file cut into paced messages (no libsrt)
 *   conns.c   the connections and the loop
 */
#ifndef SRTLOAD_H
#define SRTLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TS_PACKET 188
#define MSG_PACKETS 7
#define MSG_BYTES (MSG_PACKETS * TS_PACKET)   /* 1316: libsrt's live payload */

struct srtload_config {
    char *target;                /* host:port of the listener */
    char *publish;               /* file of StreamIDs (one per line), or "" */
    char *view;                  /* file of StreamIDs, or "" */
    char *refuse;                /* one StreamID for the handshakes, or "" */
    char *file;                  /* the TS the publishers send */
    char *passphrase;
    int64_t publishers, viewers, handshakes, parallel;
    int64_t rate;                /* bits per second; 0: pace by the file's PCR */
    int64_t duration_ms, latency_ms, spread_ms, connect_timeout_ms;
    bool per_connection;         /* every connection in the report */
    bool own_ports;              /* one UDP port per caller (libsrt threads each) */
};

/* One message of the file: where it is and when it is due. */
struct media_msg {
    uint32_t off, len;
    int64_t at_us;               /* from the start of the file */
};

struct media {
    uint8_t *data;
    size_t len;
    struct media_msg *msgs;
    size_t nmsgs;
    int64_t loop_us;             /* one pass of the file */
    double bitrate;              /* bits per second, as paced */
};

/* Reads <path> and cuts it into messages of 7 packets (the last may be
 * shorter), timed by the PCR of the first PID that carries one (interpolated
 * by bytes between PCRs), or at <rate> bits per second if <rate> > 0. Returns
 * 0, or -1 with a message in <err>. */
int media_load(const char *path, int64_t rate, struct media *m, char *err, size_t errlen);

/* The timing part alone, pure (for tests): times every message of the
 * <len> bytes at <ts> (whole packets). */
int media_time(const uint8_t *ts, size_t len, int64_t rate, struct media *m, char *err,
               size_t errlen);

void media_free(struct media *m);

struct run;

/* Sets up the callers (nothing connects yet). NULL with a message in <err>. */
struct run *run_new(const struct srtload_config *cfg, const struct media *m, char *err,
                    size_t errlen);

/* Runs for cfg->duration_ms, or until every handshake is done when there is
 * nothing else to do, or until *<stop> becomes true (a signal). */
void run_loop(struct run *r, volatile int *stop);

/* Prints the report's fields (without the braces) on stdout. */
void run_report(const struct run *r);

/* 0 when every publisher and viewer connected and none broke (and the
 * handshakes were all refused), 2 otherwise. */
int run_status(const struct run *r);

void run_free(struct run *r);

#endif
