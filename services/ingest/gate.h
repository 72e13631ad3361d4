/* The gate: what the listen callback decides with, shared between the loop
 * (which changes it) and libsrt's receive thread (which reads it).
 *
 * It holds the current authorization table (an immutable snapshot, swapped
 * under a mutex held for a pointer copy and a reference count) and the names
 * published on this ingest (for 1409 when takeover is off). A decision takes
 * the mutex once, briefly, and does the parsing and the key hashing outside
 * it; it never waits on the network or the loop.
 */
#ifndef SLUICE_INGEST_GATE_H
#define SLUICE_INGEST_GATE_H

#include <stdbool.h>
#include <stddef.h>

#include "authtable.h"
#include "srtsrv.h"
#include "streamid.h"

struct gate;

struct gate_options {
    bool takeover;            /* a publisher with the key replaces a live one */
    bool playback;            /* m=request is served (issue 8); else 1501 */
};

/* Constructor; NULL if out of memory. */
struct gate *gate_new(const struct gate_options *o);
void gate_free(struct gate *g);

/* Loop: installs <t> (its reference is taken over; NULL is allowed). */
void gate_set_table(struct gate *g, struct authtable *t);

/* Loop: the current table, borrowed (valid until the next gate_set_table). */
const struct authtable *gate_table(const struct gate *g);

/* Loop: a publisher of <name> starts or stops on this ingest (counted: two
 * may overlap during a takeover). */
int gate_live_add(struct gate *g, const char *name);
void gate_live_remove(struct gate *g, const char *name);
bool gate_is_live(struct gate *g, const char *name);

struct gate_result {
    struct streamid sid;                       /* parsed (if code is not 1400) */
    struct auth_decision d;                    /* the table's answer */
    char passphrase[AUTH_PASSPHRASE_MAX + 1];  /* copied out of the table */
};

/* Any thread: parses <streamid> and decides it against the current table,
 * the mode and the live names. Returns the reject code (0: accept) and fills
 * <r>; r->d.why says why. */
int gate_check(struct gate *g, const char *streamid, size_t len, struct gate_result *r);

/* What was asked, safe to log (no credential): "publish cam1 with a key", or
 * the StreamID with its secrets masked when it did not parse. */
void gate_describe(const char *streamid, size_t len, const struct gate_result *r, char *out,
                   size_t outlen);

/* The srtsrv_gate_fn over gate_check(); <arg> is the gate. */
void gate_srt(const char *streamid, const char *addr, struct srtsrv_verdict *v, void *arg);

#endif
