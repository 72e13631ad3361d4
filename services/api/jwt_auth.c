/* Bearer tokens: see jwt_auth.h. */
#include "jwt_auth.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "b64.h"
#include "sluice/json.h"
#include "sluice/log.h"

#define SIG_LEN B64_ENCODED_LEN(32)   /* HMAC-SHA256 in base64url: 43 */
#define HEADER_MAX 256                /* decoded bytes; ours is 27 */

const char *jwt_verdict_text(enum jwt_verdict v)
{
    switch (v) {
    case JWT_VALID: return "valid";
    case JWT_MALFORMED: return "malformed token";
    case JWT_BAD_ALG: return "token algorithm is not HS256";
    case JWT_BAD_SIGNATURE: return "bad token signature";
    case JWT_BAD_CLAIMS: return "bad token claims";
    case JWT_EXPIRED: return "token expired";
    case JWT_NOT_YET_VALID: return "token not valid yet";
    }
    return "?";
}

/* ---- signing ------------------------------------------------------------ */

char *jwt_auth_sign(const uint8_t *secret, size_t secretlen, struct jwt_claims *c,
                    int64_t now_s, int64_t ttl_s)
{
    jwt_t *j = NULL;
    char sub[24];
    char *token = NULL;
    if (secretlen < JWT_SECRET_MIN || jwt_new(&j) != 0)
        return NULL;
    c->iat = c->nbf = now_s;
    c->exp = now_s + ttl_s;
    snprintf(sub, sizeof(sub), "%lld", (long long)c->user_id);
    if (jwt_add_grant(j, "iss", JWT_ISSUER) != 0 || jwt_add_grant(j, "sub", sub) != 0 ||
        jwt_add_grant(j, "name", c->name) != 0 || jwt_add_grant(j, "role", c->role) != 0 ||
        jwt_add_grant_int(j, "iat", (long)c->iat) != 0 ||
        jwt_add_grant_int(j, "nbf", (long)c->nbf) != 0 ||
        jwt_add_grant_int(j, "exp", (long)c->exp) != 0 ||
        jwt_set_alg(j, JWT_ALG_HS256, secret, (int)secretlen) != 0)
        goto out_free_jwt;
    token = jwt_encode_str(j);
out_free_jwt:
    if (token == NULL)
        log_error("jwt: cannot sign a token for user %lld", (long long)c->user_id);
    jwt_free(j);
    return token;
}

/* ---- verification ------------------------------------------------------- */

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* Finds the two dots of a compact JWS; checks the alphabet and segment sizes. */
static bool split_token(const char *t, size_t len, size_t *dot1, size_t *dot2)
{
    int ndots = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '.') {
            if (++ndots > 2)
                return false;
            *(ndots == 1 ? dot1 : dot2) = i;
        } else if (!b64url_char(t[i])) {
            return false;
        }
    }
    return ndots == 2 && *dot1 > 0 && *dot2 > *dot1 + 1 && len - *dot2 - 1 == SIG_LEN;
}

/* The header must be a JSON object naming HS256, and nothing we would have to
 * understand ("crit"). */
static enum jwt_verdict check_header(const char *seg, size_t len)
{
    uint8_t buf[HEADER_MAX];
    int n = b64_decode(seg, len, buf, sizeof(buf), true);
    if (n == -1)
        return JWT_MALFORMED;
    json_t *h = json_parse(buf, (size_t)n, NULL, 0);
    if (h == NULL || !json_is_object(h)) {
        json_decref(h);
        return JWT_MALFORMED;
    }
    const char *alg = NULL, *typ = "JWT";
    enum jwt_verdict v = JWT_VALID;
    if (json_get_str(h, "alg", &alg) != 0 || strcmp(alg, "HS256") != 0)
        v = JWT_BAD_ALG;
    else if (json_get_str(h, "typ", &typ) == -1 || strcmp(typ, "JWT") != 0 ||
             json_object_get(h, "crit") != NULL)
        v = JWT_MALFORMED;
    json_decref(h);
    return v;
}

