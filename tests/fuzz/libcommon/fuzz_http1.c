/* libFuzzer harness: the HTTP/1.x request-head parser of the edge's viewer
 * port (peer input, byte for byte) and the path decoding after it. Whatever
 * the parser accepts must lie inside the input, carry no line break, NUL or
 * control byte where the edge would copy it into a reply or a log, and decode
 * to a path without dot segments or smuggled separators. */
#include <stdint.h>
#include <string.h>

#include "sluice/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const uint8_t *data, size_t size, const char *p, size_t len)
{
    if (p < (const char *)data || p + len > (const char *)data + size)
        __builtin_trap();
}

static void check_path(const struct http1_request *r)
{
    char out[HTTP1_MAX_LINE + 1];
    int n = http1_path_decode(r->target, r->target_len, out, sizeof(out), 2048, 32);
    if (n == -1)
        return;
    if ((size_t)n > r->target_len || strlen(out) != (size_t)n || out[0] != '/')
        __builtin_trap();
    for (char *seg = out + 1;;) {
        char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            __builtin_trap();
        if (slash == NULL)
            break;
        seg = slash + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http1_request r;
    int rc = http1_parse((const char *)data, size, &r);
    if (rc < 0 && rc != -400 && rc != -414 && rc != -431 && rc != -505)
        __builtin_trap();
    if (rc <= 0)
        return 0;
    if ((size_t)rc > size || (size_t)rc > HTTP1_MAX_HEAD || r.nheaders > HTTP1_MAX_HEADERS ||
        (r.minor != 0 && r.minor != 1) || r.target_len == 0)
        __builtin_trap();
    inside(data, (size_t)rc, r.target, r.target_len);
    for (size_t i = 0; i < r.target_len; i++) {
        if ((unsigned char)r.target[i] <= 0x20 || (unsigned char)r.target[i] == 0x7f)
            __builtin_trap();
    }
    for (size_t h = 0; h < r.nheaders; h++) {
        const struct http1_header *f = &r.headers[h];
        inside(data, (size_t)rc, f->name, f->name_len);
        inside(data, (size_t)rc, f->value, f->value_len);
        if (f->name_len == 0 || memchr(f->name, ':', f->name_len) != NULL)
            __builtin_trap();
        for (size_t i = 0; i < f->value_len; i++) {
            unsigned char c = (unsigned char)f->value[i];
            if (c == '\r' || c == '\n' || c == '\0')
                __builtin_trap();
        }
        size_t vlen;
        if (http1_header(&r, "Host", &vlen) != NULL && vlen > (size_t)rc)
            __builtin_trap();
    }
    check_path(&r);
    return 0;
}
