/* The SRT StreamID of a Sluice client, parsed by a pure function (no I/O, no
 * globals, no allocation), so that the listen callback can call it on libsrt's
 * receive thread and a fuzzer can hammer it.
 *
 *   streamid = "#!::" pair *("," pair)          at most 512 bytes (libsrt's cap)
 *   pair     = key "=" value
 *   value    = 1*(visible ASCII but ",")        0x21..0x7e; no escaping
 *
 *   r  the stream name, [A-Za-z0-9_-]{1,64}                 required
 *   s  a stream key "sk_..." or a session id "ss_..."        required
 *   m  "publish" or "request"                                required
 *   u  a user name: accepted and only logged                 optional
 *   h  a host name (virtual hosting): accepted and ignored   optional
 *   t  the SRT content type: only "stream"                   optional
 *
 * Keys may come in any order; each at most once. Anything else (another key,
 * a key twice, an empty value, a missing r, s or m, the nested "#!:{...}"
 * form) is malformed: the listener refuses it with 1400. An unknown key is
 * refused rather than ignored so that a typo ("R=cam1", "key=...") fails at
 * once with a code that says "your StreamID is wrong".
 */
#ifndef SLUICE_INGEST_STREAMID_H
#define SLUICE_INGEST_STREAMID_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/names.h"

#define STREAMID_MAX 512          /* SRTO_STREAMID's limit */
#define STREAMID_CRED_MAX 200
#define STREAMID_USER_MAX 64

enum streamid_mode { STREAMID_PUBLISH, STREAMID_REQUEST };

struct streamid {
    char stream[STREAM_NAME_MAX + 1];
    char cred[STREAMID_CRED_MAX + 1];   /* the s= value as given */
    char user[STREAMID_USER_MAX + 1];   /* the u= value, or "" */
    enum streamid_mode mode;
};

/* Parses the <len> bytes at <s> into <out>. Returns 0, or -1 with a static,
 * printable reason in *<why> (<out> then holds nothing useful). */
int streamid_parse(const char *s, size_t len, struct streamid *out, const char **why);

/* What a credential is: a stream key ("sk_"), a session id ("ss_"), each
 * followed by 16 to 128 base64url characters (the api's grammar), or neither. */
enum cred_kind { CRED_INVALID, CRED_KEY, CRED_SESSION };
#define CRED_BODY_MIN 16
#define CRED_BODY_MAX 128

enum cred_kind cred_kind(const char *s, size_t len);

const char *streamid_mode_name(enum streamid_mode m);   /* "publish" */

/* A description of the <len> bytes at <s> that is safe to log: the values of
 * s= are masked (a key must never reach a log), everything else escaped.
 * Always NUL-terminates <out> (<outlen> bytes, at least 16). */
char *streamid_redact(const char *s, size_t len, char *out, size_t outlen);

#endif
