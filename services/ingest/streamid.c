/* The StreamID grammar: see streamid.h. */
#include "streamid.h"

#include <string.h>

#include "sluice/log.h"

#define PREFIX "#!::"
#define PREFIX_LEN 4

/* The keys, as bits, so that a repeated one is caught with one test. */
enum { K_R = 1, K_S = 2, K_M = 4, K_U = 8, K_H = 16, K_T = 32 };

static bool visible(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (v[i] < 0x21 || v[i] > 0x7e)
            return false;
    }
    return true;
}

static bool equals(const char *v, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(v, word, len) == 0;
}

static unsigned key_bit(const char *k, size_t len)
{
    if (len != 1)
        return 0;
    switch (k[0]) {
    case 'r': return K_R;
    case 's': return K_S;
    case 'm': return K_M;
    case 'u': return K_U;
    case 'h': return K_H;
    case 't': return K_T;
    default: return 0;
    }
}

/* Stores the value of key <bit>. Returns 0, or -1 with *<why>. */
static int take_value(struct streamid *out, unsigned bit, const char *v, size_t len,
                      const char **why)
{
    switch (bit) {
    case K_R:
        if (!stream_name_validn(v, len))
            return *why = "r: not a stream name ([A-Za-z0-9_-]{1,64})", -1;
        memcpy(out->stream, v, len);
        out->stream[len] = '\0';
        return 0;
    case K_S:
        if (len > STREAMID_CRED_MAX)
            return *why = "s: too long", -1;
        memcpy(out->cred, v, len);
        out->cred[len] = '\0';
        return 0;
    case K_M:
        if (equals(v, len, "publish"))
            out->mode = STREAMID_PUBLISH;
        else if (equals(v, len, "request"))
            out->mode = STREAMID_REQUEST;
        else
            return *why = "m: want publish or request", -1;
        return 0;
    case K_U:
        if (len > STREAMID_USER_MAX)
            return *why = "u: too long", -1;
        memcpy(out->user, v, len);
        out->user[len] = '\0';
        return 0;
    case K_H:
        return 0;
    case K_T:
        return equals(v, len, "stream") ? 0 : (*why = "t: only stream is served", -1);
    }
    return *why = "unknown key", -1;
}

/* Parses one "key=value" of <len> bytes. Returns 0, or -1 with *<why>. */
static int take_pair(struct streamid *out, unsigned *seen, const char *p, size_t len,
                     const char **why)
{
    const char *eq = memchr(p, '=', len);
    if (eq == NULL)
        return *why = "a pair without '='", -1;
    size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
    unsigned bit = key_bit(p, klen);
    if (bit == 0)
        return *why = "unknown key (want r, s, m; u, h, t)", -1;
    if (*seen & bit)
        return *why = "a key given twice", -1;
    *seen |= bit;
    if (vlen == 0)
        return *why = "an empty value", -1;
    if (!visible(eq + 1, vlen))
        return *why = "a value with spaces or control bytes", -1;
    return take_value(out, bit, eq + 1, vlen, why);
}

int streamid_parse(const char *s, size_t len, struct streamid *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (len > STREAMID_MAX)
        return *why = "longer than 512 bytes", -1;
    if (len < PREFIX_LEN || memcmp(s, PREFIX, PREFIX_LEN) != 0)
        return *why = "does not start with #!::", -1;
    unsigned seen = 0;
    const char *p = s + PREFIX_LEN, *end = s + len;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if (take_pair(out, &seen, p, (size_t)(stop - p), why) == -1)
            return -1;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    if ((seen & (K_R | K_S | K_M)) != (K_R | K_S | K_M))
        return *why = (seen & K_R) == 0 ? "r= is missing" : (seen & K_S) == 0 ? "s= is missing"
                                                                              : "m= is missing",
               -1;
    return 0;
}

static bool base64url(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

enum cred_kind cred_kind(const char *s, size_t len)
{
    if (len < 3 + CRED_BODY_MIN || len > 3 + CRED_BODY_MAX)
        return CRED_INVALID;
    for (size_t i = 3; i < len; i++) {
        if (!base64url(s[i]))
            return CRED_INVALID;
    }
    if (memcmp(s, "sk_", 3) == 0)
        return CRED_KEY;
    if (memcmp(s, "ss_", 3) == 0)
        return CRED_SESSION;
    return CRED_INVALID;
}

const char *streamid_mode_name(enum streamid_mode m)
{
    return m == STREAMID_PUBLISH ? "publish" : "request";
}

char *streamid_redact(const char *s, size_t len, char *out, size_t outlen)
{
    char masked[2 * STREAMID_MAX + 8];     /* a mask at most doubles its input */
    size_t n = 0, i = 0;
    if (len > STREAMID_MAX)
        len = STREAMID_MAX;
    while (i < len) {
        /* "s=" anywhere, or what looks like a key or session id, is masked
         * up to the next ',' */
        bool value = i + 1 < len && s[i] == 's' && s[i + 1] == '=';
        bool secret = i + 2 < len && s[i] == 's' && (s[i + 1] == 'k' || s[i + 1] == 's') &&
                      s[i + 2] == '_';
        if (value || secret) {
            memcpy(masked + n, value ? "s=***" : "***", value ? 5 : 3);
            n += value ? 5 : 3;
            while (i < len && s[i] != ',')
                i++;
            continue;
        }
        masked[n++] = s[i++];
    }
    return log_escape(out, outlen, masked, n);
}
