/* The SLP codec: every frame type round-trips; every prefix of a valid frame
 * asks for more and never misparses; oversized, unknown, wrong-version and
 * malformed frames are refused with the right code; and each worked example in
 * proto/SLP.md is checked byte for byte against the encoder (run from the repo
 * root; SLP_DUMP_EXAMPLES=1 prints what the encoder makes, for the spec). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ctype.h>
#include <event2/buffer.h>

#include "sluice/slp.h"
#include "testutil.h"

#define SPEC_PATH "proto/SLP.md"

/* ------------------------------------------------------------------------ */
/* The examples of proto/SLP.md, as frames                                   */

/* PAT, PMT (H.264 on PID 0x100, AAC on 0x101) and the packet that starts an
 * IDR access unit: the media contract's KEYFRAME frame in its smallest form. */
static const uint8_t pat_head[] = {
    0x47, 0x40, 0x00, 0x10, 0x00, 0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00,
    0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04, 0xb2,
};
static const uint8_t pmt_head[] = {
    0x47, 0x50, 0x00, 0x10, 0x00, 0x02, 0xb0, 0x17, 0x00, 0x01, 0xc1, 0x00, 0x00,
    0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00, 0x0f, 0xe1, 0x01, 0xf0,
    0x00, 0x2f, 0x44, 0xb9, 0x9b,
};
static const uint8_t pes_head[] = {   /* adaptation field: PCR, then stuffing */
    0x47, 0x41, 0x00, 0x30, 0x9c, 0x50, 0x00, 0x06, 0x62, 0xc4, 0x7e, 0x00,
};
static const uint8_t pes_tail[] = {   /* PES header (PTS 900000), AUD, IDR */
    0x00, 0x00, 0x01, 0xe0, 0x00, 0x00, 0x80, 0x80, 0x05, 0x21, 0x00, 0x37, 0x77,
    0x41, 0x00, 0x00, 0x00, 0x01, 0x09, 0xf0, 0x00, 0x00, 0x00, 0x01, 0x65, 0x88, 0x84,
};

static uint8_t keyframe_ts[3 * 188];

static void build_keyframe_ts(void)
{
    memset(keyframe_ts, 0xff, sizeof(keyframe_ts));
    memcpy(keyframe_ts, pat_head, sizeof(pat_head));
    memcpy(keyframe_ts + 188, pmt_head, sizeof(pmt_head));
    memcpy(keyframe_ts + 376, pes_head, sizeof(pes_head));
    memcpy(keyframe_ts + 564 - sizeof(pes_tail), pes_tail, sizeof(pes_tail));
}

#define S(lit) { lit, sizeof(lit) - 1 }

struct example {
    const char *name;
    struct slp_frame f;
};

static struct example examples[] = {
    { "hello", { .type = SLP_HELLO, .hello = { SLP_ROLE_PUBLISHER, 1, S("ingest-1"),
                                               S("sluice-ingest/0.1") } } },
    { "publish", { .type = SLP_PUBLISH,
                   .publish = { S("cam1"), S("ingest-1:7f3a9c"), S("ingest-1"), S("srt"),
                                S("203.0.113.7:50114"), 1763690400000000 } } },
    { "subscribe", { .type = SLP_SUBSCRIBE,
                     .subscribe = { S("cam1"), SLP_START_KEYFRAME, 10000 } } },
    { "accept", { .type = SLP_ACCEPT, .accept = { SLP_PUBLISH } } },
    { "media", { .type = SLP_MEDIA, .flags = SLP_F_KEYFRAME,
                 .media = { 900000, 1763690400123456, keyframe_ts, sizeof(keyframe_ts) } } },
    { "eos", { .type = SLP_EOS, .eos = { SLP_EOS_ENDED, S("publisher stopped") } } },
    { "ping", { .type = SLP_PING, .ping = { 0x0102030405060708 } } },
    { "pong", { .type = SLP_PONG, .ping = { 0x0102030405060708 } } },
    { "error", { .type = SLP_ERROR,
                 .err = { SLP_E_CONFLICT, S("lease held by ingest-2:91c2") } } },
};
#define NEXAMPLES (sizeof(examples) / sizeof(examples[0]))

static int setup_examples(void **state)
{
    (void)state;
    build_keyframe_ts();
    return 0;
}

/* Encodes <f> into a malloc'd buffer of exactly its size (so ASan sees any
 * read past the end). */
static uint8_t *encode_exact(const struct slp_frame *f, size_t *len)
{
    *len = slp_encoded_size(f);
    assert_true(*len > 0);
    uint8_t *buf = malloc(*len);
    assert_int_equal(slp_encode(buf, *len, f), *len);
    return buf;
}

static void assert_str_equal_n(struct slp_str a, struct slp_str b)
{
    assert_int_equal(a.len, b.len);
    if (a.len > 0)
        assert_memory_equal(a.p, b.p, a.len);
}

