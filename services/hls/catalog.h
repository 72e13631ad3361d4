/* Which streams are live, as Redis tells (docs/redis.md): every stream.start,
 * stream.stop and hls.released on sluice:events, and a SCAN of
 * sluice:stream:* every scan-interval and after each (re)subscription (pub/sub
 * loses what is published while we are away). A stream found live becomes a
 * candidate (stream.h); one that no full scan finds any more is gone.
 */
#ifndef SLUICE_HLS_CATALOG_H
#define SLUICE_HLS_CATALOG_H

#include <stdbool.h>

struct hls;

/* Subscribes and starts scanning. Returns 0 or -1. */
int catalog_start(struct hls *h);

/* Stops scanning (the subscription ends with Redis). */
void catalog_stop(struct hls *h);

/* Redis went up or down (main's state callback). */
void catalog_redis_state(struct hls *h, bool up);

#endif
