/* One SLP connection from ingest to a relay (proto/SLP.md section 6), in
 * either role: a publisher's (HELLO and PUBLISH, then MEDIA out) or a
 * viewer's subscription (HELLO and SUBSCRIBE, then PUBLISH, MEDIA and EOS
 * in). It connects, sends HELLO and the request at once, expects HELLO and
 * ACCEPT, answers PING, sends PING when idle, and ends gracefully (the last
 * frames, a half-close, then reading until the relay closes).
 *
 *   CONNECTING -> AWAIT_HELLO -> AWAIT_ACCEPT -> OPEN -> DRAINING -> CLOSED
 *
 * Every wait is bounded: connecting and the handshake by connect_timeout_ms,
 * silence from the relay by idle_timeout_ms, the drain by drain_ms. The owner
 * learns the outcome once, through closed(), called from the event loop (never
 * from inside a relaylink_* call), and may free the link from there.
 */
#ifndef SLUICE_INGEST_RELAYLINK_H
#define SLUICE_INGEST_RELAYLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/slp.h"

struct event_base;
struct evdns_base;
struct relaylink;
struct evbuffer;

enum relaylink_end {
    RL_FINISHED,    /* relaylink_end() done: our last frames went out */
    RL_FAILED,      /* could not connect, or timed out in the handshake */
    RL_REFUSED,     /* the relay sent ERROR (code and text given) */
    RL_LOST,        /* the connection broke, or the relay went silent */
    RL_PROTOCOL,    /* the relay broke SLP (we sent it ERROR) */
};

struct relaylink_handler {
    void (*accepted)(void *arg);           /* ACCEPT came: MEDIA may go (or come) */
    /* A subscription's PUBLISH, MEDIA or EOS, in order; <f> and what it
     * points to are valid during the call. The owner may call
     * relaylink_end() from here, not relaylink_free(). NULL for a publisher. */
    void (*frame)(void *arg, const struct slp_frame *f);
    /* Once. <code> is the SLP error code for RL_REFUSED (else 0); <text> a
     * printable reason (escaped), valid during the call. */
    void (*closed)(void *arg, enum relaylink_end end, unsigned code, const char *text);
};

struct relaylink_options {
    const char *node;              /* our node id (HELLO) */
    int connect_timeout_ms;        /* connect + HELLO + ACCEPT */
    int idle_timeout_ms;           /* nothing from the relay for this long: lost */
    int drain_ms;                  /* how long the last frames may take */
};

/* Connects to <addr> ("host:port") and sends HELLO and <request> (a PUBLISH
 * or a SUBSCRIBE, copied; it sets the role). NULL (logged) for a bad address
 * or a request the encoder refuses. */
struct relaylink *relaylink_start(struct event_base *base, struct evdns_base *dns,
                                  const char *addr, const struct slp_frame *request,
                                  const struct relaylink_options *o,
                                  const struct relaylink_handler *h, void *arg);

/* Bytes written and not yet sent. */
size_t relaylink_pending(const struct relaylink *l);

/* True once ACCEPT came and until the link ends. */
bool relaylink_open(const struct relaylink *l);

/* Queues one MEDIA frame (its header and <len> bytes of TS, copied).
 * Returns 0, or -1 if the link is not open or out of memory. */
int relaylink_send_media(struct relaylink *l, const uint8_t hdr[SLP_MEDIA_HEADER_LEN],
                         const uint8_t *ts, size_t len);

/* Moves every byte of <frames> (whole encoded MEDIA frames) to the output.
 * Returns 0, or -1 if the link is not open. */
int relaylink_send_frames(struct relaylink *l, struct evbuffer *frames);

/* Ends the link: sends <last> (an EOS, or NULL) if open, lets the output
 * drain, closes; closed(RL_FINISHED) follows, or another end if something
 * failed first. */
void relaylink_end(struct relaylink *l, const struct slp_frame *last);

/* Frees at once (no callback). NULL is fine. */
void relaylink_free(struct relaylink *l);

#endif