/* Field-by-field equality of two frames of the same type. */
static void assert_frames_equal(const struct slp_frame *a, const struct slp_frame *b)
{
    assert_int_equal(a->type, b->type);
    switch (a->type) {
    case SLP_HELLO:
        assert_int_equal(a->hello.role, b->hello.role);
        assert_int_equal(a->hello.version, b->hello.version);
        assert_str_equal_n(a->hello.node, b->hello.node);
        assert_str_equal_n(a->hello.agent, b->hello.agent);
        break;
    case SLP_PUBLISH:
        assert_str_equal_n(a->publish.name, b->publish.name);
        assert_str_equal_n(a->publish.publisher, b->publish.publisher);
        assert_str_equal_n(a->publish.node, b->publish.node);
        assert_str_equal_n(a->publish.protocol, b->publish.protocol);
        assert_str_equal_n(a->publish.client, b->publish.client);
        assert_int_equal(a->publish.started_us, b->publish.started_us);
        break;
    case SLP_SUBSCRIBE:
        assert_str_equal_n(a->subscribe.name, b->subscribe.name);
        assert_int_equal(a->subscribe.start, b->subscribe.start);
        assert_int_equal(a->subscribe.wait_ms, b->subscribe.wait_ms);
        break;
    case SLP_ACCEPT:
        assert_int_equal(a->accept.request, b->accept.request);
        break;
    case SLP_MEDIA:
        assert_int_equal(a->flags, b->flags);
        assert_int_equal(a->media.pts, b->media.pts);
        assert_int_equal(a->media.wall_us, b->media.wall_us);
        assert_int_equal(a->media.ts_len, b->media.ts_len);
        assert_memory_equal(a->media.ts, b->media.ts, a->media.ts_len);
        break;
    case SLP_EOS:
        assert_int_equal(a->eos.reason, b->eos.reason);
        assert_str_equal_n(a->eos.text, b->eos.text);
        break;
    case SLP_PING:
    case SLP_PONG:
        assert_int_equal(a->ping.token, b->ping.token);
        break;
    case SLP_ERROR:
        assert_int_equal(a->err.code, b->err.code);
        assert_str_equal_n(a->err.text, b->err.text);
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* The spec's examples                                                      */

/* Reads proto/SLP.md whole (NUL-terminated, malloc'd). */
static char *read_spec(void)
{
    FILE *fp = fopen(SPEC_PATH, "r");
    if (fp == NULL)
        fail_msg("cannot open %s (run from the repository root)", SPEC_PATH);
    char *text = malloc(1 << 20);
    size_t n = fread(text, 1, (1 << 20) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    return text;
}

/* Parses the hex of one example block: per line, the text before ';' holds
 * byte tokens "hh" or runs "hh*N". Returns the byte count written to <out>. */
static size_t parse_hex_block(const char *block, size_t blen, uint8_t *out, size_t cap)
{
    size_t n = 0;
    const char *end = block + blen;
    for (const char *line = block; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            eol = end;
        const char *semi = memchr(line, ';', (size_t)(eol - line));
        const char *stop = semi ? semi : eol;
        for (const char *p = line; p < stop;) {
            if (isspace((unsigned char)*p)) {
                p++;
                continue;
            }
            unsigned byte, count = 1;
            int used = 0;
            if (sscanf(p, "%2x%n", &byte, &used) != 1 || used != 2)
                fail_msg("bad hex token near \"%.20s\"", p);
            p += 2;
            if (p < stop && *p == '*') {
                char *after;
                count = (unsigned)strtoul(p + 1, &after, 10);
                p = after;
            }
            for (unsigned i = 0; i < count; i++) {
                assert_true(n < cap);
                out[n++] = (uint8_t)byte;
            }
        }
        line = eol + 1;
    }
    return n;
}

/* Finds the block "```slp <name>" in <spec>; sets its body. */
static bool find_block(const char *spec, const char *name, const char **body, size_t *len)
{
    char fence[64];
    snprintf(fence, sizeof(fence), "```slp %s\n", name);
    const char *p = strstr(spec, fence);
    if (p == NULL)
        return false;
    *body = p + strlen(fence);
    const char *close = strstr(*body, "```");
    assert_non_null(close);
    *len = (size_t)(close - *body);
    return true;
}

static void print_hex(const char *name, const uint8_t *b, size_t n)
{
    printf("```slp %s\n", name);
    for (size_t i = 0; i < n; i++)
        printf("%02x%s", b[i], (i % 16 == 15 || i + 1 == n) ? "\n" : " ");
    printf("```\n");
}

static void test_spec_examples(void **state)
{
    (void)state;
    char *spec = read_spec();
    bool dump = getenv("SLP_DUMP_EXAMPLES") != NULL;
    for (size_t i = 0; i < NEXAMPLES; i++) {
        size_t len;
        uint8_t *enc = encode_exact(&examples[i].f, &len);
        if (dump) {
            print_hex(examples[i].name, enc, len);
            free(enc);
            continue;
        }
        const char *body;
        size_t blen;
        if (!find_block(spec, examples[i].name, &body, &blen))
            fail_msg("%s has no example \"%s\"", SPEC_PATH, examples[i].name);
        uint8_t hex[4096];
        size_t n = parse_hex_block(body, blen, hex, sizeof(hex));
        if (n != len || memcmp(hex, enc, len) != 0) {
            print_hex(examples[i].name, enc, len);
            fail_msg("example \"%s\" in %s differs from the encoder (above)",
                     examples[i].name, SPEC_PATH);
        }
        struct slp_frame f;
        assert_int_equal(slp_decode(hex, n, &f), SLP_OK);
        assert_int_equal(f.size, n);
        assert_frames_equal(&f, &examples[i].f);
        free(enc);
    }
    /* and no example in the spec that the test does not know */
    size_t blocks = dump ? NEXAMPLES : 0;
    for (const char *p = spec; (p = strstr(p, "```slp ")) != NULL; p++)
        blocks++;
    assert_int_equal(blocks, NEXAMPLES);
    free(spec);
}

/* ------------------------------------------------------------------------ */
/* Round trips and prefixes                                                 */

static void roundtrip(const struct slp_frame *in)
{
    size_t len;
    uint8_t *buf = encode_exact(in, &len);
    struct slp_frame out;
    assert_int_equal(slp_decode(buf, len, &out), SLP_OK);
    assert_int_equal(out.size, len);
    assert_int_equal(out.version, SLP_VERSION);
    assert_frames_equal(&out, in);
    free(buf);
}

static void test_roundtrip_every_type(void **state)
{
    (void)state;
    bool seen[16] = { false };
    for (size_t i = 0; i < NEXAMPLES; i++) {
        roundtrip(&examples[i].f);
        seen[examples[i].f.type] = true;
    }
#define X(sym, val, name) assert_true(seen[val]);
    SLP_TYPES(X)
#undef X
}

static void test_roundtrip_limits(void **state)
{
    (void)state;
    char name64[65], id128[129], text255[256], proto16[17];
    memset(name64, 'a', 64), name64[64] = '\0';
    memset(id128, '~', 128), id128[128] = '\0';
    memset(text255, 0xfe, 255), text255[255] = '\0';   /* text is opaque bytes */
    memset(proto16, 'z', 16), proto16[16] = '\0';
    struct slp_frame f = { .type = SLP_PUBLISH, .publish = {
        slp_cstr(name64), slp_cstr(id128), slp_cstr(id128), slp_cstr(proto16),
        slp_cstr(""), INT64_MAX } };
    roundtrip(&f);
    struct slp_frame e = { .type = SLP_ERROR, .err = { 65535, slp_cstr(text255) } };
    roundtrip(&e);
    struct slp_frame h = { .type = SLP_HELLO, .hello = { SLP_ROLE_RELAY, 255, slp_cstr("r"),
                                                         slp_cstr("") } };
    roundtrip(&h);
    struct slp_frame s = { .type = SLP_SUBSCRIBE, .subscribe = { slp_cstr("A-z_09"),
                                                                 SLP_START_LIVE, UINT32_MAX } };
    roundtrip(&s);
    struct slp_frame eos = { .type = SLP_EOS, .eos = { 200, slp_cstr("") } };  /* unknown reason */
    roundtrip(&eos);

    /* the largest MEDIA frame: exactly SLP_MAX_FRAME bytes or just under */
    size_t ts_len = SLP_MEDIA_MAX_PACKETS * SLP_TS_PACKET;
    uint8_t *ts = malloc(ts_len);
    memset(ts, 0x47, ts_len);
    struct slp_frame m = { .type = SLP_MEDIA, .flags = 0xffff,
                           .media = { SLP_PTS_MAX, 0, ts, ts_len } };
    roundtrip(&m);
    assert_true(slp_encoded_size(&m) <= SLP_MAX_FRAME);
    m.media.pts = SLP_PTS_NONE;
    roundtrip(&m);
    m.media.ts_len += SLP_TS_PACKET;   /* one packet too many */
    assert_int_equal(slp_encoded_size(&m), 0);
    free(ts);
}

/* Every proper prefix of a valid frame is "need more", with a size that never
 * shrinks below what is there and, once the header is known, is exact. */
static void test_every_prefix_needs_more(void **state)
{
    (void)state;
    for (size_t i = 0; i < NEXAMPLES; i++) {
        size_t len;
        uint8_t *full = encode_exact(&examples[i].f, &len);
        for (size_t k = 0; k < len; k++) {
            uint8_t *pre = malloc(k ? k : 1);
            memcpy(pre, full, k);
            struct slp_frame f;
            assert_int_equal(slp_decode(pre, k, &f), SLP_NEED_MORE);
            assert_true(f.size > k);
            if (k >= 5)
                assert_int_equal(f.size, len);
            else
                assert_int_equal(f.size, SLP_HEADER_LEN);
            free(pre);
        }
        /* with the next frame's bytes behind it, exactly one frame is read */
        uint8_t *two = malloc(2 * len);
        memcpy(two, full, len);
        memcpy(two + len, full, len);
        struct slp_frame f;
        assert_int_equal(slp_decode(two, 2 * len, &f), SLP_OK);
        assert_int_equal(f.size, len);
        free(two);
        free(full);
    }
}

/* ------------------------------------------------------------------------ */
/* Refusals                                                                 */

static void put_header(uint8_t *b, uint32_t body, uint8_t version, uint8_t type)
{
    b[0] = (uint8_t)(body >> 24), b[1] = (uint8_t)(body >> 16);
    b[2] = (uint8_t)(body >> 8), b[3] = (uint8_t)body;
    b[4] = version, b[5] = type, b[6] = 0, b[7] = 0;
}

/* Decodes the first <len> bytes of <b> and expects SLP_INVALID with <code>. */
static void expect_invalid(const uint8_t *b, size_t len, enum slp_error code)
{
    struct slp_frame f;
    assert_int_equal(slp_decode(b, len, &f), SLP_INVALID);
    if (f.error != code)
        fail_msg("expected %s, got %s (%s)", slp_error_name(code), slp_error_name(f.error),
                 f.why);
    assert_non_null(f.why);
}

static void test_too_large(void **state)
{
    (void)state;
    uint8_t b[SLP_HEADER_LEN];
    put_header(b, SLP_MAX_FRAME - SLP_HEADER_LEN + 1, 1, SLP_MEDIA);
    expect_invalid(b, 5, SLP_E_TOO_LARGE);             /* known from 5 bytes on */
    put_header(b, UINT32_MAX, 1, SLP_MEDIA);
    expect_invalid(b, 8, SLP_E_TOO_LARGE);
    put_header(b, SLP_MAX_CONTROL + 1, 1, SLP_PUBLISH);  /* a control frame > 1 KiB */
    expect_invalid(b, 6, SLP_E_TOO_LARGE);
    put_header(b, SLP_MAX_CONTROL + 1, 1, SLP_ERROR);
    expect_invalid(b, 8, SLP_E_TOO_LARGE);
    /* the largest allowed MEDIA header is fine: it waits for the body */
    put_header(b, 16 + SLP_MEDIA_MAX_PACKETS * 188, 1, SLP_MEDIA);
    struct slp_frame f;
    assert_int_equal(slp_decode(b, 8, &f), SLP_NEED_MORE);
    assert_int_equal(f.size, SLP_MEDIA_HEADER_LEN + SLP_MEDIA_MAX_PACKETS * 188);
}

static void test_unknown_type(void **state)
{
    (void)state;
    static const uint8_t types[] = { 0, 10, 11, 0x7f, 0x80, 0xff };
    uint8_t b[SLP_HEADER_LEN + 8] = { 0 };
    for (size_t i = 0; i < sizeof(types); i++) {
        put_header(b, 8, 1, types[i]);
        expect_invalid(b, 6, SLP_E_UNKNOWN_TYPE);
        expect_invalid(b, sizeof(b), SLP_E_UNKNOWN_TYPE);
        assert_null(slp_type_name(types[i]));
    }
}

static void test_bad_version(void **state)
{
    (void)state;
    uint8_t b[SLP_HEADER_LEN + 8] = { 0 };
    static const uint8_t versions[] = { 0, 2, 0xff };
    for (size_t i = 0; i < sizeof(versions); i++) {
        put_header(b, 8, versions[i], SLP_PING);
        expect_invalid(b, 5, SLP_E_UNSUPPORTED_VERSION);
        expect_invalid(b, sizeof(b), SLP_E_UNSUPPORTED_VERSION);
        /* version wins over every other fault: a future version may change them */
        put_header(b, UINT32_MAX, versions[i], 0xee);
        expect_invalid(b, sizeof(b), SLP_E_UNSUPPORTED_VERSION);
    }
}

static void test_media_refusals(void **state)
{
    (void)state;
    uint8_t b[SLP_MEDIA_HEADER_LEN + 2 * 188];
    memset(b, 0, sizeof(b));
    put_header(b, 16, 1, SLP_MEDIA);                     /* no packet at all */
    expect_invalid(b, 6, SLP_E_BAD_FRAME);
    put_header(b, 16 + 187, 1, SLP_MEDIA);               /* not whole packets */
    expect_invalid(b, 6, SLP_E_BAD_FRAME);
    put_header(b, 16 + 189, 1, SLP_MEDIA);
    expect_invalid(b, 8, SLP_E_BAD_FRAME);

    put_header(b, 16 + 2 * 188, 1, SLP_MEDIA);
    b[24] = 0x47;                                       /* second packet lacks sync */
    expect_invalid(b, sizeof(b), SLP_E_BAD_FRAME);
    b[24 + 188] = 0x47;
    struct slp_frame f;
    assert_int_equal(slp_decode(b, sizeof(b), &f), SLP_OK);
    assert_int_equal(f.media.pts, 0);

    memset(b + 8, 0xff, 8);                             /* pts -1: none, fine */
    assert_int_equal(slp_decode(b, sizeof(b), &f), SLP_OK);
    assert_int_equal(f.media.pts, SLP_PTS_NONE);
    b[8] = 0x00, b[9] = 0x00, b[10] = 0x00, b[11] = 0x02;  /* pts 2^33 and up */
    expect_invalid(b, sizeof(b), SLP_E_BAD_FRAME);
    memset(b + 8, 0, 8);
    b[16] = 0x80;                                       /* negative wall clock */
    expect_invalid(b, sizeof(b), SLP_E_BAD_FRAME);
}

/* Encodes <f> and then edits byte <at> of the body to <v>: a frame the
 * encoder would never make. */
static void expect_edit_invalid(const struct slp_frame *f, size_t at, uint8_t v,
                                enum slp_error code)
{
    size_t len;
    uint8_t *buf = encode_exact(f, &len);
    buf[SLP_HEADER_LEN + at] = v;
    expect_invalid(buf, len, code);
    free(buf);
}

/* Rewrites the length of an encoded frame by <delta>, dropping or adding
 * zero bytes at the end. */
static void expect_resized_invalid(const struct slp_frame *f, int delta, enum slp_error code)
{
    size_t len;
    uint8_t *enc = encode_exact(f, &len);
    size_t nlen = (size_t)((long)len + delta);
    uint8_t *buf = calloc(1, nlen);
    memcpy(buf, enc, len < nlen ? len : nlen);
    put_header(buf, (uint32_t)(nlen - SLP_HEADER_LEN), 1, buf[5]);
    expect_invalid(buf, nlen, code);
    free(buf);
    free(enc);
}

static void test_malformed_bodies(void **state)
{
    (void)state;
    const struct slp_frame *hello = &examples[0].f, *publish = &examples[1].f;
    const struct slp_frame *subscribe = &examples[2].f, *eos = &examples[5].f;
    const struct slp_frame *error = &examples[8].f;

    expect_edit_invalid(hello, 0, 0, SLP_E_BAD_FRAME);          /* role 0 */
    expect_edit_invalid(hello, 0, 4, SLP_E_BAD_FRAME);          /* role 4 */
    expect_edit_invalid(hello, 1, 0, SLP_E_BAD_FRAME);          /* version 0 */
    expect_edit_invalid(hello, 3, ' ', SLP_E_BAD_FRAME);        /* space in node id */
    expect_edit_invalid(hello, 2, 0, SLP_E_BAD_FRAME);          /* empty node id */
    expect_edit_invalid(hello, 2, 200, SLP_E_BAD_FRAME);        /* runs past the end */
    expect_edit_invalid(publish, 1, '/', SLP_E_BAD_NAME);       /* "/am1" */
    expect_edit_invalid(publish, 4, '.', SLP_E_BAD_NAME);       /* "cam." */
    expect_edit_invalid(publish, 5, 0, SLP_E_BAD_FRAME);        /* empty publisher */
    expect_edit_invalid(publish, 1 + 4 + 1 + 15 + 1 + 8 + 1, 'S', SLP_E_BAD_FRAME); /* "Srt" */
    expect_edit_invalid(subscribe, 5, 0, SLP_E_BAD_FRAME);      /* start mode 0 */
    expect_edit_invalid(subscribe, 5, 3, SLP_E_BAD_FRAME);      /* start mode 3 */
    expect_edit_invalid(error, 1, 0, SLP_E_BAD_FRAME);          /* code 0 is no code */
    expect_edit_invalid(&examples[3].f, 0, SLP_MEDIA, SLP_E_BAD_FRAME);  /* ACCEPT MEDIA */

    expect_resized_invalid(hello, +1, SLP_E_BAD_FRAME);         /* trailing byte */
    expect_resized_invalid(publish, -1, SLP_E_BAD_FRAME);       /* truncated inside */
    expect_resized_invalid(subscribe, -4, SLP_E_BAD_FRAME);
    expect_resized_invalid(eos, +3, SLP_E_BAD_FRAME);
    expect_resized_invalid(error, -3, SLP_E_BAD_FRAME);
    expect_resized_invalid(&examples[6].f, -1, SLP_E_BAD_FRAME); /* PING of 7 */
    expect_resized_invalid(&examples[3].f, +1, SLP_E_BAD_FRAME); /* ACCEPT of 2 */

    /* an empty name, and one of 65 characters, are refused */
    struct slp_frame f = *subscribe;
    f.subscribe.name = slp_cstr("");
    assert_int_equal(slp_check(&f, NULL), SLP_E_BAD_NAME);
    char name65[66];
    memset(name65, 'x', 65), name65[65] = '\0';
    f.subscribe.name = slp_cstr(name65);
    assert_int_equal(slp_check(&f, NULL), SLP_E_BAD_NAME);
    assert_int_equal(slp_encoded_size(&f), 0);
}

static void test_encoder_refuses_invalid(void **state)
{
    (void)state;
    uint8_t buf[2048];
    struct slp_frame f = examples[0].f;
    f.hello.node = slp_cstr("has space");
    assert_int_equal(slp_encode(buf, sizeof(buf), &f), 0);
    f = examples[1].f;
    f.publish.client = slp_cstr("a\nb");
    assert_int_equal(slp_encode(buf, sizeof(buf), &f), 0);
    f.publish.client = slp_cstr("");
    f.publish.started_us = -5;
    assert_int_equal(slp_encode(buf, sizeof(buf), &f), 0);
    f = examples[4].f;
    f.media.ts_len = 100;
    assert_int_equal(slp_encode(buf, sizeof(buf), &f), 0);
    f.type = 42;
    assert_int_equal(slp_encode(buf, sizeof(buf), &f), 0);
    /* too small a buffer: nothing written */
    memset(buf, 0xaa, sizeof(buf));
    assert_int_equal(slp_encode(buf, 10, &examples[0].f), 0);
    assert_int_equal(buf[0], 0xaa);
    /* flags of a non-MEDIA frame go out as 0 */
    f = examples[6].f;
    f.flags = 0xffff;
    size_t n = slp_encode(buf, sizeof(buf), &f);
    assert_int_equal(n, 16);
    assert_int_equal(buf[6], 0);
    assert_int_equal(buf[7], 0);
}

/* ------------------------------------------------------------------------ */
/* The relay's hot path: a new header over a shared payload                 */

static void test_media_header_over_shared_payload(void **state)
{
    (void)state;
    size_t len;
    uint8_t *frame = encode_exact(&examples[4].f, &len);
    const struct slp_media *m = &examples[4].f.media;

    uint8_t hdr[SLP_MEDIA_HEADER_LEN];
    assert_int_equal(slp_encode_media_header(hdr, examples[4].f.flags, m->pts, m->wall_us,
                                             m->ts_len), SLP_MEDIA_HEADER_LEN);
    assert_memory_equal(hdr, frame, SLP_MEDIA_HEADER_LEN);   /* same as the encoder */

    /* DISCONTINUITY for one subscriber: only the header changes */
    uint16_t flags = examples[4].f.flags | SLP_F_DISCONTINUITY;
    assert_int_equal(slp_encode_media_header(hdr, flags, m->pts, m->wall_us, m->ts_len),
                     SLP_MEDIA_HEADER_LEN);
    assert_memory_equal(hdr, frame, 6);
    assert_memory_equal(hdr + 8, frame + 8, SLP_MEDIA_HEADER_LEN - 8);
    uint8_t *joined = malloc(len);
    memcpy(joined, hdr, sizeof(hdr));
    memcpy(joined + sizeof(hdr), frame + sizeof(hdr), len - sizeof(hdr));
    struct slp_frame f;
    assert_int_equal(slp_decode(joined, len, &f), SLP_OK);
    assert_int_equal(f.flags, SLP_F_KEYFRAME | SLP_F_DISCONTINUITY);
    assert_memory_equal(f.media.ts, m->ts, m->ts_len);

    assert_int_equal(slp_encode_media_header(hdr, 0, 0, 0, 187), 0);
    assert_int_equal(slp_encode_media_header(hdr, 0, 0, 0, 0), 0);
    assert_int_equal(slp_encode_media_header(hdr, 0, SLP_PTS_MAX + 1, 0, 188), 0);
    assert_int_equal(slp_encode_media_header(hdr, 0, 0, -1, 188), 0);
    free(joined);
    free(frame);
}

/* ------------------------------------------------------------------------ */
/* evbuffer glue                                                            */

static void test_evbuffer_peek_take(void **state)
{
    (void)state;
    struct evbuffer *in = evbuffer_new();
    uint8_t all[4096];
    size_t total = 0;
    for (size_t i = 0; i < NEXAMPLES; i++)
        total += slp_encode(all + total, sizeof(all) - total, &examples[i].f);

    /* trickle the bytes in one at a time; frames come out whole and in order */
    size_t next = 0;
    uint8_t buf[2048];
    for (size_t i = 0; i < total; i++) {
        evbuffer_add(in, all + i, 1);
        struct slp_frame f;
        enum slp_status st;
        while ((st = slp_evbuffer_peek(in, &f)) == SLP_OK) {
            assert_int_equal(slp_evbuffer_take(in, buf, sizeof(buf), &f), SLP_OK);
            assert_frames_equal(&f, &examples[next].f);
            next++;
        }
        assert_int_equal(st, SLP_NEED_MORE);
    }
    assert_int_equal(next, NEXAMPLES);
    assert_int_equal(evbuffer_get_length(in), 0);

    /* a bad header is refused without removing anything */
    uint8_t bad[8];
    put_header(bad, 8, 1, 77);
    evbuffer_add(in, bad, sizeof(bad));
    struct slp_frame f;
    assert_int_equal(slp_evbuffer_peek(in, &f), SLP_INVALID);
    assert_int_equal(f.error, SLP_E_UNKNOWN_TYPE);
    assert_int_equal(slp_evbuffer_take(in, buf, sizeof(buf), &f), SLP_INVALID);
    assert_int_equal(evbuffer_get_length(in), 8);
    evbuffer_drain(in, 8);

    /* a caller's buffer too small for the frame is an internal error */
    slp_evbuffer_add(in, &examples[4].f);
    assert_int_equal(slp_evbuffer_take(in, buf, 100, &f), SLP_INVALID);
    assert_int_equal(f.error, SLP_E_INTERNAL);
    evbuffer_free(in);
}

static void test_evbuffer_add(void **state)
{
    (void)state;
    struct evbuffer *out = evbuffer_new();
    for (size_t i = 0; i < NEXAMPLES; i++)
        assert_int_equal(slp_evbuffer_add(out, &examples[i].f), 0);
    struct slp_frame bad = examples[0].f;
    bad.hello.role = 9;
    assert_int_equal(slp_evbuffer_add(out, &bad), -1);

    char longtext[600];
    memset(longtext, 'e', sizeof(longtext) - 1), longtext[599] = '\0';
    assert_int_equal(slp_evbuffer_add_error(out, SLP_E_TIMEOUT, "%s", longtext), 0);
    assert_int_equal(slp_evbuffer_add_error(out, SLP_E_NOT_FOUND, NULL), 0);

    uint8_t buf[2048];
    struct slp_frame f;
    for (size_t i = 0; i < NEXAMPLES; i++) {
        assert_int_equal(slp_evbuffer_take(out, buf, sizeof(buf), &f), SLP_OK);
        assert_frames_equal(&f, &examples[i].f);
    }
    assert_int_equal(slp_evbuffer_take(out, buf, sizeof(buf), &f), SLP_OK);
    assert_int_equal(f.err.code, SLP_E_TIMEOUT);
    assert_int_equal(f.err.text.len, SLP_TEXT_MAX);
    assert_int_equal(slp_evbuffer_take(out, buf, sizeof(buf), &f), SLP_OK);
    assert_true(slp_str_eq(f.err.text, "stream is not live"));
    assert_int_equal(evbuffer_get_length(out), 0);
    evbuffer_free(out);
}

/* ------------------------------------------------------------------------ */
/* Names and odds and ends                                                  */

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(slp_type_name(SLP_MEDIA), "MEDIA");
    assert_string_equal(slp_error_name(SLP_E_CONFLICT), "conflict");
    assert_string_equal(slp_error_name(SLP_E_NOT_FOUND), "not_found");
    assert_null(slp_error_name(0));
    assert_null(slp_error_name(999));
    assert_null(slp_error_text(999));
    assert_string_equal(slp_eos_name(SLP_EOS_ENDED), "ended");
    assert_null(slp_eos_name(0));
    assert_string_equal(slp_role_name(SLP_ROLE_RELAY), "relay");
    assert_string_equal(slp_start_name(SLP_START_LIVE), "live");
    enum slp_start s;
    assert_int_equal(slp_start_parse("keyframe", &s), 0);
    assert_int_equal(s, SLP_START_KEYFRAME);
    assert_int_equal(slp_start_parse("live", &s), 0);
    assert_int_equal(s, SLP_START_LIVE);
    assert_int_equal(slp_start_parse("now", &s), -1);
    /* every code of the table has a name and a meaning */
#define X(sym, val, name, text) \
    assert_string_equal(slp_error_name(val), name), assert_string_equal(slp_error_text(val), text);
    SLP_ERRORS(X)
#undef X
    assert_true(slp_str_eq(slp_cstr("abc"), "abc"));
    assert_false(slp_str_eq(slp_cstr("abc"), "ab"));
    assert_true(slp_str_eq(slp_cstr(NULL), ""));
}

/* Random bytes, random lengths, each in a buffer of exactly that size: the
 * decoder never reads past it and never says OK for a size beyond it. (The
 * libFuzzer harness does this at scale; this is the quick, always-run form.) */
static void test_random_input(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        seed = seed * 1103515245 + 12345;
        size_t len = (seed >> 16) % 64;
        uint8_t *b = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245 + 12345;
            b[i] = (uint8_t)(seed >> 16);
        }
        if (len >= 6 && (iter & 1)) {   /* often a plausible header */
            b[0] = b[1] = 0, b[4] = 1, b[5] = (uint8_t)(1 + b[5] % 9);
        }
        struct slp_frame f;
        enum slp_status st = slp_decode(b, len, &f);
        if (st == SLP_OK)
            assert_true(f.size <= len);
        if (st == SLP_INVALID)
            assert_non_null(slp_error_name(f.error));
        free(b);
    }
}

