/* Playlist target-duration parser: see playlist.h. */
#include "playlist.h"

#include <stdbool.h>
#include <string.h>

static const char TAG[] = "#EXT-X-TARGETDURATION:";
#define TAG_LEN (sizeof(TAG) - 1)

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Parses the value from <p> to <end> (the end of its line). */
static int parse_value(const char *p, const char *end, int64_t *ms)
{
    int64_t secs = 0, frac = 0;
    int ndigits = 0, nfrac = 0;
    while (p < end && is_digit(*p)) {
        if (++ndigits > 6)
            return -1;
        secs = secs * 10 + (*p++ - '0');
    }
    if (ndigits == 0)
        return -1;
    if (p < end && *p == '.') {
        p++;
        while (p < end && is_digit(*p)) {
            if (nfrac < 3) {
                frac = frac * 10 + (*p - '0');
                nfrac++;
            }
            p++;
        }
    }
    while (nfrac++ < 3)
        frac *= 10;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    if (p != end)
        return -1;
    int64_t v = secs * 1000 + frac;
    if (v <= 0 || v > (int64_t)PLAYLIST_TARGET_MAX_S * 1000)
        return -1;
    *ms = v;
    return 0;
}

static const char ENDLIST[] = "#EXT-X-ENDLIST";
#define ENDLIST_LEN (sizeof(ENDLIST) - 1)

/* True if the line from <p> to <eol> is <tag> followed by blanks only. */
static bool line_is(const char *p, const char *eol, const char *tag, size_t tag_len)
{
    if ((size_t)(eol - p) < tag_len || memcmp(p, tag, tag_len) != 0)
        return false;
    for (p += tag_len; p < eol; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r')
            return false;
    }
    return true;
}

int playlist_target_duration(const char *buf, size_t len, int64_t *ms)
{
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) >= TAG_LEN && memcmp(p, TAG, TAG_LEN) == 0)
            return parse_value(p + TAG_LEN, eol, ms);
        p = eol + 1;
    }
    return -1;
}

bool playlist_ended(const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if (line_is(p, eol, ENDLIST, ENDLIST_LEN))
            return true;
        p = eol + 1;
    }
    return false;
}
