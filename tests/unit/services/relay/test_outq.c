/* Chunks and output queues: frames shared by reference (never copied per
 * queue), references dropped once written or cut, frame boundaries kept
 * through partial writes, the DISCONTINUITY header re-encoded over a shared
 * payload, and a cut that keeps the framing whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "../../../../services/relay/chunk.h"
#include "../../../../services/relay/outq.h"
#include "sluice/refbuf.h"
#include "sluice/slp.h"

/* A MEDIA frame of <packets> TS packets as a chunk, decoded like conn.c does. */
static struct chunk *media_chunk(unsigned packets, uint16_t flags, int64_t pts)
{
    size_t ts_len = packets * SLP_TS_PACKET;
    struct chunk *c = chunk_new(SLP_MEDIA_HEADER_LEN + ts_len);
    assert_non_null(c);
    assert_int_equal(slp_encode_media_header(c->buf.data, flags, pts, 1234567, ts_len),
                     SLP_MEDIA_HEADER_LEN);
    for (unsigned i = 0; i < packets; i++) {
        uint8_t *p = c->buf.data + SLP_MEDIA_HEADER_LEN + i * SLP_TS_PACKET;
        memset(p, (int)(pts + i) & 0xff, SLP_TS_PACKET);
        p[0] = 0x47;
    }
    c->type = SLP_MEDIA;
    c->flags = flags;
    c->pts = pts;
    c->wall_us = 1234567;
    return c;
}

static void pair(int sv[2], int sndbuf)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    if (sndbuf > 0) {
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof(sndbuf));
    }
}

/* Reads whatever is waiting on <fd> (non-blocking) into <into>. */
static void slurp(int fd, struct evbuffer *into)
{
    fcntl(fd, F_SETFL, O_NONBLOCK);
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        evbuffer_add(into, buf, (size_t)n);
}

/* Decodes the next frame of <in> (removing it). */
static enum slp_status next_frame(struct evbuffer *in, uint8_t *buf, struct slp_frame *f)
{
    enum slp_status st = slp_evbuffer_peek(in, f);
    if (st != SLP_OK)
        return st;
    return slp_evbuffer_take(in, buf, SLP_MAX_FRAME, f);
}

static void test_shared_by_reference(void **state)
{
    (void)state;
    uint64_t live0 = refbuf_live_count();
    struct outq a, b;
    assert_int_equal(outq_init(&a), 0);
    assert_int_equal(outq_init(&b), 0);
    struct chunk *c = media_chunk(10, SLP_F_KEYFRAME, 9000);
    assert_ptr_equal(c->buf.data, (uint8_t *)c + sizeof(*c));   /* one block per frame */
    assert_int_equal(outq_push_chunk(&a, c), 0);
    assert_int_equal(outq_push_chunk(&b, c), 0);
    assert_int_equal(c->buf.refs, 3);
    /* the queue points at the chunk's own bytes: nothing was copied */
    struct evbuffer_iovec v;
    assert_int_equal(evbuffer_peek(a.buf, -1, NULL, &v, 1), 1);
    assert_ptr_equal(v.iov_base, c->buf.data);
    assert_int_equal(outq_bytes(&a), c->buf.len);
    assert_int_equal(outq_frames(&a), 1);
    outq_fini(&a);
    assert_int_equal(c->buf.refs, 2);
    int sv[2];
    pair(sv, 0);
    assert_int_equal(outq_write(&b, sv[0]), (ssize_t)c->buf.len);
    assert_int_equal(c->buf.refs, 1);            /* written: libevent let go of it */
    assert_int_equal(outq_frames(&b), 0);
    errno = 0;
    assert_int_equal(outq_write(&b, sv[0]), 0);   /* empty: nothing to do */
    outq_fini(&b);
    chunk_unref(c);
    assert_int_equal(refbuf_live_count(), live0);
    assert_int_equal(refbuf_sends(), 0);
    close(sv[0]);
    close(sv[1]);
}

