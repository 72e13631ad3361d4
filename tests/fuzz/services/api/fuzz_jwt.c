/* libFuzzer: bearer token verification. Even first bytes: the input is a token
 * as a client sends it. Odd: the input is "<header>\n<claims>", signed here
 * with the server's secret, so the fuzzer reaches the header, libjwt's decode
 * and the claim checks behind the signature. Nothing but a correctly signed
 * HS256 token with sane claims may come out valid. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../../../../services/api/b64.h"
#include "../../../../services/api/jwt_auth.h"

static const uint8_t SECRET[] = "fuzz-secret-fuzz-secret-fuzz-secret!";
#define SECRETLEN (sizeof(SECRET) - 1)
#define NOW 1800000000LL

/* "<b64 header>.<b64 claims>.<b64 HMAC>" into <out>. Returns its length or 0. */
static size_t sign(const uint8_t *h, size_t hlen, const uint8_t *c, size_t clen, char *out,
                   size_t outlen)
{
    if (B64_ENCODED_LEN(hlen) + B64_ENCODED_LEN(clen) + 48 > outlen)
        return 0;
    int n = b64_encode(h, hlen, out, outlen, true);
    out[n++] = '.';
    n += b64_encode(c, clen, out + n, outlen - (size_t)n, true);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    HMAC(EVP_sha256(), SECRET, SECRETLEN, (const uint8_t *)out, (size_t)n, mac, &maclen);
    out[n++] = '.';
    n += b64_encode(mac, maclen, out + n, outlen - (size_t)n, true);
    return (size_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char token[3 * JWT_MAX_LEN];
    struct jwt_claims out;
    if (size < 1)
        return 0;
    enum jwt_verdict v;
    if (data[0] % 2 == 0) {
        v = jwt_auth_verify((const char *)data + 1, size - 1, SECRET, SECRETLEN, NOW, &out);
    } else {
        const uint8_t *nl = memchr(data + 1, '\n', size - 1);
        if (nl == NULL)
            return 0;
        size_t hlen = (size_t)(nl - data - 1);
        size_t n = sign(data + 1, hlen, nl + 1, size - hlen - 2, token, sizeof(token));
        if (n == 0)
            return 0;
        v = jwt_auth_verify(token, n, SECRET, SECRETLEN, NOW, &out);
    }
    if (v == JWT_VALID && (out.user_id <= 0 || out.exp <= NOW ||
                           (strcmp(out.role, "admin") != 0 && strcmp(out.role, "publisher") != 0)))
        __builtin_trap();
    return 0;
}
