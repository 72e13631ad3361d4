/* Internals of the TS annotator, shared by its three files:
 *   ts.c      input and sync, packet dispatch, frame batching and emission
 *   ts_psi.c  PAT/PMT section reassembly and parsing
 *   ts_es.c   the video PES probe: PTS/DTS, NAL units, keyframe or not
 * Every buffer here has a fixed size; nothing grows with the input.
 */
#ifndef SLUICE_TS_INT_H
#define SLUICE_TS_INT_H

#include "sluice/ts.h"

#define PSI_SECTION_MAX 1024     /* PAT and PMT: section_length <= 1021 */
#define PES_HEADER_MAX (9 + 255)

/* The byte view of one packet. */
struct ts_pkt {
    const uint8_t *p;
    unsigned pid;
    bool pusi, tei;
    bool has_payload;
    bool discontinuity;          /* adaptation field discontinuity_indicator */
    unsigned cc;
    const uint8_t *payload;
    size_t plen;
};

/* Parses the header and adaptation field of the packet at <p> (sync byte
 * already checked). A malformed adaptation field leaves no payload. */
void ts_pkt_parse(struct ts_pkt *k, const uint8_t *p);

/* The packets of the latest complete, valid section of one PSI PID. */
struct psi_copy {
    uint8_t pkts[TS_PSI_MAX_PACKETS * TS_PACKET];
    unsigned npkts;
};

/* A section being reassembled, with the packets that carried it. */
struct psi_asm {
    uint8_t sec[PSI_SECTION_MAX];
    size_t len;
    bool active;
    struct psi_copy seen;
    bool too_many;               /* more than TS_PSI_MAX_PACKETS packets */
};

struct psi_state {
    struct psi_asm pat_asm, pmt_asm;
    struct psi_copy pat, pmt;    /* latest copies: the KEYFRAME prefix */
};

/* Feeds a packet of PID 0 or of the PMT PID. Returns true when the program's
 * video or audio selection changed (the caller resets what depends on it). */
bool psi_feed(struct psi_state *s, struct ts_program *prog, struct ts_stats *st,
              const struct ts_pkt *k);
void psi_reset_assembly(struct psi_state *s);
void program_reset(struct ts_program *prog);

enum probe_state { PROBE_IDLE, PROBE_HEADER, PROBE_NAL, PROBE_DONE };
enum key_verdict { KEY_UNDECIDED, KEY_YES, KEY_NO };

/* Looks at one video PES: its header, then its NAL units up to the first
 * slice, which decides whether the access unit is a keyframe. */
struct es_probe {
    enum probe_state state;
    enum key_verdict verdict;
    enum ts_codec codec;
    uint8_t hdr[PES_HEADER_MAX];
    size_t hlen, hneed;
    int64_t pts, dts;            /* SLP_PTS_NONE until read */
    bool header_done;            /* pts/dts are final */
    unsigned zeros;              /* zero bytes just seen (capped at 2) */
    bool nal_next;               /* the next byte is a NAL header */
    bool saw_sps;
    uint8_t slice[4];            /* first bytes of an H.264 non-IDR slice */
    unsigned slice_len;
    bool want_slice;
};

/* Starts a new PES for <codec>. */
void es_probe_start(struct es_probe *e, enum ts_codec codec);
/* Feeds PES bytes (from the PES start on). Stops reading once decided. */
void es_probe_feed(struct es_probe *e, const uint8_t *p, size_t n);
/* Gives up on the current PES: undecided becomes KEY_NO. */
void es_probe_abort(struct es_probe *e);
/* Reads the PTS (and DTS) of a PES header lying whole in <p>; for audio. */
bool pes_read_pts(const uint8_t *p, size_t n, int64_t *pts, int64_t *dts);

#endif
