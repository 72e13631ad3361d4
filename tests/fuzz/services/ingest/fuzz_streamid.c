/* libFuzzer harness for the StreamID grammar (services/ingest/streamid.c),
 * the bytes an SRT caller controls. The parser must never read out of bounds,
 * and keep its promises: a parsed StreamID has a valid stream name, a
 * credential of at most 200 visible bytes and a known mode; the redaction
 * masks every s= value and always terminates its output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/ingest/streamid.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy exactly <size> bytes long, so ASan sees any overread */
    char *s = malloc(size ? size : 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    struct streamid sid;
    const char *why = NULL;
    if (streamid_parse(s, size, &sid, &why) == 0) {
        check(stream_name_valid(sid.stream));
        size_t clen = strlen(sid.cred);
        check(clen >= 1 && clen <= STREAMID_CRED_MAX);
        for (size_t i = 0; i < clen; i++)
            check(sid.cred[i] >= 0x21 && sid.cred[i] <= 0x7e);
        check(sid.mode == STREAMID_PUBLISH || sid.mode == STREAMID_REQUEST);
        check(strlen(sid.user) <= STREAMID_USER_MAX);
        enum cred_kind k = cred_kind(sid.cred, clen);
        check(k == CRED_INVALID || clen >= 3 + CRED_BODY_MIN);
        /* no credential reaches the redacted text: every "s=" in it is
         * followed by the mask, or by part of it where escaping made the
         * text too long and it was cut short with "..." */
        char out[1200];
        streamid_redact(s, size, out, sizeof(out));
        for (const char *p = strstr(out, "s="); p != NULL; p = strstr(p + 2, "s=")) {
            size_t stars = strspn(p + 2, "*");
            check(stars >= 3 || strcmp(p + 2 + stars, "...") == 0);
        }
    } else {
        check(why != NULL && strlen(why) > 0);
    }
    char small[16];
    streamid_redact(s, size, small, sizeof(small));
    check(strlen(small) < sizeof(small));
    cred_kind(s, size);
    free(s);
    return 0;
}
