/* One SLP subscription of hls to a relay (proto/SLP.md section 6), on
 * libcommon's slpclient: HELLO and SUBSCRIBE (start at the last keyframe,
 * waiting <wait_ms> for the stream to go live) go out with the connection;
 * connect and handshake within <connect_timeout_ms>, then nothing received
 * for <idle_timeout_ms> ends the link. Frames are handed over during the
 * callback only.
 *
 * A link ends once: by itself (ended() says why: EOS, an ERROR frame, the
 * network, a timeout, a protocol error), or by link_close(). Either way it
 * then closes gracefully on its own (half-close, read until the relay closes,
 * bounded) and frees itself; the owner forgets its pointer at that moment.
 */
#ifndef SLUICE_HLS_LINK_H
#define SLUICE_HLS_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/slp-t.h"

struct event_base;
struct evdns_base;
struct link;

enum link_end {
    LINK_END_EOS,        /* the relay said EOS: the stream ended (detail: reason) */
    LINK_END_REFUSED,    /* the relay sent ERROR (detail: code and text) */
    LINK_END_NETWORK,    /* cannot connect or handshake in time, the connection
                            was lost, or the relay went silent (detail says) */
    LINK_END_PROTOCOL,   /* the relay sent something SLP does not allow */
};

struct link_handler {
    /* The relay accepted the subscription (the stream may not be live yet). */
    void (*accepted)(void *arg);
    /* The stream's PUBLISH: it is live, from this publisher (again). */
    void (*publish)(const struct slp_publish *p, void *arg);
    /* A MEDIA frame (flags, pts, wall_us, ts), valid during the call. */
    void (*media)(const struct slp_frame *f, void *arg);
    /* The link ended by itself; <detail> is printable. Not called after
     * link_close(). The link frees itself afterwards. */
    void (*ended)(enum link_end why, const char *detail, void *arg);
};

struct link_options {
    const char *relay;            /* host:port */
    const char *stream;
    const char *node;             /* our node id, for HELLO */
    uint32_t wait_ms;             /* SUBSCRIBE wait_ms */
    int64_t connect_timeout_ms;
    int64_t idle_timeout_ms;
};

/* Connects and subscribes. NULL (logged) when the address is malformed or
 * out of memory. */
struct link *link_open(struct event_base *base, struct evdns_base *dns,
                       const struct link_options *o, const struct link_handler *h, void *arg);

/* Ends the link from our side; no callback follows. Safe from a callback. */
void link_close(struct link *l);

/* True once the relay accepted the subscription. */
bool link_accepted(const struct link *l);

/* The relay address. */
const char *link_relay(const struct link *l);

/* Reads every subscribed link. Until the relay accepts, a link reads when
 * its socket is readable; from then on it is read only by this, which the
 * daemon calls every few tens of milliseconds: one wakeup of the process
 * then reads every stream's batch of frames, instead of one wakeup per frame
 * per stream (a relay writes each frame as it comes). Links are never freed
 * from within it. */
void link_read_all(void);

/* Frees every link still closing (at exit). */
void link_free_all(void);

const char *link_end_name(enum link_end why);

#endif
