/* SLP codec: the one implementation of proto/SLP.md, for every daemon and tool.
 *
 * Decoding is pure (no I/O, no allocation, no globals) and works on a byte span:
 *
 *   struct slp_frame f;
 *   switch (slp_decode(buf, len, &f)) {
 *   case SLP_OK:        handle(&f); consume f.size bytes; break;
 *   case SLP_NEED_MORE: read until len >= f.size (a lower bound), retry; break;
 *   case SLP_INVALID:   send ERROR f.error, close; break;
 *   }
 *
 * A decoded frame's strings and payload point into <buf>: the caller keeps
 * <buf> alive while it uses them. The header is checked as soon as its bytes
 * are there, so an oversized or unknown frame is refused before its body is
 * buffered.
 *
 * Encoding writes whole frames into caller-owned memory. The encoders accept
 * exactly what the decoder accepts: a field the decoder would refuse makes the
 * encoder refuse too (returns 0), so a daemon cannot emit an invalid frame.
 *
 * The relay's hot path: a publisher's MEDIA frame is forwarded verbatim, by
 * reference, to every subscriber (no field in it is per subscriber). The one
 * per-subscriber change, DISCONTINUITY after a drop-gap, re-encodes only the
 * SLP_MEDIA_HEADER_LEN-byte header with slp_encode_media_header() and shares
 * the payload (frame + SLP_MEDIA_HEADER_LEN onwards) as before.
 */
#ifndef SLUICE_SLP_H
#define SLUICE_SLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slp-t.h"

struct evbuffer;

/* Decodes the frame at the start of the <len> bytes at <buf>.
 *   SLP_OK         <f> holds a whole valid frame of f->size bytes.
 *   SLP_NEED_MORE  the bytes are a valid beginning: f->size is how many bytes
 *                  the frame needs in all, as far as known (SLP_HEADER_LEN
 *                  until the header is complete). Nothing is consumed.
 *   SLP_INVALID    they can never become a valid frame: f->error is the code
 *                  to send in an ERROR frame, f->why a static reason.
 * Never reads beyond <len> bytes, nor beyond the frame. */
enum slp_status slp_decode(const uint8_t *buf, size_t len, struct slp_frame *f);

/* As slp_decode(), checking only the header (version, type, length): SLP_OK
 * then means "a valid header", with type, flags and size set. */
enum slp_status slp_decode_header(const uint8_t *buf, size_t len, struct slp_frame *f);

/* Validates <f> as the encoder will send it. Returns SLP_E_NONE, or the
 * error code (SLP_E_BAD_NAME, SLP_E_BAD_FRAME, ...) with a static reason in
 * *<why> (<why> may be NULL). */
enum slp_error slp_check(const struct slp_frame *f, const char **why);

/* The encoded size of <f> (header included), or 0 if <f> is invalid. */
size_t slp_encoded_size(const struct slp_frame *f);

/* Encodes <f> as one whole frame into <dst> (<cap> bytes, caller-owned), in
 * SLP_VERSION, ignoring f->version and f->size. Returns the frame's size, or
 * 0 (nothing written) if <f> is invalid or <cap> too small. */
size_t slp_encode(uint8_t *dst, size_t cap, const struct slp_frame *f);

/* Writes the first SLP_MEDIA_HEADER_LEN bytes of a MEDIA frame whose payload
 * is <ts_len> bytes of TS, to be sent right after it. Returns
 * SLP_MEDIA_HEADER_LEN, or 0 if <ts_len> is not a whole number of packets
 * within bounds or <pts> / <wall_us> is out of range. */
size_t slp_encode_media_header(uint8_t dst[SLP_MEDIA_HEADER_LEN], uint16_t flags,
                               int64_t pts, int64_t wall_us, size_t ts_len);

/* evbuffer glue for connections (slp_evbuffer.c; not pure: these touch the
 * evbuffer).
 *
 * slp_evbuffer_peek() looks at the frame at the front of <in> without
 * removing anything and checks its header: SLP_OK means the whole frame is
 * buffered (f->type, f->flags, f->size set; the body is not yet decoded).
 * slp_evbuffer_take() then removes that frame into <buf> (<cap> bytes,
 * caller-owned: a reusable buffer, or a refcounted chunk to fan out) and
 * decodes it there; <f> points into <buf>. SLP_INVALID ends the connection
 * (send ERROR f->error, close), so what was removed by then does not matter.
 * Typical loop:
 *
 *   while (slp_evbuffer_peek(in, &f) == SLP_OK) {
 *       uint8_t *chunk = chunk_new(f.size);
 *       if (slp_evbuffer_take(in, chunk, f.size, &f) != SLP_OK) ... ERROR, close
 *   }
 */
enum slp_status slp_evbuffer_peek(struct evbuffer *in, struct slp_frame *f);
enum slp_status slp_evbuffer_take(struct evbuffer *in, uint8_t *buf, size_t cap,
                                  struct slp_frame *f);

/* Encodes <f> and appends it to <out> (the payload of a MEDIA frame is
 * copied). Returns 0, or -1 if <f> is invalid or on allocation failure. */
int slp_evbuffer_add(struct evbuffer *out, const struct slp_frame *f);

/* Appends an ERROR frame with <code> and a printf-formatted text, cut to
 * SLP_TEXT_MAX bytes (NULL <fmt>: the code's default meaning). Returns 0/-1. */
int slp_evbuffer_add_error(struct evbuffer *out, enum slp_error code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The handshake order of SLP.md section 6 ("What may arrive when"), pure.
 * A relay keeps one session per connection:
 *
 *   slp_session_init(&c->sess, true, 0);
 *   on every decoded frame:
 *       if ((e = slp_session_recv(&c->sess, &f, &why)) != SLP_E_NONE)
 *           send ERROR e (why), close;
 *   once it has sent ACCEPT:  slp_session_accepted(&c->sess);
 *
 * A client inits with relay = false and its own role. */
void slp_session_init(struct slp_session *s, bool relay, enum slp_role client);

/* Checks that <f> may arrive now and advances the session. Returns
 * SLP_E_NONE, or SLP_E_UNEXPECTED (SLP_E_BAD_FRAME for a HELLO of the wrong
 * role) with a static reason in *<why>. An ERROR is always allowed: the
 * caller then closes. */
enum slp_error slp_session_recv(struct slp_session *s, const struct slp_frame *f,
                                const char **why);

/* Relay side: we sent ACCEPT, so the client may stream. */
void slp_session_accepted(struct slp_session *s);

/* Names from the tables, or NULL for a value the table does not hold. */
const char *slp_type_name(unsigned type);       /* "HELLO" */
const char *slp_error_name(unsigned code);      /* "conflict" */
const char *slp_error_text(unsigned code);      /* "not the publish lease holder" */
const char *slp_eos_name(unsigned reason);      /* "ended" */
const char *slp_role_name(unsigned role);       /* "publisher" */
const char *slp_start_name(unsigned start);     /* "keyframe" */

/* "keyframe" or "live". Returns 0, or -1 if <s> is neither. */
int slp_start_parse(const char *s, enum slp_start *out);

/* A string field over the NUL-terminated <s> (NULL: empty). */
struct slp_str slp_cstr(const char *s);

/* True if <s> holds exactly the NUL-terminated <c>. */
bool slp_str_eq(struct slp_str s, const char *c);

#endif
