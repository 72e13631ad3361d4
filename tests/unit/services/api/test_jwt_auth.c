/* Bearer tokens: every way a token can be wrong, one test each, plus libjwt
 * 1.10's known leniencies (HS512 header, expired tokens, empty keys, alg none)
 * shown to be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../../../../services/api/b64.h"
#include "../../../../services/api/jwt_auth.h"

#define NOW 1800000000LL
static const uint8_t SECRET[] = "0123456789abcdef0123456789abcdef";
#define SECRETLEN (sizeof(SECRET) - 1)

static const char GOOD_CLAIMS[] =
    "{\"iss\":\"sluice\",\"sub\":\"7\",\"name\":\"alice\",\"role\":\"admin\","
    "\"iat\":1799999000,\"nbf\":1799999000,\"exp\":1800003600}";
static const char HS256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* A compact JWS of <header> and <claims>, signed with <md> (NULL: no
 * signature, as alg none) and <key>. The caller frees it. */
static char *forge(const char *header, const char *claims, const EVP_MD *md,
                   const uint8_t *key, size_t keylen)
{
    char h[512], c[1024], sig[128] = "";
    b64_encode((const uint8_t *)header, strlen(header), h, sizeof(h), true);
    b64_encode((const uint8_t *)claims, strlen(claims), c, sizeof(c), true);
    char *input = NULL;
    assert_true(asprintf(&input, "%s.%s", h, c) > 0);
    if (md != NULL) {
        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned maclen = 0;
        static const uint8_t empty[1];
        HMAC(md, keylen ? key : empty, (int)keylen, (const uint8_t *)input, strlen(input),
             mac, &maclen);
        b64_encode(mac, maclen, sig, sizeof(sig), true);
    }
    char *out = NULL;
    assert_true(asprintf(&out, "%s.%s", input, sig) > 0);
    free(input);
    return out;
}

static enum jwt_verdict check(const char *token, struct jwt_claims *out)
{
    return jwt_auth_verify(token, strlen(token), SECRET, SECRETLEN, NOW, out);
}

static enum jwt_verdict check_forged(const char *header, const char *claims,
                                     const EVP_MD *md, const uint8_t *key, size_t keylen)
{
    struct jwt_claims out;
    char *t = forge(header, claims, md, key, keylen);
    enum jwt_verdict v = check(t, &out);
    free(t);
    return v;
}

static void test_sign_then_verify(void **state)
{
    (void)state;
    struct jwt_claims c = { .user_id = 42, .name = "bob", .role = "publisher" }, out;
    char *t = jwt_auth_sign(SECRET, SECRETLEN, &c, NOW, 3600);
    assert_non_null(t);
    assert_int_equal(c.exp, NOW + 3600);
    assert_int_equal(check(t, &out), JWT_VALID);
    assert_int_equal(out.user_id, 42);
    assert_string_equal(out.name, "bob");
    assert_string_equal(out.role, "publisher");
    assert_int_equal(out.exp, NOW + 3600);
    free(t);
}

static void test_forged_good_token_is_valid(void **state)
{
    (void)state;
    struct jwt_claims out;
    char *t = forge(HS256, GOOD_CLAIMS, EVP_sha256(), SECRET, SECRETLEN);
    assert_int_equal(check(t, &out), JWT_VALID);
    assert_int_equal(out.user_id, 7);
    free(t);
}

static void test_alg_none(void **state)
{
    (void)state;
    assert_int_equal(check_forged("{\"alg\":\"none\",\"typ\":\"JWT\"}", GOOD_CLAIMS, NULL,
                                  NULL, 0),
                     JWT_MALFORMED);   /* no signature segment at all */
    /* with a signature segment of the right size, the header is what fails */
    char *t = forge("{\"alg\":\"none\"}", GOOD_CLAIMS, EVP_sha256(), SECRET, SECRETLEN);
    struct jwt_claims out;
    assert_int_equal(check(t, &out), JWT_BAD_ALG);
    free(t);
    assert_int_equal(check_forged("{\"alg\":\"NONE\"}", GOOD_CLAIMS, EVP_sha256(), SECRET,
                                  SECRETLEN),
                     JWT_BAD_ALG);
}

static void test_hs512_signed_with_the_right_key(void **state)
{
    (void)state;
    /* libjwt 1.10 alone accepts this one */
    assert_int_equal(check_forged("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", GOOD_CLAIMS,
                                  EVP_sha512(), SECRET, SECRETLEN),
                     JWT_MALFORMED);   /* an 86-character signature: refused unread */
    assert_int_equal(check_forged("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", GOOD_CLAIMS,
                                  EVP_sha256(), SECRET, SECRETLEN),
                     JWT_BAD_ALG);
    assert_int_equal(check_forged("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", GOOD_CLAIMS,
                                  EVP_sha256(), SECRET, SECRETLEN),
                     JWT_BAD_ALG);
}