/* HMAC-SHA256 of the signing input, compared in constant time. */
static bool signature_ok(const char *t, size_t dot2, const uint8_t *secret,
                         size_t secretlen)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    char expect[SIG_LEN + 1];
    if (HMAC(EVP_sha256(), secret, (int)secretlen, (const uint8_t *)t, dot2, mac,
             &maclen) == NULL || maclen != 32)
        return false;
    b64_encode(mac, maclen, expect, sizeof(expect), true);
    return CRYPTO_memcmp(expect, t + dot2 + 1, SIG_LEN) == 0;
}

/* "1".."9223372036854775807" without sign, spaces or leading zeros. */
static bool parse_user_id(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18 || s[0] == '0')
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static enum jwt_verdict check_claims(const json_t *c, int64_t now_s, struct jwt_claims *out)
{
    const char *iss, *sub, *name, *role;
    int64_t iat = 0, nbf, exp, uid;
    if (!json_is_object(c) || json_get_str(c, "iss", &iss) != 0 ||
        strcmp(iss, JWT_ISSUER) != 0 || json_get_str(c, "sub", &sub) != 0 ||
        !parse_user_id(sub, &uid) || json_get_str(c, "name", &name) != 0 ||
        name[0] == '\0' || strlen(name) > JWT_NAME_MAX ||
        json_get_str(c, "role", &role) != 0 ||
        (strcmp(role, "admin") != 0 && strcmp(role, "publisher") != 0) ||
        json_get_int(c, "exp", &exp) != 0 || json_get_int(c, "nbf", &nbf) != 0 ||
        json_get_int(c, "iat", &iat) == -1)
        return JWT_BAD_CLAIMS;
    if (now_s >= exp)
        return JWT_EXPIRED;
    if (now_s + JWT_NBF_LEEWAY_S < nbf)
        return JWT_NOT_YET_VALID;
    out->user_id = uid;
    snprintf(out->name, sizeof(out->name), "%s", name);
    snprintf(out->role, sizeof(out->role), "%s", role);
    out->iat = iat;
    out->nbf = nbf;
    out->exp = exp;
    return JWT_VALID;
}

/* libjwt's decode, as a second opinion on what we verified, and the claims as
 * JSON (parsed again by us, strictly). */
static enum jwt_verdict decode_with_libjwt(const char *t, size_t len, const uint8_t *secret,
                                           size_t secretlen, int64_t now_s,
                                           struct jwt_claims *out)
{
    char *copy = strndup(t, len);
    jwt_t *j = NULL;
    enum jwt_verdict v = JWT_BAD_SIGNATURE;
    if (copy == NULL)
        return JWT_MALFORMED;
    if (jwt_decode(&j, copy, secret, (int)secretlen) != 0)
        goto out_free_copy;
    v = JWT_BAD_ALG;
    if (jwt_get_alg(j) != JWT_ALG_HS256)
        goto out_free_jwt;
    char *grants = jwt_get_grants_json(j, NULL);
    json_t *claims = grants ? json_parse(grants, strlen(grants), NULL, 0) : NULL;
    v = claims ? check_claims(claims, now_s, out) : JWT_BAD_CLAIMS;
    json_decref(claims);
    free(grants);
out_free_jwt:
    jwt_free(j);
out_free_copy:
    free(copy);
    return v;
}

enum jwt_verdict jwt_auth_verify(const char *token, size_t len, const uint8_t *secret,
                                 size_t secretlen, int64_t now_s, struct jwt_claims *out)
{
    size_t dot1 = 0, dot2 = 0;
    if (secretlen < JWT_SECRET_MIN)   /* never "verify" with a weak or empty key */
        return JWT_BAD_SIGNATURE;
    if (len == 0 || len > JWT_MAX_LEN || !split_token(token, len, &dot1, &dot2))
        return JWT_MALFORMED;
    enum jwt_verdict v = check_header(token, dot1);
    if (v != JWT_VALID)
        return v;
    if (!signature_ok(token, dot2, secret, secretlen))
        return JWT_BAD_SIGNATURE;
    return decode_with_libjwt(token, len, secret, secretlen, now_s, out);
}
