/* What hls reads from Redis besides its own state (docs/redis.md): the relay's
 * stream record `sluice:stream:<name>` (where to subscribe) and the events on
 * `sluice:events`. Pure parsers over peer input: a value outside the
 * contract is refused, never half-used.
 */
#ifndef SLUICE_HLS_RECORDS_H
#define SLUICE_HLS_RECORDS_H

#include <stddef.h>

#include "sluice/names.h"

#define RECORD_MAX_LEN 4096
#define RELAY_ADDR_MAX 255

/* sluice:stream:<name>: the relay's SLP address. */
struct stream_record {
    char name[STREAM_NAME_MAX + 1];
    char relay[RELAY_ADDR_MAX + 1];     /* host:port */
};

enum event_type {
    EV_OTHER,           /* not for us */
    EV_STREAM_START,    /* stream, relay (host:port, "" if absent) */
    EV_STREAM_STOP,     /* stream */
    EV_HLS_RELEASED,    /* stream: an origin let its lease go (it is stopping) */
};

struct event_msg {
    enum event_type type;
    char stream[STREAM_NAME_MAX + 1];
    char relay[RELAY_ADDR_MAX + 1];
};

/* Each returns 0, or -1 with a printable reason in <why> (<whylen> bytes). */
int records_stream_parse(const char *buf, size_t len, struct stream_record *out, char *why,
                         size_t whylen);
int records_event_parse(const char *buf, size_t len, struct event_msg *out, char *why,
                        size_t whylen);

#endif
