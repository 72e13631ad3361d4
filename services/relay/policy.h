/* The relay's decisions, as pure functions over plain values, so that each
 * rule is a row of a unit test:
 *  - which MEDIA frame a subscriber gets, given where it stands and how full
 *    its queue is (SLP.md section 9, rules 6 and 7);
 *  - whether a PUBLISH is accepted, given what Redis said about the lease
 *    (SLP.md section 6; DESIGN.md, the publish lease);
 *  - what a new publisher connection is to the stream it names.
 */
#ifndef RELAY_POLICY_H
#define RELAY_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* Where a subscriber stands in the stream. */
enum sub_phase {
    SUB_START,   /* nothing sent yet: it starts at the next KEYFRAME frame */
    SUB_LIVE,    /* it gets every frame */
    SUB_GAP,     /* frames were dropped (or the publisher changed): it resumes
                    at the next KEYFRAME frame, flagged DISCONTINUITY */
};

enum admit {
    ADMIT_SKIP,       /* not for this subscriber (it waits for a keyframe); not a drop */
    ADMIT_SEND,       /* queue the frame as it is */
    ADMIT_SEND_DISC,  /* queue it with DISCONTINUITY set */
    ADMIT_GAP,        /* the queue is full: drop it; a gap begins */
    ADMIT_DROP,       /* drop it: the gap goes on until a keyframe fits */
};

/* Decides for one subscriber in <*phase> (updated) whether the MEDIA frame
 * of <size> bytes with <flags> goes into its queue, which holds <queued>
 * bytes out of <limit>. A frame goes in only if the queue stays within the
 * limit; after a drop, nothing but a KEYFRAME frame (flagged DISCONTINUITY)
 * ends the gap, so a subscriber never gets a frame that does not follow the
 * one before it. */
enum admit admit_media(enum sub_phase *phase, uint16_t flags, size_t queued, size_t size,
                       size_t limit);

/* A publisher change: subscribers that were getting frames resume at the
 * new publisher's first keyframe, flagged DISCONTINUITY. */
void admit_publisher_changed(enum sub_phase *phase);

/* What Redis said about sluice:lease:publish:<name>. */
enum lease_answer {
    LEASE_ANSWER_HOLDER,   /* a value: the holder's id */
    LEASE_ANSWER_NONE,     /* no such key: nobody holds it */
    LEASE_ANSWER_ERROR,    /* Redis down, timed out or failed: unknown */
};

enum publish_verdict {
    PUBLISH_ACCEPT,
    PUBLISH_CONFLICT,      /* ERROR conflict: someone else (or nobody) holds the lease */
    PUBLISH_UNAVAILABLE,   /* ERROR unavailable: cannot tell now, and <id> is unknown */
};

/* The verdict on a PUBLISH by <id>, given the lease <answer> (<holder> for
 * LEASE_ANSWER_HOLDER) and <known>, the id of the publisher this relay has
 * for the stream (live, or lost and within its grace) or else the one it
 * last saw publishing it within known-publisher-ttl (known.h), or NULL. */
enum publish_verdict publish_decide(enum lease_answer answer, const char *holder,
                                    const char *id, const char *known);

/* What an accepted publisher is to its stream. */
enum publisher_change {
    CHANGE_NEW,        /* the stream had no publisher */
    CHANGE_RECONNECT,  /* the same publisher id again: its new connection replaces the old */
    CHANGE_TAKEOVER,   /* another publisher id: the lease passed to it */
};

/* <current>: the stream's publisher id (live or lost), or NULL. */
enum publisher_change publisher_change(const char *current, const char *id);

const char *sub_phase_name(enum sub_phase p);
const char *publisher_change_name(enum publisher_change c);

#endif
