/* Unpadded base64: see b64.h. */
#include "b64.h"

static const char std_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int b64_encode(const uint8_t *src, size_t len, char *dst, size_t dstlen, bool url)
{
    const char *a = url ? url_alpha : std_alpha;
    size_t need = B64_ENCODED_LEN(len);
    if (dstlen < need + 1)
        return -1;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        dst[o++] = a[v >> 18];
        dst[o++] = a[(v >> 12) & 63];
        dst[o++] = a[(v >> 6) & 63];
        dst[o++] = a[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)src[i] << 16;
        dst[o++] = a[v >> 18];
        dst[o++] = a[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8;
        dst[o++] = a[v >> 18];
        dst[o++] = a[(v >> 12) & 63];
        dst[o++] = a[(v >> 6) & 63];
    }
    dst[o] = '\0';
    return (int)o;
}

/* The 6-bit value of <c>, or -1. */
static int sextet(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

int b64_decode(const char *src, size_t len, uint8_t *dst, size_t dstlen, bool url)
{
    if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > dstlen)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = sextet(src[i], url);
        if (v == -1)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (uint8_t)(acc >> bits);
        }
        acc &= (1u << bits) - 1;
    }
    if (acc != 0)   /* leftover bits must be zero: one canonical encoding */
        return -1;
    return (int)o;
}
