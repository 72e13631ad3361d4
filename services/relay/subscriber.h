/* Subscribers: SUBSCRIBE (at once, or waiting for the stream to go live),
 * where each starts (the GOP cache, or the next keyframe), which frames go
 * into its queue (policy.c's admit_media), and the cut-off of one that stays
 * behind.
 *
 * A subscriber's queue is bounded by max-queue bytes. Media is admitted only
 * while it fits within the bound less a small reserve kept for the control
 * frames that must always get through (PUBLISH, EOS, ERROR).
 */
#ifndef RELAY_SUBSCRIBER_H
#define RELAY_SUBSCRIBER_H

#include <stdint.h>

#include "relay-t.h"

#define CONTROL_RESERVE 4096      /* bytes of max-queue kept for control frames */

/* A SUBSCRIBE the session allowed. */
void subscriber_request(struct conn *c, const struct slp_frame *f);

/* The stream has a new publisher (its first, or another): the subscriber
 * gets its PUBLISH, and starts or resumes at its first keyframe. */
void subscriber_publisher_changed(struct conn *c, struct stream *s);

/* Queues the MEDIA frame <m> if the subscriber's phase and queue allow. */
void subscriber_deliver(struct conn *c, struct chunk *m, int64_t now_ms);

/* The wait of a waiting subscriber, and the cut-off of one whose queue has
 * not emptied for slow-timeout. Returns 0, or -1 if <c> is being closed. */
int subscriber_tick(struct conn *c, int64_t now_ms);

#endif
