/* The relay's decisions: see policy.h. */
#include "policy.h"

#include <stdbool.h>
#include <string.h>

#include "sluice/slp-t.h"

enum admit admit_media(enum sub_phase *phase, uint16_t flags, size_t queued, size_t size,
                       size_t limit)
{
    bool key = (flags & SLP_F_KEYFRAME) != 0;
    bool fits = queued <= limit && size <= limit - queued;
    switch (*phase) {
    case SUB_START:
        if (!key || !fits)
            return ADMIT_SKIP;
        *phase = SUB_LIVE;
        return ADMIT_SEND;
    case SUB_LIVE:
        if (fits)
            return ADMIT_SEND;
        *phase = SUB_GAP;
        return ADMIT_GAP;
    case SUB_GAP:
        if (!key || !fits)
            return ADMIT_DROP;
        *phase = SUB_LIVE;
        return (flags & SLP_F_DISCONTINUITY) ? ADMIT_SEND : ADMIT_SEND_DISC;
    }
    return ADMIT_SKIP;
}

void admit_publisher_changed(enum sub_phase *phase)
{
    if (*phase == SUB_LIVE)
        *phase = SUB_GAP;
}

enum publish_verdict publish_decide(enum lease_answer answer, const char *holder,
                                    const char *id, const char *known)
{
    switch (answer) {
    case LEASE_ANSWER_HOLDER:
        return holder != NULL && strcmp(holder, id) == 0 ? PUBLISH_ACCEPT : PUBLISH_CONFLICT;
    case LEASE_ANSWER_NONE:
        return PUBLISH_CONFLICT;
    case LEASE_ANSWER_ERROR:
        break;
    }
    return known != NULL && strcmp(known, id) == 0 ? PUBLISH_ACCEPT : PUBLISH_UNAVAILABLE;
}

enum publisher_change publisher_change(const char *current, const char *id)
{
    if (current == NULL)
        return CHANGE_NEW;
    return strcmp(current, id) == 0 ? CHANGE_RECONNECT : CHANGE_TAKEOVER;
}

const char *sub_phase_name(enum sub_phase p)
{
    switch (p) {
    case SUB_START: return "starting";
    case SUB_LIVE:  return "live";
    case SUB_GAP:   return "dropping";
    }
    return "?";
}

const char *publisher_change_name(enum publisher_change c)
{
    switch (c) {
    case CHANGE_NEW:       return "new";
    case CHANGE_RECONNECT: return "reconnect";
    case CHANGE_TAKEOVER:  return "takeover";
    }
    return "?";
}
