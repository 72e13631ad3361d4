/* Conditional and partial requests: see cond.h. */
#include "cond.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Reads a decimal number of at most 18 digits. Returns the end, or NULL. */
static const char *number(const char *p, uint64_t *v)
{
    const char *start = p;
    *v = 0;
    while (*p >= '0' && *p <= '9') {
        if (p - start >= 18)
            return NULL;
        *v = *v * 10 + (uint64_t)(*p++ - '0');
    }
    return p == start ? NULL : p;
}

enum range_result range_parse(const char *value, uint64_t size, uint64_t *off,
                              uint64_t *len)
{
    if (value == NULL)
        return RANGE_NONE;
    const char *p = skip_ows(value);
    if (strncasecmp(p, "bytes", 5) != 0)
        return RANGE_NONE;
    p = skip_ows(p + 5);
    if (*p++ != '=')
        return RANGE_NONE;
    p = skip_ows(p);
    uint64_t first = 0, last = 0;
    bool suffix = *p == '-', open_end = false;
    if (suffix) {
        if ((p = number(p + 1, &last)) == NULL)
            return RANGE_NONE;
    } else {
        if ((p = number(p, &first)) == NULL || *p++ != '-')
            return RANGE_NONE;
        open_end = !(*p >= '0' && *p <= '9');
        if (!open_end && (p = number(p, &last)) == NULL)
            return RANGE_NONE;
    }
    if (*skip_ows(p) != '\0')
        return RANGE_NONE;   /* several ranges, or trailing bytes */
    if (suffix) {
        if (last == 0 || size == 0)
            return RANGE_UNSATISFIABLE;
        *len = last < size ? last : size;
        *off = size - *len;
        return RANGE_OK;
    }
    if (!open_end && last < first)
        return RANGE_NONE;   /* invalid: ignored */
    if (first >= size)
        return RANGE_UNSATISFIABLE;
    if (open_end || last >= size)
        last = size - 1;
    *off = first;
    *len = last - first + 1;
    return RANGE_OK;
}

/* The opaque part of an entity tag (without W/), as a pointer and length. */
static void opaque(const char *tag, size_t len, const char **p, size_t *n)
{
    if (len >= 2 && tag[0] == 'W' && tag[1] == '/') {
        tag += 2;
        len -= 2;
    }
    *p = tag;
    *n = len;
}

bool etag_list_match(const char *list, const char *etag)
{
    if (list == NULL || etag == NULL || etag[0] == '\0')
        return false;
    const char *want;
    size_t wantlen;
    opaque(etag, strlen(etag), &want, &wantlen);
    const char *p = list;
    while (*p) {
        p = skip_ows(p);
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        size_t len = (size_t)(last - p);
        if (len == 1 && *p == '*')
            return true;
        const char *tag;
        size_t taglen;
        opaque(p, len, &tag, &taglen);
        if (taglen == wantlen && taglen > 0 && memcmp(tag, want, taglen) == 0)
            return true;
        p = *end ? end + 1 : end;
    }
    return false;
}

bool if_range_allows(const char *if_range, const char *etag, const char *last_modified)
{
    if (if_range == NULL)
        return true;
    if (if_range[0] == '"')   /* an entity tag: strong comparison */
        return etag[0] == '"' && strcmp(if_range, etag) == 0;
    return last_modified[0] != '\0' && strcmp(if_range, last_modified) == 0;
}
