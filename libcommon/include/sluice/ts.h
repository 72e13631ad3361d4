/* The TS annotator: MPEG-TS in, SLP MEDIA frames out, honouring the media
 * contract of proto/SLP.md (section 9). Ingest parses each stream with it once;
 * nobody downstream parses TS again. Pure: no I/O, no clock of its own (the
 * caller passes its wall clock), no globals; it allocates once, in
 * ts_annotator_new(), and never while feeding, whatever the input.
 *
 *   struct ts_annotator *a = ts_annotator_new(NULL);
 *   on every read:  ts_annotator_feed(a, buf, n, clock_wall_us(), on_frame, conn);
 *   on a timer:     ts_annotator_feed(a, NULL, 0, clock_wall_us(), on_frame, conn);
 *   at the end:     ts_annotator_flush(a, on_frame, conn); ts_annotator_free(a);
 *
 *   static void on_frame(const struct ts_frame *f, void *arg) {
 *       uint8_t hdr[SLP_MEDIA_HEADER_LEN];
 *       slp_encode_media_header(hdr, f->flags, f->pts, f->wall_us, f->len);
 *       evbuffer_add(out, hdr, sizeof(hdr));
 *       evbuffer_add(out, f->ts, f->len);      // f->ts is only valid during the call
 *   }
 *
 * What it does with the bytes:
 *  - Input may come in chunks of any size: packets split across calls are
 *    reassembled. Sync is found (and found again after garbage) by requiring
 *    two sync bytes 188 bytes apart; bytes skipped meanwhile are counted.
 *  - PAT and PMT sections are reassembled and CRC-checked; the first program
 *    is used. Its video PID is the first H.264 (stream type 0x1b) or HEVC
 *    (0x24) stream, else the first other video stream (passed through, no
 *    keyframes found); its audio PID the first AAC, MP3, AC-3 or E-AC-3 one.
 *    Every PID is passed through; null packets (PID 0x1fff) are dropped.
 *  - For each PES on the video PID it reads the PTS and DTS and the NAL
 *    units up to the first slice: a keyframe is an H.264 IDR (NAL type 5), or
 *    an I slice after an SPS in the same access unit; an HEVC IRAP (NAL types
 *    16-21). Start codes may straddle TS packets.
 *  - Frames are cut at each video PES start (so a keyframe starts a frame),
 *    when a frame reaches max_packets, and when its first packet has waited
 *    max_delay_us (checked on every feed). A keyframe frame is emitted as the
 *    latest PAT packets, the latest PMT packets, then the packets from the one
 *    that begins the keyframe's PES (PAT/PMT packets just before it are not
 *    repeated). With no video PID, a frame starting with an audio PES is made
 *    a keyframe every audio_key_interval.
 */
#ifndef SLUICE_TS_H
#define SLUICE_TS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slp-t.h"

#define TS_PACKET           188
#define TS_PID_NULL         0x1fff
#define TS_MAX_ES           16      /* elementary streams remembered per program */
#define TS_PSI_MAX_PACKETS  6       /* a 1024-byte section spans at most 6 packets */
#define TS_FRAME_MAX_PACKETS (SLP_MEDIA_MAX_PACKETS - 2 * TS_PSI_MAX_PACKETS)
/* A keyframe is recognised when its first slice begins within the frame that
 * holds its PES start; 16 packets leave room for the parameter sets and SEI
 * before it (x264's first SEI alone is some 700 bytes). */
#define TS_FRAME_MIN_PACKETS 16

enum ts_codec {
    TS_CODEC_NONE,        /* no video stream (yet) */
    TS_CODEC_H264,
    TS_CODEC_HEVC,
    TS_CODEC_OTHER,       /* some other video: passed through, no keyframes */
};

struct ts_es {
    uint16_t pid;
    uint8_t stream_type;
};

/* What the latest PAT and PMT said. PIDs are -1 until known. */
struct ts_program {
    int program_number;
    int pmt_pid;
    int pcr_pid;
    int video_pid;
    enum ts_codec video_codec;
    int audio_pid;
    uint8_t audio_type;
    unsigned nes;
    struct ts_es es[TS_MAX_ES];
};

struct ts_stats {
    uint64_t packets;        /* whole packets processed */
    uint64_t frames;         /* frames emitted */
    uint64_t keyframes;      /* of which KEYFRAME */
    uint64_t skipped_bytes;  /* dropped while looking for sync */
    uint64_t sync_losses;
    uint64_t cc_errors;      /* continuity errors on the video PID */
    uint64_t psi_errors;     /* PAT/PMT sections refused (length, CRC) */
};

/* One MEDIA frame's worth. <ts> belongs to the annotator and is valid only
 * during the emit callback. */
struct ts_frame {
    uint16_t flags;          /* SLP_F_KEYFRAME, SLP_F_DISCONTINUITY */
    int64_t pts;             /* 90 kHz, of the primary PES beginning in the frame, */
    int64_t dts;             /* or SLP_PTS_NONE; dts = pts when the PES has none */
    int64_t pcr;             /* 27 MHz: the first PCR in the frame, or -1 */
    int64_t wall_us;         /* the caller's clock when the frame's first packet came */
    const uint8_t *ts;       /* whole 188-byte packets */
    size_t len;
};

/* Called for each frame, in order. It must not call back into the annotator. */
typedef void (*ts_emit_fn)(const struct ts_frame *f, void *arg);

struct ts_annotator_options {
    unsigned max_packets;        /* per frame (PAT/PMT prefix aside), at least
                                    TS_FRAME_MIN_PACKETS; 0 = 512 */
    int64_t max_delay_us;        /* 0 = 100 ms */
    int64_t audio_key_interval;  /* 90 kHz; 0 = 90000 (1 s) */
};

struct ts_annotator;

/* Constructor (NULL <opts>: defaults). NULL on allocation failure or when
 * max_packets is outside [TS_FRAME_MIN_PACKETS, TS_FRAME_MAX_PACKETS]. */
struct ts_annotator *ts_annotator_new(const struct ts_annotator_options *opts);
void ts_annotator_free(struct ts_annotator *a);

/* Feeds <len> bytes of TS (<buf> stays the caller's; NULL with len 0 only
 * applies the delay bound). <now_us> is the caller's wall clock, copied into
 * the frames. Emits zero or more frames through <emit>(<arg>). */
void ts_annotator_feed(struct ts_annotator *a, const uint8_t *buf, size_t len,
                       int64_t now_us, ts_emit_fn emit, void *arg);

/* End of input: emits whatever is batched. Bytes of an incomplete packet are
 * dropped. The annotator may be fed again afterwards. */
void ts_annotator_flush(struct ts_annotator *a, ts_emit_fn emit, void *arg);

/* The input restarts (a looped file, a new source): the next KEYFRAME frame
 * carries SLP_F_DISCONTINUITY, and continuity tracking starts afresh. */
void ts_annotator_discontinuity(struct ts_annotator *a);

const struct ts_program *ts_annotator_program(const struct ts_annotator *a);
const struct ts_stats *ts_annotator_stats(const struct ts_annotator *a);

/* Packet helpers, on one whole packet. */
unsigned ts_packet_pid(const uint8_t *pkt);
bool ts_packet_pusi(const uint8_t *pkt);
/* The PCR of <pkt> in 27 MHz units, or -1 if it carries none. */
int64_t ts_packet_pcr(const uint8_t *pkt);

/* CRC-32/MPEG-2 of <len> bytes (0 over a whole PSI section with its CRC). */
uint32_t ts_crc32(const uint8_t *p, size_t len);

#endif
