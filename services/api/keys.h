/* Stream keys ("sk_…"), session ids ("ss_…") and the comparisons that guard
 * them. A key or session id is a prefix and 192 random bits from OpenSSL's
 * CSPRNG in unpadded base64url (32 characters). Keys are stored only as the
 * SHA-256 of the whole string (prefix included), in lower-case hex: they are
 * high-entropy, so a fast hash is enough and a key alone finds its stream
 * through an index. */
#ifndef SLUICE_API_KEYS_H
#define SLUICE_API_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define KEY_PREFIX "sk_"
#define SESSION_PREFIX "ss_"
#define KEY_RANDOM_BYTES 24
#define KEY_LEN (3 + 32)              /* what we generate */
/* What we accept from peers: the prefix and 16 to 128 base64url characters,
 * so keys of another generator (hex, longer) keep working if ever imported. */
#define KEY_BODY_MIN 16
#define KEY_BODY_MAX 128
#define KEY_MAX (3 + KEY_BODY_MAX)
#define SHA256_HEX_LEN 64

enum key_kind { KEY_INVALID, KEY_STREAM, KEY_SESSION };

/* Writes a new "<prefix>" + random string into <out> (at least KEY_LEN + 1
 * bytes). Returns 0, or -1 (logged) if the CSPRNG fails. */
int key_generate(const char *prefix, char *out, size_t outlen);

/* What the <len> bytes at <s> are: a well-formed stream key, session id, or
 * neither. Pure; never reads past <len>. */
enum key_kind key_kind(const char *s, size_t len);

/* The SHA-256 of <len> bytes at <s> as 64 lower-case hex digits + NUL. */
void key_sha256_hex(const void *s, size_t len, char out[SHA256_HEX_LEN + 1]);

/* True if the NUL-terminated <given> equals <expected>, in time that depends
 * on neither (both are hashed first, then compared with CRYPTO_memcmp). */
bool secret_equal(const char *given, const char *expected);

#endif