static void test_discontinuity_header(void **state)
{
    (void)state;
    struct outq q;
    assert_int_equal(outq_init(&q), 0);
    struct chunk *c = media_chunk(3, SLP_F_KEYFRAME, 180000);
    assert_int_equal(outq_push_media_flags(&q, c, SLP_F_KEYFRAME | SLP_F_DISCONTINUITY), 0);
    assert_int_equal(outq_bytes(&q), c->buf.len);
    /* the payload is still the chunk's: only the 24-byte header is new */
    struct evbuffer_iovec v[2];
    assert_int_equal(evbuffer_peek(q.buf, -1, NULL, v, 2), 2);
    assert_int_equal(v[0].iov_len, SLP_MEDIA_HEADER_LEN);
    assert_ptr_equal(v[1].iov_base, c->buf.data + SLP_MEDIA_HEADER_LEN);
    int sv[2];
    pair(sv, 0);
    assert_int_equal(outq_write(&q, sv[0]), (ssize_t)c->buf.len);
    struct evbuffer *in = evbuffer_new();
    slurp(sv[1], in);
    uint8_t *buf = malloc(SLP_MAX_FRAME);
    struct slp_frame f;
    assert_int_equal(next_frame(in, buf, &f), SLP_OK);
    assert_int_equal(f.type, SLP_MEDIA);
    assert_int_equal(f.flags, SLP_F_KEYFRAME | SLP_F_DISCONTINUITY);
    assert_int_equal(f.media.pts, 180000);
    assert_int_equal(f.media.wall_us, 1234567);
    assert_memory_equal(f.media.ts, c->buf.data + SLP_MEDIA_HEADER_LEN, f.media.ts_len);
    assert_int_equal(c->buf.refs, 1);
    /* a chunk that is not MEDIA cannot be re-flagged */
    struct chunk *ctl = chunk_copy("\0\0\0\1\1\4\0\0\3", 9);
    assert_int_equal(outq_push_media_flags(&q, ctl, 0), -1);
    assert_int_equal(outq_bytes(&q), 0);
    chunk_unref(ctl);
    free(buf);
    evbuffer_free(in);
    outq_fini(&q);
    chunk_unref(c);
    close(sv[0]);
    close(sv[1]);
}

/* Many frames through a small socket buffer: partial writes, and the
 * receiver sees the same frames in the same order. */
static void test_partial_writes_keep_frames(void **state)
{
    (void)state;
    struct outq q;
    assert_int_equal(outq_init(&q), 0);
    int sv[2];
    pair(sv, 4096);
    struct chunk *c[300];
    for (int i = 0; i < 300; i++) {
        c[i] = media_chunk(1 + i % 7, i % 25 == 0 ? SLP_F_KEYFRAME : 0, i);
        if (i % 50 == 7) {
            struct slp_frame ping = { .type = SLP_PING, .ping = { (uint64_t)i } };
            assert_int_equal(outq_push_frame(&q, &ping), 0);
        }
        assert_int_equal(outq_push_chunk(&q, c[i]), 0);
    }
    assert_int_equal(outq_frames(&q), 306);     /* the ring grew past its first size */
    struct evbuffer *in = evbuffer_new();
    int writes = 0;
    while (outq_bytes(&q) > 0) {
        ssize_t n = outq_write(&q, sv[0]);
        assert_true(n > 0 || (n == -1 && errno == EAGAIN));
        writes += n > 0;
        slurp(sv[1], in);
    }
    assert_true(writes > 10);
    assert_int_equal(outq_frames(&q), 0);
    uint8_t *buf = malloc(SLP_MAX_FRAME);
    struct slp_frame f;
    int pings = 0;
    for (int i = 0; i < 300;) {
        assert_int_equal(next_frame(in, buf, &f), SLP_OK);
        if (f.type == SLP_PING) {
            pings++;
            continue;
        }
        assert_int_equal(f.type, SLP_MEDIA);
        assert_int_equal(f.media.pts, i);
        assert_int_equal(f.media.ts_len, (size_t)(1 + i % 7) * SLP_TS_PACKET);
        assert_int_equal(c[i]->buf.refs, 1);
        chunk_unref(c[i]);
        i++;
    }
    assert_int_equal(pings, 6);
    assert_int_equal(evbuffer_get_length(in), 0);
    free(buf);
    evbuffer_free(in);
    outq_fini(&q);
    close(sv[0]);
    close(sv[1]);
}

