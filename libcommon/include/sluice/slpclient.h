/* The client end of one SLP connection to a relay (proto/SLP.md section 6),
 * in either role: a publisher's (HELLO and PUBLISH, then MEDIA out) or a
 * subscriber's (HELLO and SUBSCRIBE, then PUBLISH, MEDIA and EOS in). Ingest,
 * and slpcat use it. It connects, sends HELLO and the request at once, expects
 * HELLO and ACCEPT, answers PING, sends PING when idle, and ends gracefully
 * (the last frames, a half-close, then reading until the relay closes).
 *
 *   CONNECTING -> AWAIT_HELLO -> AWAIT_ACCEPT -> OPEN -> DRAINING -> CLOSED
 *
 * Every wait is bounded: connecting and the handshake by connect_timeout_ms,
 * silence from the relay by idle_timeout_ms, the drain by drain_ms. The owner
 * learns the outcome once, through closed(), called from the event loop (never
 * from inside an slpclient_* call), and may free the client from there.
 */
#ifndef SLUICE_SLPCLIENT_H
#define SLUICE_SLPCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/slp.h"

struct event_base;
struct evdns_base;
struct evbuffer;
struct slpclient;

enum slpclient_end {
    SLPCLIENT_FINISHED,   /* slpclient_end() done: our last frames went out */
    SLPCLIENT_FAILED,     /* could not connect, or timed out in the handshake */
    SLPCLIENT_REFUSED,    /* the relay sent ERROR (code and text given) */
    SLPCLIENT_LOST,       /* the connection broke, or the relay went silent */
    SLPCLIENT_PROTOCOL,   /* the relay broke SLP (we sent it ERROR) */
};

struct slpclient_handler {
    void (*accepted)(void *arg);           /* ACCEPT came: MEDIA may go (or come) */
    /* A subscription's PUBLISH, MEDIA or EOS, in order; <f> and what it
     * points to are valid during the call. The owner may call
     * slpclient_end() from here, not slpclient_free(). NULL for a publisher. */
    void (*frame)(void *arg, const struct slp_frame *f);
    /* Optional: the output went down to low_water bytes; more may go. */
    void (*writable)(void *arg);
    /* Once. <code> is the SLP error code for SLPCLIENT_REFUSED (else 0);
     * <text> a printable reason (escaped), valid during the call. */
    void (*closed)(void *arg, enum slpclient_end end, unsigned code, const char *text);
};

struct slpclient_options {
    const char *node;              /* our node id (HELLO) */
    const char *agent;             /* our software (HELLO), e.g. "sluice-ingest/0.1" */
    int connect_timeout_ms;        /* connect + HELLO + ACCEPT */
    int idle_timeout_ms;           /* nothing from the relay for this long: lost */
    int drain_ms;                  /* how long the last frames may take */
    size_t low_water;              /* writable() at this much output (with a writable) */
    /* A subscription read by its owner's clock: once ACCEPT came, frames are
     * read only by slpclient_read(). A daemon with many subscriptions calls
     * it for each every few tens of milliseconds: one wakeup then reads
     * every stream's batch of frames, instead of one wakeup per frame per
     * stream (a relay writes each frame as it comes). */
    bool polled;
};

/* Connects to <addr> ("host:port") and sends HELLO and <request> (a PUBLISH
 * or a SUBSCRIBE, copied; it sets the role). NULL (logged) for a bad address
 * or a request the encoder refuses. */
struct slpclient *slpclient_start(struct event_base *base, struct evdns_base *dns,
                                  const char *addr, const struct slp_frame *request,
                                  const struct slpclient_options *o,
                                  const struct slpclient_handler *h, void *arg);

/* Reads and handles what the socket holds (a polled subscription, open);
 * callbacks run from here, closed() excepted. */
void slpclient_read(struct slpclient *l);

/* Bytes written and not yet sent. */
size_t slpclient_pending(const struct slpclient *l);

/* True once ACCEPT came and until the client ends. */
bool slpclient_open(const struct slpclient *l);

/* Queues one MEDIA frame (its header and <len> bytes of TS, copied).
 * Returns 0, or -1 if the client is not open or out of memory. */
int slpclient_send_media(struct slpclient *l, const uint8_t hdr[SLP_MEDIA_HEADER_LEN],
                         const uint8_t *ts, size_t len);

/* Moves every byte of <frames> (whole encoded MEDIA frames) to the output.
 * Returns 0, or -1 if the client is not open. */
int slpclient_send_frames(struct slpclient *l, struct evbuffer *frames);

/* Ends the connection: sends <last> (an EOS, or NULL) if open, lets the
 * output drain, closes; closed(SLPCLIENT_FINISHED) follows, or another end
 * if something failed first. */
void slpclient_end(struct slpclient *l, const struct slp_frame *last);

/* Frees at once (no callback). NULL is fine. */
void slpclient_free(struct slpclient *l);

#endif
