/* SLP over libevent evbuffers: the thin, impure glue around the pure codec
 * of slp.c. See slp.h. */
#include "sluice/slp.h"

#include <stdarg.h>
#include <stdio.h>

#include <event2/buffer.h>

static enum slp_status invalid(struct slp_frame *f, enum slp_error code, const char *why)
{
    f->error = code;
    f->why = why;
    return SLP_INVALID;
}

enum slp_status slp_evbuffer_peek(struct evbuffer *in, struct slp_frame *f)
{
    uint8_t hdr[SLP_HEADER_LEN];
    ev_ssize_t n = evbuffer_copyout(in, hdr, sizeof(hdr));
    enum slp_status st = slp_decode_header(hdr, n > 0 ? (size_t)n : 0, f);
    if (st == SLP_OK && evbuffer_get_length(in) < f->size)
        return SLP_NEED_MORE;
    return st;
}

enum slp_status slp_evbuffer_take(struct evbuffer *in, uint8_t *buf, size_t cap,
                                  struct slp_frame *f)
{
    enum slp_status st = slp_evbuffer_peek(in, f);
    if (st != SLP_OK)
        return st;
    if (f->size > cap)
        return invalid(f, SLP_E_INTERNAL, "frame larger than the caller's buffer");
    if (evbuffer_remove(in, buf, f->size) != (int)f->size)
        return invalid(f, SLP_E_INTERNAL, "evbuffer_remove failed");
    return slp_decode(buf, f->size, f);
}

int slp_evbuffer_add(struct evbuffer *out, const struct slp_frame *f)
{
    if (f->type == SLP_MEDIA) {
        uint8_t hdr[SLP_MEDIA_HEADER_LEN];
        if (slp_check(f, NULL) != SLP_E_NONE ||
            slp_encode_media_header(hdr, f->flags, f->media.pts, f->media.wall_us,
                                    f->media.ts_len) == 0)
            return -1;
        if (evbuffer_expand(out, sizeof(hdr) + f->media.ts_len) == -1 ||
            evbuffer_add(out, hdr, sizeof(hdr)) == -1)
            return -1;
        return evbuffer_add(out, f->media.ts, f->media.ts_len);
    }
    uint8_t buf[SLP_HEADER_LEN + SLP_MAX_CONTROL];
    size_t n = slp_encode(buf, sizeof(buf), f);
    if (n == 0)
        return -1;
    return evbuffer_add(out, buf, n);
}

int slp_evbuffer_add_error(struct evbuffer *out, enum slp_error code, const char *fmt, ...)
{
    char text[SLP_TEXT_MAX + 1];
    if (fmt == NULL) {
        snprintf(text, sizeof(text), "%s", slp_error_text(code) ? slp_error_text(code) : "");
    } else {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
    }
    struct slp_frame f = { .type = SLP_ERROR, .err = { (uint16_t)code, slp_cstr(text) } };
    return slp_evbuffer_add(out, &f);
}
