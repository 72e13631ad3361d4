/* The SLP connection of slpcat, as a client (publisher or subscriber) of a
 * relay: connects, sends HELLO and the request (PUBLISH or SUBSCRIBE) at once,
 * expects HELLO and ACCEPT back, answers PING, sends PING when idle, and
 * turns every failure into one printed line and an exit code:
 *
 *   LINK_CONNECTING -> LINK_AWAIT_HELLO -> LINK_AWAIT_ACCEPT -> LINK_OPEN
 *                                 any state -> LINK_DRAINING -> LINK_CLOSED
 *
 * Every wait has a bound: connect + handshake within connect_timeout_ms,
 * then nothing received for idle_timeout_ms ends the link.
 */
#ifndef SLPCAT_LINK_H
#define SLPCAT_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/slp.h"

struct slpcat;
struct link;

enum link_state {
    LINK_CONNECTING,
    LINK_AWAIT_HELLO,
    LINK_AWAIT_ACCEPT,
    LINK_OPEN,
    LINK_DRAINING,      /* our last frames are going out, then we close */
    LINK_CLOSED,
};

struct link_handler {
    /* ACCEPT came: the request was granted. */
    void (*accepted)(void *arg);
    /* A stream frame for a subscriber: PUBLISH, MEDIA or EOS (valid during
     * the call only). */
    void (*frame)(const struct slp_frame *f, void *arg);
    /* The output went below the low-water mark: more may be written. */
    void (*writable)(void *arg);
    /* The link is closed; <code> is an slpcat exit code (0: it ended as
     * planned). Called once. Free the link later, not from here. */
    void (*closed)(int code, void *arg);
};

/* Constructor for a link playing <role> for <s>; NULL on allocation failure. */
struct link *link_new(struct slpcat *s, enum slp_role role, const struct link_handler *h,
                      void *arg);

/* Connects to s->cfg.relay and sends HELLO then <request> (copied). Returns
 * 0, or -1 after printing why (bad address, allocation failure). */
int link_start(struct link *l, const struct slp_frame *request);

enum link_state link_state(const struct link *l);

/* Bytes written and not yet sent. */
size_t link_pending(const struct link *l);

/* Sends one MEDIA frame: its header and <len> bytes of TS (both copied). */
int link_send_media(struct link *l, const uint8_t hdr[SLP_MEDIA_HEADER_LEN],
                    const uint8_t *ts, size_t len);

/* Ends the link: sends <last> (an EOS, or NULL for nothing), lets the output
 * drain, closes, and reports <code> through closed(). The drain may take up
 * to idle_timeout_ms when <code> is 0 (every byte sent matters), a second
 * otherwise. */
void link_end(struct link *l, const struct slp_frame *last, int code);

void link_free(struct link *l);

#endif
