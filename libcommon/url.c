/* Origin URL grammar: see url.h. */
#include "sluice/url.h"

#include <string.h>

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.';
}

static bool v6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') ||
           c == ':' || c == '.';
}

/* Checks ":port" (1 to 65535) spanning exactly <len> bytes at <p>. */
static bool port_valid(const char *p, size_t len)
{
    if (len < 2 || len > 6 || p[0] != ':')
        return false;
    unsigned v = 0;
    for (size_t i = 1; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

bool origin_url_valid(const char *s, size_t len)
{
    if (s == NULL || len < 8 || len > ORIGIN_URL_MAX || memcmp(s, "http://", 7) != 0)
        return false;
    const char *p = s + 7, *end = s + len;
    if (end[-1] == '/')
        end--;
    size_t i = 0, n = (size_t)(end - p);
    if (n > 0 && p[0] == '[') {
        for (i = 1; i < n && p[i] != ']'; i++) {
            if (!v6_char(p[i]))
                return false;
        }
        if (i == n || i < 3)
            return false;
        i++;   /* past ']' */
    } else {
        for (; i < n && p[i] != ':'; i++) {
            if (!host_char(p[i]))
                return false;
        }
        if (i == 0 || i > 253 || p[0] == '-' || p[0] == '.')
            return false;
    }
    return i == n || port_valid(p + i, n - i);
}

int origin_url_normalize(const char *s, size_t len, char *dst, size_t dstlen)
{
    if (!origin_url_valid(s, len))
        return -1;
    if (s[len - 1] == '/')
        len--;
    if (len + 1 > dstlen)
        return -1;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}
