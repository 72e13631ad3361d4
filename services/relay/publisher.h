/* Publishers: the PUBLISH decision (the publish lease, looked up in Redis
 * without blocking; policy.c's publish_decide), then MEDIA into the stream,
 * and EOS, which ends it.
 *
 * While the lookup is out the connection is CONN_DECIDING: it may PING, and
 * anything else it sends (MEDIA before ACCEPT) is refused by the session.
 * If it goes away meanwhile, the answer finds nobody and is dropped.
 */
#ifndef RELAY_PUBLISHER_H
#define RELAY_PUBLISHER_H

#include "relay-t.h"

/* A PUBLISH the session allowed. */
void publisher_request(struct conn *c, const struct slp_frame *f);

/* A MEDIA frame (in the chunk <m>, which the caller keeps its reference to). */
void publisher_media(struct conn *c, struct chunk *m);

/* An EOS: the stream ends for its subscribers, who get this EOS. */
void publisher_eos(struct conn *c, const struct slp_frame *f);

/* <c> is closing: forgets its lease lookup and its PUBLISH. */
void publisher_forget(struct conn *c);

#endif