/* ------------------------------------------------------------------------ */
/* The handshake order (SLP.md section 6, "What may arrive when")           */

static struct slp_frame fr(enum slp_type t)
{
    struct slp_frame f = { .type = t };
    return f;
}

static struct slp_frame hello_as(enum slp_role role)
{
    struct slp_frame f = { .type = SLP_HELLO, .hello = { role, 1, slp_cstr("n"), slp_cstr("") } };
    return f;
}

static struct slp_frame accept_of(enum slp_type request)
{
    struct slp_frame f = { .type = SLP_ACCEPT, .accept = { request } };
    return f;
}

static void expect_session(struct slp_session *s, struct slp_frame f, enum slp_error want)
{
    const char *why;
    enum slp_error got = slp_session_recv(s, &f, &why);
    if (got != want)
        fail_msg("%s in state %d: expected %s, got %s (%s)", slp_type_name(f.type), s->state,
                 want ? slp_error_name(want) : "ok", got ? slp_error_name(got) : "ok", why);
    assert_true(got == SLP_E_NONE || why != NULL);
}

static void test_session_relay_side(void **state)
{
    (void)state;
    struct slp_session s;
    slp_session_init(&s, true, 0);
    expect_session(&s, fr(SLP_PING), SLP_E_UNEXPECTED);             /* HELLO first */
    slp_session_init(&s, true, 0);
    expect_session(&s, hello_as(SLP_ROLE_RELAY), SLP_E_BAD_FRAME);
    slp_session_init(&s, true, 0);
    expect_session(&s, hello_as(SLP_ROLE_PUBLISHER), SLP_E_NONE);
    expect_session(&s, fr(SLP_SUBSCRIBE), SLP_E_UNEXPECTED);        /* a publisher publishes */
    expect_session(&s, fr(SLP_PUBLISH), SLP_E_NONE);
    assert_int_equal(s.state, SLP_S_REQUESTED);
    expect_session(&s, fr(SLP_MEDIA), SLP_E_UNEXPECTED);            /* before ACCEPT */
    expect_session(&s, fr(SLP_PING), SLP_E_NONE);
    slp_session_accepted(&s);
    expect_session(&s, fr(SLP_MEDIA), SLP_E_NONE);
    expect_session(&s, fr(SLP_MEDIA), SLP_E_NONE);
    expect_session(&s, fr(SLP_PONG), SLP_E_NONE);
    expect_session(&s, fr(SLP_PUBLISH), SLP_E_UNEXPECTED);
    expect_session(&s, hello_as(SLP_ROLE_PUBLISHER), SLP_E_UNEXPECTED);
    expect_session(&s, fr(SLP_EOS), SLP_E_NONE);
    expect_session(&s, fr(SLP_MEDIA), SLP_E_UNEXPECTED);            /* after EOS */
    expect_session(&s, fr(SLP_ERROR), SLP_E_NONE);

    slp_session_init(&s, true, 0);
    expect_session(&s, hello_as(SLP_ROLE_SUBSCRIBER), SLP_E_NONE);
    expect_session(&s, fr(SLP_PUBLISH), SLP_E_UNEXPECTED);
    expect_session(&s, fr(SLP_SUBSCRIBE), SLP_E_NONE);
    slp_session_accepted(&s);
    expect_session(&s, fr(SLP_MEDIA), SLP_E_UNEXPECTED);            /* subscribers only listen */
    expect_session(&s, fr(SLP_EOS), SLP_E_UNEXPECTED);
    expect_session(&s, fr(SLP_PING), SLP_E_NONE);
}

