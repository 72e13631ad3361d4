/* HTTP/1.x request-head parser: see http1.h. */
#include "sluice/http1.h"

#include <string.h>
#include <strings.h>

/* tchar of RFC 9110: ALPHA, DIGIT and these. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar, SP or HTAB (obs-text included). */
static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The end of the line starting at <p> (the '\n'), or NULL. */
static const char *line_end(const char *p, const char *end)
{
    return memchr(p, '\n', (size_t)(end - p));
}

/* The line's last content byte + 1: before "\r\n" or "\n". */
static const char *content_end(const char *start, const char *nl)
{
    return nl > start && nl[-1] == '\r' ? nl - 1 : nl;
}

static enum http1_method method_of(const char *m, size_t n)
{
    if (n == 3 && memcmp(m, "GET", 3) == 0)
        return HTTP1_GET;
    if (n == 4 && memcmp(m, "HEAD", 4) == 0)
        return HTTP1_HEAD;
    if (n == 7 && memcmp(m, "OPTIONS", 7) == 0)
        return HTTP1_OPTIONS;
    return HTTP1_OTHER;
}

/* "METHOD SP target SP HTTP/1.x" in [<p>, <e>). Returns 0 or -status. */
static int request_line(const char *p, const char *e, struct http1_request *r)
{
    const char *m = p;
    while (p < e && is_tchar((unsigned char)*p))
        p++;
    if (p == m || p == e || *p != ' ')
        return -400;
    r->method = method_of(m, (size_t)(p - m));
    const char *t = ++p;
    while (p < e && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f)
        p++;
    if (p == t || p == e || *p != ' ')
        return -400;
    r->target = t;
    r->target_len = (size_t)(p - t);
    p++;
    if (e - p != 8 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' ||
        p[6] != '.' || p[7] < '0' || p[7] > '9')
        return -400;
    if (p[5] != '1' || p[7] > '1')
        return -505;
    r->minor = p[7] - '0';
    return 0;
}

/* One "name: value" line in [<p>, <e>). Returns 0 or -status. */
static int header_line(const char *p, const char *e, struct http1_request *r)
{
    const char *n = p;
    while (p < e && is_tchar((unsigned char)*p))
        p++;
    if (p == n || p == e || *p != ':')
        return -400;   /* no name, a blank before the colon, a folded line */
    size_t name_len = (size_t)(p - n);
    p++;
    while (p < e && is_ows(*p))
        p++;
    while (e > p && is_ows(e[-1]))
        e--;
    for (const char *c = p; c < e; c++) {
        if (!is_field_char((unsigned char)*c))
            return -400;
    }
    if (r->nheaders == HTTP1_MAX_HEADERS)
        return -431;
    r->headers[r->nheaders++] = (struct http1_header){ n, name_len, p, (size_t)(e - p) };
    return 0;
}

static bool name_is(const struct http1_header *h, const char *name)
{
    return strlen(name) == h->name_len && strncasecmp(h->name, name, h->name_len) == 0;
}

/* Whether the comma-separated list <v> holds <token> (case-insensitive). */
static bool list_has(const char *v, size_t len, const char *token)
{
    size_t tlen = strlen(token), i = 0;
    while (i < len) {
        while (i < len && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t s = i;
        while (i < len && v[i] != ',' && !is_ows(v[i]))
            i++;
        if (i - s == tlen && strncasecmp(v + s, token, tlen) == 0)
            return true;
        while (i < len && v[i] != ',')
            i++;
    }
    return false;
}

/* Content-Length, Transfer-Encoding and Connection. Returns 0 or -400. */
static int framing(struct http1_request *r)
{
    bool close = false, keep = false, te = false, cl_seen = false;
    unsigned long long cl = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct http1_header *h = &r->headers[i];
        if (name_is(h, "Connection")) {
            close |= list_has(h->value, h->value_len, "close");
            keep |= list_has(h->value, h->value_len, "keep-alive");
        } else if (name_is(h, "Transfer-Encoding")) {
            te = true;
        } else if (name_is(h, "Content-Length")) {
            if (cl_seen || h->value_len == 0 || h->value_len > 18)
                return -400;
            cl_seen = true;
            for (size_t k = 0; k < h->value_len; k++) {
                if (h->value[k] < '0' || h->value[k] > '9')
                    return -400;
                cl = cl * 10 + (unsigned)(h->value[k] - '0');
            }
        }
    }
    if (te && cl_seen)
        return -400;   /* the classic smuggling pair */
    r->has_body = te || cl > 0;
    r->keep_alive = r->minor == 1 ? !close : keep && !close;
    return 0;
}

