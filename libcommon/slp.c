/* SLP codec, the pure part (no I/O, no allocation): see slp.h and
 * proto/SLP.md. The evbuffer glue is in slp_evbuffer.c.
 *
 * One validator (check_*) serves both directions: the decoder parses the
 * wire fields into a struct slp_frame and runs it, the encoder runs it before
 * writing. So the encoder can only produce what the decoder accepts.
 */
#include "sluice/slp.h"

#include <string.h>

#include "sluice/names.h"

#define MEDIA_FIXED (SLP_MEDIA_HEADER_LEN - SLP_HEADER_LEN)   /* pts + wall clock */

/* ------------------------------------------------------------------------ */
/* Names                                                                    */

const char *slp_type_name(unsigned type)
{
    switch (type) {
#define SLP_X_(sym, val, name) case (val): return (name);
    SLP_TYPES(SLP_X_)
#undef SLP_X_
    }
    return NULL;
}

const char *slp_error_name(unsigned code)
{
    switch (code) {
#define SLP_X_(sym, val, name, text) case (val): return (name);
    SLP_ERRORS(SLP_X_)
#undef SLP_X_
    }
    return NULL;
}

const char *slp_error_text(unsigned code)
{
    switch (code) {
#define SLP_X_(sym, val, name, text) case (val): return (text);
    SLP_ERRORS(SLP_X_)
#undef SLP_X_
    }
    return NULL;
}

const char *slp_eos_name(unsigned reason)
{
    switch (reason) {
#define SLP_X_(sym, val, name) case (val): return (name);
    SLP_EOS_REASONS(SLP_X_)
#undef SLP_X_
    }
    return NULL;
}

const char *slp_role_name(unsigned role)
{
    switch (role) {
    case SLP_ROLE_PUBLISHER: return "publisher";
    case SLP_ROLE_SUBSCRIBER: return "subscriber";
    case SLP_ROLE_RELAY: return "relay";
    }
    return NULL;
}

const char *slp_start_name(unsigned start)
{
    switch (start) {
    case SLP_START_KEYFRAME: return "keyframe";
    case SLP_START_LIVE: return "live";
    }
    return NULL;
}

int slp_start_parse(const char *s, enum slp_start *out)
{
    if (strcmp(s, "keyframe") == 0)
        *out = SLP_START_KEYFRAME;
    else if (strcmp(s, "live") == 0)
        *out = SLP_START_LIVE;
    else
        return -1;
    return 0;
}

struct slp_str slp_cstr(const char *s)
{
    struct slp_str r = { s ? s : "", s ? strlen(s) : 0 };
    return r;
}

bool slp_str_eq(struct slp_str s, const char *c)
{
    return strlen(c) == s.len && memcmp(s.p, c, s.len) == 0;
}

/* ------------------------------------------------------------------------ */
/* Validation, shared by the decoder and the encoder                        */

/* Bytes in [lo, hi], <len> within [min, max]. */
static bool chars_in(struct slp_str s, size_t min, size_t max, char lo, char hi)
{
    if (s.len < min || s.len > max || (s.len > 0 && s.p == NULL))
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < lo || s.p[i] > hi)
            return false;
    }
    return true;
}

/* Node and publisher ids: 1..128 visible ASCII (no space). */
static bool id_valid(struct slp_str s)
{
    return chars_in(s, 1, SLP_ID_MAX, '!', '~');
}

