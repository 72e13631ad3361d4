/* PAT and PMT: section reassembly across packets, CRC check, parsing, and the
 * latest packet copies a KEYFRAME frame starts with. See ts.h, ts_int.h.
 * Only the first section of a packet is read (PAT and PMT are one section
 * each, normally in one packet); "next" tables (current_next 0) are ignored. */
#include "ts_int.h"

#include <string.h>

uint32_t ts_crc32(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xffffffff;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint32_t)p[i] << 24;
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x80000000) ? (crc << 1) ^ 0x04c11db7 : crc << 1;
    }
    return crc;
}

void program_reset(struct ts_program *prog)
{
    memset(prog, 0, sizeof(*prog));
    prog->program_number = prog->pmt_pid = prog->pcr_pid = -1;
    prog->video_pid = prog->audio_pid = -1;
}

void psi_reset_assembly(struct psi_state *s)
{
    s->pat_asm.active = false;
    s->pmt_asm.active = false;
}

static unsigned pid13(const uint8_t *p)
{
    return (unsigned)(p[0] & 0x1f) << 8 | p[1];
}

static unsigned len12(const uint8_t *p)
{
    return (unsigned)(p[0] & 0x0f) << 8 | p[1];
}

/* A whole section of <len> bytes with a long header, current, and a good
 * CRC, whose table id is <table_id>. */
static bool section_ok(const uint8_t *sec, size_t len, uint8_t table_id)
{
    return sec[0] == table_id && (sec[1] & 0x80) && (sec[5] & 0x01) && len >= 12 &&
           ts_crc32(sec, len) == 0;
}

/* PAT: the first program with a number other than 0 (0 names the NIT). */
static bool parse_pat(struct ts_program *prog, const uint8_t *sec, size_t len)
{
    for (size_t i = 8; i + 4 <= len - 4; i += 4) {
        unsigned number = (unsigned)sec[i] << 8 | sec[i + 1];
        if (number == 0)
            continue;
        int pmt_pid = (int)pid13(sec + i + 2);
        if (pmt_pid == prog->pmt_pid && (int)number == prog->program_number)
            return false;
        program_reset(prog);
        prog->program_number = (int)number;
        prog->pmt_pid = pmt_pid;
        return true;
    }
    return false;
}

static enum ts_codec video_codec(uint8_t stream_type)
{
    switch (stream_type) {
    case 0x1b: return TS_CODEC_H264;
    case 0x24: return TS_CODEC_HEVC;
    case 0x01: case 0x02: case 0x10: case 0x20: case 0x33: return TS_CODEC_OTHER;
    }
    return TS_CODEC_NONE;
}

static bool is_audio(uint8_t stream_type)
{
    switch (stream_type) {
    case 0x03: case 0x04: case 0x0f: case 0x11: case 0x81: case 0x87: return true;
    }
    return false;
}

/* Picks the video and audio streams from the ES list of <prog>. */
static void choose_streams(struct ts_program *prog)
{
    prog->video_pid = prog->audio_pid = -1;
    prog->video_codec = TS_CODEC_NONE;
    for (unsigned i = 0; i < prog->nes; i++) {
        enum ts_codec c = video_codec(prog->es[i].stream_type);
        bool better = c == TS_CODEC_H264 || c == TS_CODEC_HEVC;
        if (c != TS_CODEC_NONE && (prog->video_pid < 0 ||
                                   (better && prog->video_codec == TS_CODEC_OTHER))) {
            prog->video_pid = prog->es[i].pid;
            prog->video_codec = c;
        }
        if (is_audio(prog->es[i].stream_type) && prog->audio_pid < 0) {
            prog->audio_pid = prog->es[i].pid;
            prog->audio_type = prog->es[i].stream_type;
        }
    }
}

/* PMT: the PCR PID and the elementary streams. Returns true when the video
 * or audio selection changed; sets *<bad> if the section is malformed. */
