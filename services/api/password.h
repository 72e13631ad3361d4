/* Password hashing with scrypt (OpenSSL), stored as a PHC string:
 *
 *   $scrypt$ln=15,r=8,p=1$<salt>$<hash>
 *
 * with a 16-byte random salt and a 32-byte hash in unpadded standard base64.
 * The parameters travel with each hash, so raising the cost later leaves old
 * hashes verifiable. Hashing and verifying are slow on purpose (tens of
 * milliseconds, 32 MiB at ln=15): call them from a worker thread, never from
 * the event loop. All functions are thread-safe. */
#ifndef SLUICE_API_PASSWORD_H
#define SLUICE_API_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PASSWORD_HASH_MAX 128      /* an encoded hash, NUL included */
#define PASSWORD_SALT_LEN 16
#define PASSWORD_KEY_LEN 32
#define PASSWORD_LN_MIN 10         /* cost bounds we accept, as log2(N) */
#define PASSWORD_LN_MAX 18
#define PASSWORD_MIN_LEN 8         /* bytes, for passwords we set */
#define PASSWORD_MAX_LEN 1024

struct password_hash {
    unsigned ln, r, p;
    uint8_t salt[PASSWORD_SALT_LEN];
    uint8_t key[PASSWORD_KEY_LEN];
};

/* Parses an encoded hash. Pure. Returns 0, or -1 if malformed or outside the
 * bounds above. */
int password_parse(const char *encoded, struct password_hash *out);

/* Hashes <len> bytes of <pw> at cost <ln> into <out> (PASSWORD_HASH_MAX
 * bytes). Returns 0, or -1 (logged) on a CSPRNG or KDF failure. Slow. */
int password_hash(const char *pw, size_t len, unsigned ln, char *out, size_t outlen);

/* True if <pw> matches <encoded>, compared in constant time; false for a
 * malformed hash. Slow. */
bool password_verify(const char *pw, size_t len, const char *encoded);

#endif