static void test_hs512_made_by_libjwt(void **state)
{
    (void)state;
    jwt_t *j = NULL;
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_add_grants_json(j, GOOD_CLAIMS), 0);
    assert_int_equal(jwt_set_alg(j, JWT_ALG_HS512, SECRET, SECRETLEN), 0);
    char *t = jwt_encode_str(j);
    jwt_free(j);
    struct jwt_claims out;
    assert_int_not_equal(check(t, &out), JWT_VALID);
    free(t);
}

static void test_signed_with_an_empty_key(void **state)
{
    (void)state;
    assert_int_equal(check_forged(HS256, GOOD_CLAIMS, EVP_sha256(), NULL, 0),
                     JWT_BAD_SIGNATURE);
}

static void test_signed_with_another_key(void **state)
{
    (void)state;
    static const uint8_t other[] = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";
    assert_int_equal(check_forged(HS256, GOOD_CLAIMS, EVP_sha256(), other, 32),
                     JWT_BAD_SIGNATURE);
}

static void test_we_never_verify_with_a_short_secret(void **state)
{
    (void)state;
    struct jwt_claims out;
    char *t = forge(HS256, GOOD_CLAIMS, EVP_sha256(), (const uint8_t *)"", 0);
    assert_int_equal(jwt_auth_verify(t, strlen(t), (const uint8_t *)"", 0, NOW, &out),
                     JWT_BAD_SIGNATURE);
    free(t);
    struct jwt_claims c = { .user_id = 1, .name = "a", .role = "admin" };
    assert_null(jwt_auth_sign((const uint8_t *)"short", 5, &c, NOW, 60));
}

static void test_expired(void **state)
{
    (void)state;
    assert_int_equal(check_forged(HS256,
                                  "{\"iss\":\"sluice\",\"sub\":\"7\",\"name\":\"a\","
                                  "\"role\":\"admin\",\"nbf\":1,\"exp\":1799999999}",
                                  EVP_sha256(), SECRET, SECRETLEN),
                     JWT_EXPIRED);
    /* exactly at exp: expired */
    assert_int_equal(check_forged(HS256,
                                  "{\"iss\":\"sluice\",\"sub\":\"7\",\"name\":\"a\","
                                  "\"role\":\"admin\",\"nbf\":1,\"exp\":1800000000}",
                                  EVP_sha256(), SECRET, SECRETLEN),
                     JWT_EXPIRED);
}

static void test_not_yet_valid(void **state)
{
    (void)state;
    assert_int_equal(check_forged(HS256,
                                  "{\"iss\":\"sluice\",\"sub\":\"7\",\"name\":\"a\","
                                  "\"role\":\"admin\",\"nbf\":1800003600,\"exp\":1800007200}",
                                  EVP_sha256(), SECRET, SECRETLEN),
                     JWT_NOT_YET_VALID);
    /* within the leeway for clock skew: fine */
    assert_int_equal(check_forged(HS256,
                                  "{\"iss\":\"sluice\",\"sub\":\"7\",\"name\":\"a\","
                                  "\"role\":\"admin\",\"nbf\":1800000003,\"exp\":1800007200}",
                                  EVP_sha256(), SECRET, SECRETLEN),
                     JWT_VALID);
}

static void test_tampered(void **state)
{
    (void)state;
    struct jwt_claims out;
    char *good = forge(HS256, GOOD_CLAIMS, EVP_sha256(), SECRET, SECRETLEN);
    /* the same signature over other claims (a publisher made admin) */
    char *other = forge(HS256,
                        "{\"iss\":\"sluice\",\"sub\":\"8\",\"name\":\"alice\","
                        "\"role\":\"admin\",\"iat\":1799999000,\"nbf\":1799999000,"
                        "\"exp\":1800003600}",
                        EVP_sha256(), SECRET, SECRETLEN);
    char *swapped = strdup(other);
    strcpy(strrchr(swapped, '.'), strrchr(good, '.'));
    assert_int_equal(check(swapped, &out), JWT_BAD_SIGNATURE);
    /* one flipped character of the signature */
    char *flipped = strdup(good);
    char *last = flipped + strlen(flipped) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    assert_int_equal(check(flipped, &out), JWT_BAD_SIGNATURE);
    free(good);
    free(other);
    free(swapped);
    free(flipped);
}