static void test_session_client_side(void **state)
{
    (void)state;
    struct slp_session s;
    slp_session_init(&s, false, SLP_ROLE_SUBSCRIBER);
    expect_session(&s, hello_as(SLP_ROLE_PUBLISHER), SLP_E_BAD_FRAME);
    slp_session_init(&s, false, SLP_ROLE_SUBSCRIBER);
    expect_session(&s, fr(SLP_ERROR), SLP_E_NONE);     /* a relay's first frame may be ERROR */
    slp_session_init(&s, false, SLP_ROLE_SUBSCRIBER);
    expect_session(&s, hello_as(SLP_ROLE_RELAY), SLP_E_NONE);
    expect_session(&s, fr(SLP_MEDIA), SLP_E_UNEXPECTED);
    expect_session(&s, accept_of(SLP_PUBLISH), SLP_E_UNEXPECTED);   /* not what we asked */
    expect_session(&s, accept_of(SLP_SUBSCRIBE), SLP_E_NONE);
    expect_session(&s, fr(SLP_MEDIA), SLP_E_UNEXPECTED);            /* PUBLISH first */
    expect_session(&s, fr(SLP_PUBLISH), SLP_E_NONE);
    expect_session(&s, fr(SLP_MEDIA), SLP_E_NONE);
    expect_session(&s, fr(SLP_PUBLISH), SLP_E_NONE);                /* a new publisher */
    expect_session(&s, fr(SLP_SUBSCRIBE), SLP_E_UNEXPECTED);
    expect_session(&s, accept_of(SLP_SUBSCRIBE), SLP_E_UNEXPECTED);
    expect_session(&s, fr(SLP_EOS), SLP_E_NONE);
    expect_session(&s, fr(SLP_MEDIA), SLP_E_UNEXPECTED);

    slp_session_init(&s, false, SLP_ROLE_PUBLISHER);
    expect_session(&s, hello_as(SLP_ROLE_RELAY), SLP_E_NONE);
    expect_session(&s, accept_of(SLP_PUBLISH), SLP_E_NONE);
    expect_session(&s, fr(SLP_MEDIA), SLP_E_UNEXPECTED);            /* a relay sends no media */
    expect_session(&s, fr(SLP_EOS), SLP_E_UNEXPECTED);
    expect_session(&s, fr(SLP_PING), SLP_E_NONE);
}

