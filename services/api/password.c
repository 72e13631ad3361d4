/* scrypt password hashes: see password.h. */
#include "password.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "b64.h"
#include "sluice/log.h"

#define SCRYPT_R 8
#define SCRYPT_P 1
#define SCRYPT_R_MAX 32
#define SCRYPT_P_MAX 16

/* Parses a decimal number of at most 2 digits at *<p> ending with <end>, and
 * moves *<p> past <end>. */
static int parse_small(const char **p, char end, unsigned *out)
{
    unsigned v = 0;
    int digits = 0;
    for (; **p >= '0' && **p <= '9' && digits < 3; (*p)++, digits++)
        v = v * 10 + (unsigned)(**p - '0');
    if (digits == 0 || digits > 2 || **p != end)
        return -1;
    (*p)++;
    *out = v;
    return 0;
}

/* Decodes the base64 field at *<p> up to <end> (or the string's end when
 * <end> is NUL) into exactly <len> bytes. */
static int parse_field(const char **p, char end, uint8_t *dst, size_t len)
{
    const char *stop = strchrnul(*p, end ? end : '\0');
    if (end && *stop != end)
        return -1;
    if (b64_decode(*p, (size_t)(stop - *p), dst, len, false) != (int)len)
        return -1;
    *p = end ? stop + 1 : stop;
    return 0;
}

int password_parse(const char *encoded, struct password_hash *out)
{
    const char *p = encoded;
    if (strncmp(p, "$scrypt$ln=", 11) != 0)
        return -1;
    p += 11;
    if (parse_small(&p, ',', &out->ln) == -1 || strncmp(p, "r=", 2) != 0)
        return -1;
    p += 2;
    if (parse_small(&p, ',', &out->r) == -1 || strncmp(p, "p=", 2) != 0)
        return -1;
    p += 2;
    if (parse_small(&p, '$', &out->p) == -1)
        return -1;
    if (out->ln < PASSWORD_LN_MIN || out->ln > PASSWORD_LN_MAX || out->r < 1 ||
        out->r > SCRYPT_R_MAX || out->p < 1 || out->p > SCRYPT_P_MAX)
        return -1;
    if (parse_field(&p, '$', out->salt, sizeof(out->salt)) == -1 ||
        parse_field(&p, '\0', out->key, sizeof(out->key)) == -1)
        return -1;
    return 0;
}

/* scrypt of <pw> with the parameters and salt of <h> into <key>. */
static int derive(const char *pw, size_t len, const struct password_hash *h,
                  uint8_t key[PASSWORD_KEY_LEN])
{
    uint64_t n = (uint64_t)1 << h->ln;
    /* OpenSSL needs 128 * r * (N + p + 2) bytes; allow exactly that */
    uint64_t maxmem = 128 * (uint64_t)h->r * (n + h->p + 2);
    if (EVP_PBE_scrypt(pw, len, h->salt, sizeof(h->salt), n, h->r, h->p, maxmem, key,
                       PASSWORD_KEY_LEN) != 1) {
        log_error("password: scrypt failed (ln=%u r=%u p=%u)", h->ln, h->r, h->p);
        return -1;
    }
    return 0;
}

int password_hash(const char *pw, size_t len, unsigned ln, char *out, size_t outlen)
{
    struct password_hash h = { .ln = ln, .r = SCRYPT_R, .p = SCRYPT_P };
    if (RAND_bytes(h.salt, sizeof(h.salt)) != 1) {
        log_error("password: the CSPRNG failed");
        return -1;
    }
    if (derive(pw, len, &h, h.key) == -1)
        return -1;
    char salt[B64_ENCODED_LEN(PASSWORD_SALT_LEN) + 1];
    char key[B64_ENCODED_LEN(PASSWORD_KEY_LEN) + 1];
    b64_encode(h.salt, sizeof(h.salt), salt, sizeof(salt), false);
    b64_encode(h.key, sizeof(h.key), key, sizeof(key), false);
    int n = snprintf(out, outlen, "$scrypt$ln=%u,r=%u,p=%u$%s$%s", h.ln, h.r, h.p, salt, key);
    OPENSSL_cleanse(&h, sizeof(h));
    OPENSSL_cleanse(key, sizeof(key));
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

bool password_verify(const char *pw, size_t len, const char *encoded)
{
    struct password_hash h;
    uint8_t key[PASSWORD_KEY_LEN];
    if (password_parse(encoded, &h) == -1 || derive(pw, len, &h, key) == -1)
        return false;
    bool same = CRYPTO_memcmp(key, h.key, sizeof(key)) == 0;
    OPENSSL_cleanse(key, sizeof(key));
    return same;
}
