/* libFuzzer: everything sluice-hls reads from Redis, which any process with
 * access may have written: the packaging state (sluice:hls:<name>), the
 * relay's stream record and the events. The first byte picks the parser.
 * What a parser accepts must be in range, and a state must format and parse
 * back to the same thing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/hls/pstate.h"
#include "../../../../services/hls/records.h"

static void check_state(const uint8_t *data, size_t size)
{
    struct pstate st;
    char why[200];
    if (pstate_parse((const char *)data, size, &st, why, sizeof(why)) == -1) {
        if (why[0] == '\0')
            abort();
        return;
    }
    if (st.epoch < 1 || st.epoch > PSTATE_EPOCH_MAX || strlen(st.owner) > PSTATE_OWNER_MAX)
        abort();
    if (st.has_segment && (st.target_duration < 1 || st.target_duration > 60 ||
                           st.media_sequence > PSTATE_SEQ_MAX || st.last_pdt_us < 0 ||
                           st.end_pts < -1))
        abort();
    char *json = pstate_format(&st, 1795252800000000);
    if (json == NULL)
        abort();
    struct pstate back;
    if (pstate_parse(json, strlen(json), &back, why, sizeof(why)) == -1 ||
        memcmp(&st, &back, sizeof(st)) != 0)
        abort();
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char why[200];
    const char *p = (const char *)data + 1;
    switch (data[0] % 3) {
    case 0:
        check_state(data + 1, size - 1);
        break;
    case 1: {
        struct stream_record r;
        if (records_stream_parse(p, size - 1, &r, why, sizeof(why)) == 0 &&
            (!stream_name_valid(r.name) || strchr(r.relay, ':') == NULL))
            abort();
        break;
    }
    default: {
        struct event_msg ev;
        if (records_event_parse(p, size - 1, &ev, why, sizeof(why)) == 0 && ev.type != EV_OTHER &&
            !stream_name_valid(ev.stream))
            abort();
        break;
    }
    }
    return 0;
}
