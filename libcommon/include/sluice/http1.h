/* A small HTTP/1.x request-head parser for servers that answer GET and HEAD
 * (the edge's viewer port): pure functions over bytes, no I/O, no allocation,
 * fuzzed in tests/fuzz/libcommon/fuzz_http1.c.
 *
 * Strict where a lenient reading could be abused (request smuggling, header
 * injection): tokens and field values are checked byte by byte, obsolete line
 * folding and a space before a header's colon are refused, two Content-Length
 * fields are refused. Lenient where the RFC says to be: empty lines before a
 * request line are skipped, and a bare LF ends a line as CRLF does.
 */
#ifndef SLUICE_HTTP1_H
#define SLUICE_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP1_MAX_LINE 16384      /* request line, else 414 */
#define HTTP1_MAX_HEAD 16384      /* request line and headers, else 431 */
#define HTTP1_MAX_HEADERS 48      /* header fields, else 431 */

enum http1_method { HTTP1_GET, HTTP1_HEAD, HTTP1_OPTIONS, HTTP1_OTHER };

struct http1_header {
    const char *name;    /* in the parsed buffer, not NUL-terminated */
    size_t name_len;
    const char *value;   /* without surrounding blanks */
    size_t value_len;
};

struct http1_request {
    enum http1_method method;
    const char *target;          /* the request target as sent */
    size_t target_len;
    int minor;                   /* HTTP/1.<minor>: 0 or 1 */
    bool keep_alive;             /* per version and Connection */
    bool has_body;               /* Content-Length > 0, or Transfer-Encoding */
    size_t nheaders;
    struct http1_header headers[HTTP1_MAX_HEADERS];
};

/* Parses the request head at the start of <buf> (<len> bytes). Returns the
 * head's length, empty lines before it and its final blank line included
 * (> 0), 0 when more bytes are needed, or minus an HTTP status:
 *   -400 malformed   -414 request line over HTTP1_MAX_LINE
 *   -431 head over HTTP1_MAX_HEAD, or too many fields
 *   -505 a version other than HTTP/1.0 and HTTP/1.1
 * <r> is filled on success; its pointers point into <buf>. */
int http1_parse(const char *buf, size_t len, struct http1_request *r);

/* The value of header <name> (case-insensitive) in <r>, with its length in
 * *<vlen>, or NULL. The first one wins. */
const char *http1_header(const struct http1_request *r, const char *name, size_t *vlen);

/* Decodes the path of an origin-form <target> (<len> bytes: up to a '?' or
 * '#'; of an absolute-form one, "http://host/path", the path) into <out> as a C string of '/'-separated, percent-decoded segments.
 * Refuses (returns -1) a target not starting with '/', a path over <max_path>
 * raw bytes or more than <max_segments> segments, a "." or ".." segment, and
 * a segment that decodes to contain '/' or NUL. Returns the decoded length.
 * <outlen> must be at least the path's length plus one. */
int http1_path_decode(const char *target, size_t len, char *out, size_t outlen,
                      size_t max_path, size_t max_segments);

#endif
