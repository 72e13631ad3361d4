/* slpcat's SLP connection to a relay, as a publisher or a subscriber: the
 * libcommon slpclient (connect, HELLO and the request at once, keepalive,
 * bounded waits, a graceful end), set up from the command line, with every
 * failure turned into one printed line and an exit code.
 */
#ifndef SLPCAT_LINK_H
#define SLPCAT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/slp.h"

struct slpcat;
struct link;

struct link_handler {
    /* ACCEPT came: the request was granted. */
    void (*accepted)(void *arg);
    /* A stream frame for a subscriber: PUBLISH, MEDIA or EOS (valid during
     * the call only). NULL for a publisher. */
    void (*frame)(const struct slp_frame *f, void *arg);
    /* The output went below the low-water mark: more may be written. */
    void (*writable)(void *arg);
    /* The link is closed; <code> is an slpcat exit code (0: it ended as
     * planned). Called once, from the loop; free the link later. */
    void (*closed)(int code, void *arg);
};

/* Connects to s->cfg.relay and sends HELLO then <request> (copied). NULL
 * after printing why (bad address, invalid names, allocation failure). */
struct link *link_start(struct slpcat *s, const struct slp_frame *request,
                        const struct link_handler *h, void *arg);

/* True once ACCEPT came and until the link ends. */
bool link_open(const struct link *l);

/* Bytes written and not yet sent. */
size_t link_pending(const struct link *l);

/* Sends one MEDIA frame: its header and <len> bytes of TS (both copied). */
int link_send_media(struct link *l, const uint8_t hdr[SLP_MEDIA_HEADER_LEN],
                    const uint8_t *ts, size_t len);

/* Ends the link: sends <last> (an EOS, or NULL for nothing), lets the output
 * drain (for up to the idle timeout: every byte sent matters), closes, and
 * reports <code> through closed() unless something failed first. */
void link_end(struct link *l, const struct slp_frame *last, int code);

void link_free(struct link *l);

#endif
