/* The API's bearer tokens: JWT, HS256 only, signed with SLUICE_JWT_SECRET.
 *
 * Claims: iss "sluice", sub (user id as a decimal string), name (user name),
 * role ("admin" or "publisher"), iat, nbf, exp (seconds since the epoch).
 *
 * libjwt 1.10 is used to encode and, as a second opinion, to decode; it is not
 * trusted to verify. It accepts a header naming another HMAC algorithm,
 * decodes expired tokens without complaint, skips verification with an empty
 * key, and compares signatures with strcmp (a timing oracle, CVE-2024-25189).
 * So jwt_auth_verify() checks, in this order: the shape and size of the token;
 * a header whose "alg" is exactly "HS256"; the HMAC-SHA256 signature, computed
 * here and compared in constant time; libjwt's decode with jwt_get_alg() ==
 * JWT_ALG_HS256; and every claim, with types, exp and nbf checked here. */
#ifndef SLUICE_API_JWT_AUTH_H
#define SLUICE_API_JWT_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define JWT_SECRET_MIN 32          /* bytes; shorter secrets are refused at start */
#define JWT_MAX_LEN 4096           /* a token longer than this is refused unread */
#define JWT_ISSUER "sluice"
#define JWT_NBF_LEEWAY_S 5         /* clock skew between replicas */
#define JWT_NAME_MAX 64

struct jwt_claims {
    int64_t user_id;
    char name[JWT_NAME_MAX + 1];
    char role[16];
    int64_t iat, nbf, exp;
};

enum jwt_verdict {
    JWT_VALID,
    JWT_MALFORMED,       /* not three base64url segments of sane size */
    JWT_BAD_ALG,         /* the header names anything but HS256 */
    JWT_BAD_SIGNATURE,
    JWT_BAD_CLAIMS,      /* missing or mistyped claims, wrong issuer or role */
    JWT_EXPIRED,
    JWT_NOT_YET_VALID,
};

/* A short text for logs and error messages. */
const char *jwt_verdict_text(enum jwt_verdict v);

/* Signs a token for <c> (user_id, name, role), valid from <now_s> for <ttl_s>
 * seconds; sets c->iat, nbf and exp. Returns the token (malloc'd, the caller
 * frees), or NULL (logged). */
char *jwt_auth_sign(const uint8_t *secret, size_t secretlen, struct jwt_claims *c,
                    int64_t now_s, int64_t ttl_s);

/* Verifies the <len> bytes of <token> at time <now_s>. Fills <out> only when
 * the result is JWT_VALID. <secret> must be at least JWT_SECRET_MIN bytes. */
enum jwt_verdict jwt_auth_verify(const char *token, size_t len, const uint8_t *secret,
                                 size_t secretlen, int64_t now_s, struct jwt_claims *out);

#endif
