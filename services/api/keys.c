/* Stream keys and session ids: see keys.h. */
#include "keys.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "b64.h"
#include "sluice/log.h"

int key_generate(const char *prefix, char *out, size_t outlen)
{
    uint8_t raw[KEY_RANDOM_BYTES];
    size_t plen = strlen(prefix);
    if (outlen < plen + B64_ENCODED_LEN(sizeof(raw)) + 1)
        return -1;
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        log_error("keys: the CSPRNG failed");
        return -1;
    }
    memcpy(out, prefix, plen);
    b64_encode(raw, sizeof(raw), out + plen, outlen - plen, true);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

enum key_kind key_kind(const char *s, size_t len)
{
    if (len < 3 + KEY_BODY_MIN || len > KEY_MAX)
        return KEY_INVALID;
    enum key_kind kind;
    if (memcmp(s, KEY_PREFIX, 3) == 0)
        kind = KEY_STREAM;
    else if (memcmp(s, SESSION_PREFIX, 3) == 0)
        kind = KEY_SESSION;
    else
        return KEY_INVALID;
    for (size_t i = 3; i < len; i++) {
        if (!b64url_char(s[i]))
            return KEY_INVALID;
    }
    return kind;
}

void key_sha256_hex(const void *s, size_t len, char out[SHA256_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(s, len, md);
    for (size_t i = 0; i < sizeof(md); i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[SHA256_HEX_LEN] = '\0';
}

bool secret_equal(const char *given, const char *expected)
{
    uint8_t a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)given, strlen(given), a);
    SHA256((const uint8_t *)expected, strlen(expected), b);
    return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}