static bool parse_pmt(struct ts_program *prog, const uint8_t *sec, size_t len, bool *bad)
{
    if ((int)((unsigned)sec[3] << 8 | sec[4]) != prog->program_number)
        return false;
    size_t end = len - 4;
    if (len < 16 || 12 + len12(sec + 10) > end) {
        *bad = true;
        return false;
    }
    struct ts_program next = *prog;
    next.pcr_pid = (int)pid13(sec + 8);
    next.nes = 0;
    for (size_t i = 12 + len12(sec + 10); i < end;) {
        if (i + 5 > end || i + 5 + len12(sec + i + 3) > end) {
            *bad = true;
            return false;
        }
        if (next.nes < TS_MAX_ES)
            next.es[next.nes++] = (struct ts_es){ (uint16_t)pid13(sec + i + 1), sec[i] };
        i += 5 + len12(sec + i + 3);
    }
    choose_streams(&next);
    bool changed = next.video_pid != prog->video_pid ||
                   next.video_codec != prog->video_codec || next.audio_pid != prog->audio_pid;
    *prog = next;
    return changed;
}

/* Handles the complete section in <a>; returns true when the selection of
 * streams changed. */
static bool section_done(struct psi_state *s, struct psi_asm *a, size_t len, bool is_pat,
                         struct ts_program *prog, struct ts_stats *st)
{
    a->active = false;
    if (!section_ok(a->sec, len, is_pat ? 0x00 : 0x02)) {
        st->psi_errors++;
        return false;
    }
    bool bad = false;
    bool changed = is_pat ? parse_pat(prog, a->sec, len) : parse_pmt(prog, a->sec, len, &bad);
    if (bad) {
        st->psi_errors++;
        return false;
    }
    if (is_pat && changed) {          /* a new program: its PMT is still to come */
        s->pmt_asm.active = false;
        s->pmt.npkts = 0;
    }
    struct psi_copy *keep = is_pat ? &s->pat : &s->pmt;
    if (!a->too_many)
        *keep = a->seen;
    return changed;
}

/* Appends section bytes to <a>; completes it when its length is reached. */
static bool section_append(struct psi_state *s, struct psi_asm *a, const uint8_t *p,
                           size_t n, bool is_pat, struct ts_program *prog,
                           struct ts_stats *st)
{
    size_t room = PSI_SECTION_MAX - a->len;
    memcpy(a->sec + a->len, p, n < room ? n : room);
    a->len += n < room ? n : room;
    if (a->len < 3)
        return false;
    if (a->sec[0] == 0xff) {           /* stuffing: no section here */
        a->active = false;
        return false;
    }
    size_t need = 3 + len12(a->sec + 1);
    if (need > PSI_SECTION_MAX || need < 12) {
        a->active = false;
        st->psi_errors++;
        return false;
    }
    return a->len >= need ? section_done(s, a, need, is_pat, prog, st) : false;
}

static void remember_packet(struct psi_asm *a, const uint8_t *pkt)
{
    if (a->seen.npkts == TS_PSI_MAX_PACKETS) {
        a->too_many = true;
        return;
    }
    memcpy(a->seen.pkts + a->seen.npkts * TS_PACKET, pkt, TS_PACKET);
    a->seen.npkts++;
}

bool psi_feed(struct psi_state *s, struct ts_program *prog, struct ts_stats *st,
              const struct ts_pkt *k)
{
    bool is_pat = k->pid == 0;
    struct psi_asm *a = is_pat ? &s->pat_asm : &s->pmt_asm;
    if (!k->has_payload || k->plen == 0 || k->tei)
        return false;
    const uint8_t *data = k->payload;
    size_t n = k->plen;
    bool changed = false;
    if (k->pusi) {
        size_t ptr = data[0];
        if (1 + ptr > n) {
            st->psi_errors++;
            a->active = false;
            return false;
        }
        if (a->active) {               /* the end of the previous section */
            remember_packet(a, k->p);
            changed = section_append(s, a, data + 1, ptr, is_pat, prog, st);
        }
        a->active = true;
        a->len = 0;
        a->seen.npkts = 0;
        a->too_many = false;
        data += 1 + ptr;
        n -= 1 + ptr;
    } else if (!a->active) {
        return false;
    }
    remember_packet(a, k->p);
    return section_append(s, a, data, n, is_pat, prog, st) || changed;
}