/* A cut keeps the frame under way, drops the rest, and the next frame
 * queued (the ERROR) follows it at a frame boundary. */
static void test_cut_keeps_framing(void **state)
{
    (void)state;
    struct outq q;
    assert_int_equal(outq_init(&q), 0);
    int sv[2];
    pair(sv, 4096);
    struct chunk *c[40];
    for (int i = 0; i < 40; i++) {
        c[i] = media_chunk(20, 0, i);
        assert_int_equal(outq_push_chunk(&q, c[i]), 0);
    }
    ssize_t n = outq_write(&q, sv[0]);
    assert_true(n > 0 && (size_t)n % c[0]->buf.len != 0);   /* in the middle of a frame */
    size_t first = (size_t)n / c[0]->buf.len;                /* frames fully written */
    size_t queued = outq_bytes(&q);
    size_t cut = outq_cut(&q);
    size_t left = c[0]->buf.len - (size_t)n % c[0]->buf.len;
    assert_int_equal(cut, queued - left);
    assert_int_equal(outq_bytes(&q), left);
    assert_int_equal(outq_frames(&q), 1);
    for (int i = (int)first + 1; i < 40; i++)
        assert_int_equal(c[i]->buf.refs, 1);                 /* cut: references dropped */
    struct slp_frame err = { .type = SLP_ERROR, .err = { SLP_E_TOO_SLOW, slp_cstr("slow") } };
    assert_int_equal(outq_push_frame(&q, &err), 0);
    struct evbuffer *in = evbuffer_new();
    while (outq_bytes(&q) > 0) {
        outq_write(&q, sv[0]);
        slurp(sv[1], in);
    }
    slurp(sv[1], in);
    uint8_t *buf = malloc(SLP_MAX_FRAME);
    struct slp_frame f;
    for (size_t i = 0; i <= first; i++) {
        assert_int_equal(next_frame(in, buf, &f), SLP_OK);
        assert_int_equal(f.type, SLP_MEDIA);
        assert_int_equal(f.media.pts, (int64_t)i);
    }
    assert_int_equal(next_frame(in, buf, &f), SLP_OK);
    assert_int_equal(f.type, SLP_ERROR);
    assert_int_equal(f.err.code, SLP_E_TOO_SLOW);
    assert_int_equal(evbuffer_get_length(in), 0);
    /* a cut with nothing under way drops everything */
    for (int i = 0; i < 3; i++)
        assert_int_equal(outq_push_chunk(&q, c[i]), 0);
    assert_int_equal(outq_cut(&q), 3 * c[0]->buf.len);
    assert_int_equal(outq_frames(&q), 0);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(c[i]->buf.refs, 1);
        chunk_unref(c[i]);
    }
    free(buf);
    evbuffer_free(in);
    outq_fini(&q);
    close(sv[0]);
    close(sv[1]);
}

static void test_write_error(void **state)
{
    (void)state;
    struct outq q;
    assert_int_equal(outq_init(&q), 0);
    int sv[2];
    pair(sv, 0);
    close(sv[1]);
    struct chunk *c = media_chunk(2, 0, 1);
    assert_int_equal(outq_push_chunk(&q, c), 0);
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(outq_write(&q, sv[0]), -1);
    assert_int_equal(errno, EPIPE);
    outq_fini(&q);
    assert_int_equal(c->buf.refs, 1);
    chunk_unref(c);
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_by_reference),
        cmocka_unit_test(test_discontinuity_header),
        cmocka_unit_test(test_partial_writes_keep_frames),
        cmocka_unit_test(test_cut_keeps_framing),
        cmocka_unit_test(test_write_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