/* Whether an unfinished request line at <p> cannot become a valid one: it does
 * not start with a method (TLS or other protocols spoken at us), so the answer
 * need not wait for a line end that may never come. */
static bool garbage(const char *p, const char *end)
{
    while (p < end && is_tchar((unsigned char)*p))
        p++;
    return p < end && *p != ' ';
}

int http1_parse(const char *buf, size_t len, struct http1_request *r)
{
    const char *p = buf, *end = buf + len;
    while (p < end && (*p == '\r' || *p == '\n') && p - buf < 64)
        p++;
    const char *nl = line_end(p, end);
    if (nl == NULL && garbage(p, end))
        return -400;
    if (nl == NULL)
        return end - p > HTTP1_MAX_LINE ? -414 : len > HTTP1_MAX_HEAD ? -431 : 0;
    const char *ce = content_end(p, nl);
    if (ce - p > HTTP1_MAX_LINE)
        return -414;
    r->nheaders = 0;
    int rc = request_line(p, ce, r);
    if (rc != 0)
        return rc;
    for (p = nl + 1;; p = nl + 1) {
        nl = line_end(p, end);
        if (nl == NULL)
            return len > HTTP1_MAX_HEAD ? -431 : 0;
        if (nl + 1 - buf > HTTP1_MAX_HEAD)
            return -431;
        ce = content_end(p, nl);
        if (ce == p)
            break;
        if ((rc = header_line(p, ce, r)) != 0)
            return rc;
    }
    if ((rc = framing(r)) != 0)
        return rc;
    return (int)(nl + 1 - buf);
}

const char *http1_header(const struct http1_request *r, const char *name, size_t *vlen)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (name_is(&r->headers[i], name)) {
            *vlen = r->headers[i].value_len;
            return r->headers[i].value;
        }
    }
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the segment [<s>, <e>) to <out>. Returns its length, or -1 when it
 * decodes to contain '/' or NUL. */
static int segment_decode(const char *s, const char *e, char *out)
{
    char *o = out;
    while (s < e) {
        int hi, lo;
        if (*s == '%' && e - s >= 3 && (hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0) {
            char c = (char)(hi << 4 | lo);
            if (c == '/' || c == '\0')
                return -1;
            *o++ = c;
            s += 3;
        } else {
            *o++ = *s++;
        }
    }
    return (int)(o - out);
}

/* The length of the "http://authority" before the path of an absolute-form
 * <target>, or 0 for any other form. */
static size_t absolute_prefix(const char *target, size_t len)
{
    size_t scheme = len >= 7 && strncasecmp(target, "http://", 7) == 0 ? 7
                  : len >= 8 && strncasecmp(target, "https://", 8) == 0 ? 8 : 0;
    if (scheme == 0)
        return 0;
    size_t i = scheme;
    while (i < len && target[i] != '/' && target[i] != '?' && target[i] != '#')
        i++;
    return i;
}

int http1_path_decode(const char *target, size_t len, char *out, size_t outlen,
                      size_t max_path, size_t max_segments)
{
    size_t skip = absolute_prefix(target, len);
    if (skip > 0 && (skip == len || target[skip] != '/')) {
        if (outlen < 2)
            return -1;
        memcpy(out, "/", 2);   /* "http://host" or "http://host?q": the root */
        return 1;
    }
    target += skip;
    len -= skip;
    const char *end = target;
    while (end < target + len && *end != '?' && *end != '#')
        end++;
    size_t plen = (size_t)(end - target);
    if (plen == 0 || target[0] != '/' || plen > max_path || outlen < plen + 1)
        return -1;
    size_t o = 0, nseg = 0;
    for (const char *s = target + 1;;) {
        const char *slash = memchr(s, '/', (size_t)(end - s));
        const char *e = slash ? slash : end;
        if (++nseg > max_segments)
            return -1;
        out[o++] = '/';
        int n = segment_decode(s, e, out + o);
        if (n == -1 || (n == 1 && out[o] == '.') ||
            (n == 2 && out[o] == '.' && out[o + 1] == '.'))
            return -1;
        o += (size_t)n;
        if (slash == NULL)
            break;
        s = slash + 1;
    }
    out[o] = '\0';
    return (int)o;
}