static void test_bad_claims(void **state)
{
    (void)state;
    static const char *const claims[] = {
        "{\"iss\":\"sluice\",\"sub\":\"7\",\"name\":\"a\",\"role\":\"admin\",\"nbf\":1}",
        "{\"iss\":\"sluice\",\"sub\":\"7\",\"name\":\"a\",\"role\":\"admin\",\"exp\":1900000000}",
        "{\"iss\":\"sluice\",\"sub\":\"7\",\"name\":\"a\",\"role\":\"admin\",\"nbf\":1,"
        "\"exp\":\"1900000000\"}",
        "{\"iss\":\"sluice\",\"sub\":\"7\",\"name\":\"a\",\"role\":\"admin\",\"nbf\":1,"
        "\"exp\":1.9e9}",
        "{\"iss\":\"other\",\"sub\":\"7\",\"name\":\"a\",\"role\":\"admin\",\"nbf\":1,"
        "\"exp\":1900000000}",
        "{\"sub\":\"7\",\"name\":\"a\",\"role\":\"admin\",\"nbf\":1,\"exp\":1900000000}",
        "{\"iss\":\"sluice\",\"sub\":7,\"name\":\"a\",\"role\":\"admin\",\"nbf\":1,"
        "\"exp\":1900000000}",
        "{\"iss\":\"sluice\",\"sub\":\"07\",\"name\":\"a\",\"role\":\"admin\",\"nbf\":1,"
        "\"exp\":1900000000}",
        "{\"iss\":\"sluice\",\"sub\":\"-7\",\"name\":\"a\",\"role\":\"admin\",\"nbf\":1,"
        "\"exp\":1900000000}",
        "{\"iss\":\"sluice\",\"sub\":\"7\",\"name\":\"a\",\"role\":\"root\",\"nbf\":1,"
        "\"exp\":1900000000}",
        "{\"iss\":\"sluice\",\"sub\":\"7\",\"name\":\"\",\"role\":\"admin\",\"nbf\":1,"
        "\"exp\":1900000000}",
        "[1, 2]",
    };
    for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
        enum jwt_verdict v = check_forged(HS256, claims[i], EVP_sha256(), SECRET, SECRETLEN);
        if (v == JWT_VALID)
            fail_msg("accepted claims %s", claims[i]);
    }
}

static void test_malformed(void **state)
{
    (void)state;
    struct jwt_claims out;
    static const char *const tokens[] = {
        "", ".", "..", "a.b", "a.b.c.d", "abc", "a..c",
        "eyJhbGciOiJIUzI1NiJ9.eyJ9.!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "eyJhbGciOiJIUzI1NiJ9 .eyJ9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "e30.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* {} header */
        "bm90IGpzb24.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
        enum jwt_verdict v = check(tokens[i], &out);
        if (v == JWT_VALID || v == JWT_BAD_SIGNATURE)
            fail_msg("token %zu: %s", i, jwt_verdict_text(v));
    }
    char *huge = malloc(JWT_MAX_LEN + 2);
    memset(huge, 'A', JWT_MAX_LEN + 1);
    huge[JWT_MAX_LEN + 1] = '\0';
    huge[10] = huge[20] = '.';
    assert_int_equal(check(huge, &out), JWT_MALFORMED);
    free(huge);
    /* a header that wants extensions understood */
    assert_int_equal(check_forged("{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", GOOD_CLAIMS,
                                  EVP_sha256(), SECRET, SECRETLEN),
                     JWT_MALFORMED);
    /* duplicate "alg": a parser that keeps the first and one that keeps the
     * last would disagree; we refuse */
    assert_int_equal(check_forged("{\"alg\":\"HS256\",\"alg\":\"none\"}", GOOD_CLAIMS,
                                  EVP_sha256(), SECRET, SECRETLEN),
                     JWT_MALFORMED);
}

static void test_length_not_nul(void **state)
{
    (void)state;
    /* the verifier reads <len> bytes, not up to a NUL */
    struct jwt_claims out;
    char *t = forge(HS256, GOOD_CLAIMS, EVP_sha256(), SECRET, SECRETLEN);
    size_t n = strlen(t);
    char *longer = malloc(n + 5);
    memcpy(longer, t, n);
    memcpy(longer + n, "AAAA", 5);
    assert_int_equal(jwt_auth_verify(longer, n, SECRET, SECRETLEN, NOW, &out), JWT_VALID);
    assert_int_not_equal(jwt_auth_verify(longer, n + 4, SECRET, SECRETLEN, NOW, &out),
                         JWT_VALID);
    free(longer);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_then_verify),
        cmocka_unit_test(test_forged_good_token_is_valid),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_hs512_signed_with_the_right_key),
        cmocka_unit_test(test_hs512_made_by_libjwt),
        cmocka_unit_test(test_signed_with_an_empty_key),
        cmocka_unit_test(test_signed_with_another_key),
        cmocka_unit_test(test_we_never_verify_with_a_short_secret),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_not_yet_valid),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_bad_claims),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_length_not_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