static bool protocol_valid(struct slp_str s)
{
    if (s.len < 1 || s.len > SLP_PROTOCOL_MAX)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

static bool text_valid(struct slp_str s)
{
    return s.len <= SLP_TEXT_MAX && (s.len == 0 || s.p != NULL);
}

#define REFUSE(code, reason) do { *why = (reason); return (code); } while (0)

static enum slp_error check_hello(const struct slp_hello *h, const char **why)
{
    if (h->role < SLP_ROLE_PUBLISHER || h->role > SLP_ROLE_RELAY)
        REFUSE(SLP_E_BAD_FRAME, "HELLO: unknown role");
    if (h->version < 1)
        REFUSE(SLP_E_BAD_FRAME, "HELLO: version 0");
    if (!id_valid(h->node))
        REFUSE(SLP_E_BAD_FRAME, "HELLO: bad node id");
    if (!chars_in(h->agent, 0, SLP_AGENT_MAX, ' ', '~'))
        REFUSE(SLP_E_BAD_FRAME, "HELLO: bad agent");
    return SLP_E_NONE;
}

static enum slp_error check_publish(const struct slp_publish *p, const char **why)
{
    if (!stream_name_validn(p->name.p, p->name.len))
        REFUSE(SLP_E_BAD_NAME, "PUBLISH: invalid stream name");
    if (!id_valid(p->publisher))
        REFUSE(SLP_E_BAD_FRAME, "PUBLISH: bad publisher id");
    if (!id_valid(p->node))
        REFUSE(SLP_E_BAD_FRAME, "PUBLISH: bad node id");
    if (!protocol_valid(p->protocol))
        REFUSE(SLP_E_BAD_FRAME, "PUBLISH: bad protocol");
    if (!chars_in(p->client, 0, SLP_CLIENT_MAX, '!', '~'))
        REFUSE(SLP_E_BAD_FRAME, "PUBLISH: bad client address");
    if (p->started_us < 0)
        REFUSE(SLP_E_BAD_FRAME, "PUBLISH: negative start time");
    return SLP_E_NONE;
}

static enum slp_error check_subscribe(const struct slp_subscribe *s, const char **why)
{
    if (!stream_name_validn(s->name.p, s->name.len))
        REFUSE(SLP_E_BAD_NAME, "SUBSCRIBE: invalid stream name");
    if (s->start != SLP_START_KEYFRAME && s->start != SLP_START_LIVE)
        REFUSE(SLP_E_BAD_FRAME, "SUBSCRIBE: unknown start mode");
    return SLP_E_NONE;
}

/* The parts of a MEDIA frame a header carries: checked by the header encoder
 * too, where the payload itself is not at hand. */
static enum slp_error check_media_fields(int64_t pts, int64_t wall_us, size_t ts_len,
                                         const char **why)
{
    if (ts_len == 0 || ts_len % SLP_TS_PACKET != 0)
        REFUSE(SLP_E_BAD_FRAME, "MEDIA: not a whole number of TS packets");
    if (ts_len > SLP_MEDIA_MAX_PACKETS * SLP_TS_PACKET)
        REFUSE(SLP_E_TOO_LARGE, "MEDIA: too many TS packets");
    if (pts < SLP_PTS_NONE || pts > SLP_PTS_MAX)
        REFUSE(SLP_E_BAD_FRAME, "MEDIA: PTS out of range");
    if (wall_us < 0)
        REFUSE(SLP_E_BAD_FRAME, "MEDIA: negative wall clock");
    return SLP_E_NONE;
}

static enum slp_error check_media(const struct slp_media *m, const char **why)
{
    enum slp_error e = check_media_fields(m->pts, m->wall_us, m->ts_len, why);
    if (e != SLP_E_NONE)
        return e;
    if (m->ts == NULL)
        REFUSE(SLP_E_BAD_FRAME, "MEDIA: no payload");
    for (size_t o = 0; o < m->ts_len; o += SLP_TS_PACKET) {
        if (m->ts[o] != 0x47)
            REFUSE(SLP_E_BAD_FRAME, "MEDIA: TS packet without sync byte");
    }
    return SLP_E_NONE;
}

enum slp_error slp_check(const struct slp_frame *f, const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = NULL;
    switch (f->type) {
    case SLP_HELLO: return check_hello(&f->hello, why);
    case SLP_PUBLISH: return check_publish(&f->publish, why);
    case SLP_SUBSCRIBE: return check_subscribe(&f->subscribe, why);
    case SLP_ACCEPT:
        if (f->accept.request != SLP_PUBLISH && f->accept.request != SLP_SUBSCRIBE)
            REFUSE(SLP_E_BAD_FRAME, "ACCEPT: not a PUBLISH or SUBSCRIBE");
        return SLP_E_NONE;
    case SLP_MEDIA: return check_media(&f->media, why);
    case SLP_EOS:
        if (!text_valid(f->eos.text))
            REFUSE(SLP_E_BAD_FRAME, "EOS: text too long");
        return SLP_E_NONE;
    case SLP_PING:
    case SLP_PONG:
        return SLP_E_NONE;
    case SLP_ERROR:
        if (f->err.code == SLP_E_NONE)
            REFUSE(SLP_E_BAD_FRAME, "ERROR: code 0");
        if (!text_valid(f->err.text))
            REFUSE(SLP_E_BAD_FRAME, "ERROR: text too long");
        return SLP_E_NONE;
    }
    REFUSE(SLP_E_UNKNOWN_TYPE, "unknown frame type");
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                 */

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* A read cursor over a frame body: running past the end sets <short_>, and
 * every later read then yields zeros, so a parse can check once at the end. */
struct cursor {
    const uint8_t *p;
    size_t left;
    bool short_;
};

static const uint8_t *take(struct cursor *c, size_t n)
{
    static const uint8_t zeros[8];
    if (c->short_ || n > c->left) {
        c->short_ = true;
        return n <= sizeof(zeros) ? zeros : NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

static uint8_t get_u8(struct cursor *c) { return take(c, 1)[0]; }
static uint16_t get_u16(struct cursor *c)
{
    const uint8_t *p = take(c, 2);
    return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t get_u32(struct cursor *c) { return get_be32(take(c, 4)); }
static uint64_t get_u64(struct cursor *c) { return get_be64(take(c, 8)); }

static struct slp_str get_str(struct cursor *c)
{
    struct slp_str s = { "", get_u8(c) };
    const uint8_t *p = take(c, s.len);
    if (c->short_)
        s.len = 0;
    else
        s.p = (const char *)p;
    return s;
}

/* Reads the body fields of <f->type> from <c> into <f>. */
static void parse_body(struct cursor *c, struct slp_frame *f)
{
    switch (f->type) {
    case SLP_HELLO:
        f->hello.role = get_u8(c);
        f->hello.version = get_u8(c);
        f->hello.node = get_str(c);
        f->hello.agent = get_str(c);
        break;
    case SLP_PUBLISH:
        f->publish.name = get_str(c);
        f->publish.publisher = get_str(c);
        f->publish.node = get_str(c);
        f->publish.protocol = get_str(c);
        f->publish.client = get_str(c);
        f->publish.started_us = (int64_t)get_u64(c);
        break;
    case SLP_SUBSCRIBE:
        f->subscribe.name = get_str(c);
        f->subscribe.start = get_u8(c);
        f->subscribe.wait_ms = get_u32(c);
        break;
    case SLP_ACCEPT:
        f->accept.request = get_u8(c);
        break;
    case SLP_MEDIA:
        f->media.pts = (int64_t)get_u64(c);
        f->media.wall_us = (int64_t)get_u64(c);
        f->media.ts_len = c->left;
        f->media.ts = take(c, c->left);
        break;
    case SLP_EOS:
        f->eos.reason = get_u8(c);
        f->eos.text = get_str(c);
        break;
    case SLP_PING:
    case SLP_PONG:
        f->ping.token = get_u64(c);
        break;
    case SLP_ERROR:
        f->err.code = get_u16(c);
        f->err.text = get_str(c);
        break;
    }
}

static enum slp_status invalid(struct slp_frame *f, enum slp_error code, const char *why)
{
    f->error = code;
    f->why = why;
    return SLP_INVALID;
}

/* Length rules that the header alone decides, per type: MEDIA's payload is a
 * whole number of packets, PING/PONG/ACCEPT have a fixed size, and no other
 * frame may make a receiver buffer more than SLP_MAX_CONTROL bytes. */
static enum slp_status check_length(struct slp_frame *f, uint32_t body)
{
    switch (f->type) {
    case SLP_MEDIA:
        if (body < MEDIA_FIXED + SLP_TS_PACKET || (body - MEDIA_FIXED) % SLP_TS_PACKET)
            return invalid(f, SLP_E_BAD_FRAME, "MEDIA: not a whole number of TS packets");
        return SLP_OK;
    case SLP_PING:
    case SLP_PONG:
        return body == 8 ? SLP_OK : invalid(f, SLP_E_BAD_FRAME, "PING/PONG: length not 8");
    case SLP_ACCEPT:
        return body == 1 ? SLP_OK : invalid(f, SLP_E_BAD_FRAME, "ACCEPT: length not 1");
    default:
        if (body > SLP_MAX_CONTROL)
            return invalid(f, SLP_E_TOO_LARGE, "control frame larger than 1024 bytes");
        return SLP_OK;
    }
}

enum slp_status slp_decode_header(const uint8_t *buf, size_t len, struct slp_frame *f)
{
    memset(f, 0, sizeof(*f));
    f->size = SLP_HEADER_LEN;
    /* Checks run as the bytes arrive, version first: a frame of a future
     * version is "unsupported", whatever its length or type. */
    if (len < 5)
        return SLP_NEED_MORE;
    f->version = buf[4];
    if (f->version != SLP_VERSION)
        return invalid(f, SLP_E_UNSUPPORTED_VERSION, "unsupported version");
    uint32_t body = get_be32(buf);
    if (body > SLP_MAX_FRAME - SLP_HEADER_LEN)
        return invalid(f, SLP_E_TOO_LARGE, "frame larger than 1 MiB");
    f->size = SLP_HEADER_LEN + (size_t)body;
    if (len < 6)
        return SLP_NEED_MORE;
    f->type = buf[5];
    if (slp_type_name(f->type) == NULL)
        return invalid(f, SLP_E_UNKNOWN_TYPE, "unknown frame type");
    if (check_length(f, body) != SLP_OK)
        return SLP_INVALID;
    if (len < SLP_HEADER_LEN)
        return SLP_NEED_MORE;
    f->flags = (uint16_t)(buf[6] << 8 | buf[7]);
    return SLP_OK;
}

enum slp_status slp_decode(const uint8_t *buf, size_t len, struct slp_frame *f)
{
    enum slp_status st = slp_decode_header(buf, len, f);
    if (st != SLP_OK)
        return st;
    if (len < f->size)
        return SLP_NEED_MORE;
    struct cursor c = { buf + SLP_HEADER_LEN, f->size - SLP_HEADER_LEN, false };
    parse_body(&c, f);
    if (c.short_)
        return invalid(f, SLP_E_BAD_FRAME, "field runs past the end of the frame");
    if (c.left != 0)
        return invalid(f, SLP_E_BAD_FRAME, "trailing bytes after the last field");
    const char *why;
    enum slp_error e = slp_check(f, &why);
    return e == SLP_E_NONE ? SLP_OK : invalid(f, e, why);
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                 */

static size_t body_size(const struct slp_frame *f)
{
    switch (f->type) {
    case SLP_HELLO:
        return 4 + f->hello.node.len + f->hello.agent.len;
    case SLP_PUBLISH:
        return 5 + f->publish.name.len + f->publish.publisher.len + f->publish.node.len +
               f->publish.protocol.len + f->publish.client.len + 8;
    case SLP_SUBSCRIBE:
        return 1 + f->subscribe.name.len + 1 + 4;
    case SLP_ACCEPT:
        return 1;
    case SLP_MEDIA:
        return MEDIA_FIXED + f->media.ts_len;
    case SLP_EOS:
        return 2 + f->eos.text.len;
    case SLP_PING:
    case SLP_PONG:
        return 8;
    case SLP_ERROR:
        return 3 + f->err.text.len;
    }
    return 0;
}

size_t slp_encoded_size(const struct slp_frame *f)
{
    if (slp_check(f, NULL) != SLP_E_NONE)
        return 0;
    size_t size = SLP_HEADER_LEN + body_size(f);
    if (size > SLP_MAX_FRAME || (f->type != SLP_MEDIA && size - SLP_HEADER_LEN > SLP_MAX_CONTROL))
        return 0;
    return size;
}

static uint8_t *put_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

static uint8_t *put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    p = put_u16(p, (uint16_t)(v >> 16));
    return put_u16(p, (uint16_t)v);
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    p = put_u32(p, (uint32_t)(v >> 32));
    return put_u32(p, (uint32_t)v);
}

static uint8_t *put_str(uint8_t *p, struct slp_str s)
{
    p = put_u8(p, (uint8_t)s.len);
    if (s.len > 0)
        memcpy(p, s.p, s.len);
    return p + s.len;
}

static uint8_t *put_header(uint8_t *p, size_t size, enum slp_type type, uint16_t flags)
{
    p = put_u32(p, (uint32_t)(size - SLP_HEADER_LEN));
    p = put_u8(p, SLP_VERSION);
    p = put_u8(p, (uint8_t)type);
    return put_u16(p, flags);
}

/* Writes the body of the already validated <f> at <p>. */
static void put_body(uint8_t *p, const struct slp_frame *f)
{
    switch (f->type) {
    case SLP_HELLO:
        p = put_u8(p, (uint8_t)f->hello.role);
        p = put_u8(p, f->hello.version);
        p = put_str(p, f->hello.node);
        put_str(p, f->hello.agent);
        break;
    case SLP_PUBLISH:
        p = put_str(p, f->publish.name);
        p = put_str(p, f->publish.publisher);
        p = put_str(p, f->publish.node);
        p = put_str(p, f->publish.protocol);
        p = put_str(p, f->publish.client);
        put_u64(p, (uint64_t)f->publish.started_us);
        break;
    case SLP_SUBSCRIBE:
        p = put_str(p, f->subscribe.name);
        p = put_u8(p, (uint8_t)f->subscribe.start);
        put_u32(p, f->subscribe.wait_ms);
        break;
    case SLP_ACCEPT:
        put_u8(p, (uint8_t)f->accept.request);
        break;
    case SLP_MEDIA:
        p = put_u64(p, (uint64_t)f->media.pts);
        p = put_u64(p, (uint64_t)f->media.wall_us);
        memcpy(p, f->media.ts, f->media.ts_len);
        break;
    case SLP_EOS:
        p = put_u8(p, f->eos.reason);
        put_str(p, f->eos.text);
        break;
    case SLP_PING:
    case SLP_PONG:
        put_u64(p, f->ping.token);
        break;
    case SLP_ERROR:
        p = put_u16(p, f->err.code);
        put_str(p, f->err.text);
        break;
    }
}

size_t slp_encode(uint8_t *dst, size_t cap, const struct slp_frame *f)
{
    size_t size = slp_encoded_size(f);
    if (size == 0 || size > cap)
        return 0;
    uint16_t flags = f->type == SLP_MEDIA ? f->flags : 0;
    put_body(put_header(dst, size, f->type, flags), f);
    return size;
}

size_t slp_encode_media_header(uint8_t dst[SLP_MEDIA_HEADER_LEN], uint16_t flags,
                               int64_t pts, int64_t wall_us, size_t ts_len)
{
    const char *why;
    if (check_media_fields(pts, wall_us, ts_len, &why) != SLP_E_NONE)
        return 0;
    uint8_t *p = put_header(dst, SLP_MEDIA_HEADER_LEN + ts_len, SLP_MEDIA, flags);
    p = put_u64(p, (uint64_t)pts);
    put_u64(p, (uint64_t)wall_us);
    return SLP_MEDIA_HEADER_LEN;
}