/* proto/SLP.md section 5: a peer of a later version still opens with a
 * version 1 header and the v1 HELLO body, stating its highest version in the
 * body. A v1 side decodes that HELLO, lets the handshake go on, and from then
 * on both use min(theirs, 1) = 1: a frame with another header version is
 * still refused. (What the relay answers is tests/integration/test_relay.py.) */
static void test_hello_from_a_later_version(void **state)
{
    (void)state;
    static const uint8_t versions[] = { 2, 3, 0xff };
    for (size_t i = 0; i < sizeof(versions); i++) {
        uint8_t v = versions[i];
        struct slp_frame in = { .type = SLP_HELLO,
                                .hello = { SLP_ROLE_PUBLISHER, v, S("ingest-9"),
                                           S("sluice-ingest/9.0") } };
        size_t len;
        uint8_t *b = encode_exact(&in, &len);
        assert_int_equal(b[4], 1);                          /* the header: version 1 */
        assert_int_equal(b[SLP_HEADER_LEN + 1], v);         /* the body: up to v */
        struct slp_frame out;
        assert_int_equal(slp_decode(b, len, &out), SLP_OK);
        assert_int_equal(out.version, SLP_VERSION);
        assert_int_equal(out.hello.version, v);
        assert_frames_equal(&in, &out);
        free(b);

        struct slp_session s;                               /* a relay hears it */
        slp_session_init(&s, true, 0);
        expect_session(&s, out, SLP_E_NONE);
        expect_session(&s, fr(SLP_PUBLISH), SLP_E_NONE);
        slp_session_accepted(&s);
        expect_session(&s, fr(SLP_MEDIA), SLP_E_NONE);

        out.hello.role = SLP_ROLE_RELAY;                    /* a client hears a later relay */
        slp_session_init(&s, false, SLP_ROLE_SUBSCRIBER);
        expect_session(&s, out, SLP_E_NONE);
        expect_session(&s, accept_of(SLP_SUBSCRIBE), SLP_E_NONE);

        uint8_t h[SLP_HEADER_LEN + 8] = { 0 };              /* but version 1 is in use */
        put_header(h, 8, v, SLP_PING);
        expect_invalid(h, sizeof(h), SLP_E_UNSUPPORTED_VERSION);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_examples),
        cmocka_unit_test(test_roundtrip_every_type),
        cmocka_unit_test(test_roundtrip_limits),
        cmocka_unit_test(test_every_prefix_needs_more),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_media_refusals),
        cmocka_unit_test(test_malformed_bodies),
        cmocka_unit_test(test_encoder_refuses_invalid),
        cmocka_unit_test(test_media_header_over_shared_payload),
        cmocka_unit_test(test_evbuffer_peek_take),
        cmocka_unit_test(test_evbuffer_add),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_random_input),
        cmocka_unit_test(test_session_relay_side),
        cmocka_unit_test(test_session_client_side),
        cmocka_unit_test(test_hello_from_a_later_version),
    };
    return cmocka_run_group_tests(tests, setup_examples, NULL);
}
