/* Base64, stream keys and session ids, passwords: the byte-level pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/api/b64.h"
#include "../../../../services/api/keys.h"
#include "../../../../services/api/password.h"

/* ---- base64 ------------------------------------------------------------- */

static void test_b64_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10, padding removed */
    static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const out[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE",
                                       "Zm9vYmFy" };
    for (size_t i = 0; i < 7; i++) {
        char enc[16];
        uint8_t dec[16];
        assert_int_equal(b64_encode((const uint8_t *)in[i], strlen(in[i]), enc, sizeof(enc),
                                    false),
                         (int)strlen(out[i]));
        assert_string_equal(enc, out[i]);
        assert_int_equal(b64_decode(out[i], strlen(out[i]), dec, sizeof(dec), false),
                         (int)strlen(in[i]));
        assert_memory_equal(dec, in[i], strlen(in[i]));
    }
}

static void test_b64_alphabets(void **state)
{
    (void)state;
    const uint8_t bytes[] = { 0xfb, 0xff, 0xfe };
    char enc[8];
    uint8_t dec[8];
    b64_encode(bytes, 3, enc, sizeof(enc), false);
    assert_string_equal(enc, "+//+");
    b64_encode(bytes, 3, enc, sizeof(enc), true);
    assert_string_equal(enc, "-__-");
    assert_int_equal(b64_decode("-__-", 4, dec, sizeof(dec), false), -1);
    assert_int_equal(b64_decode("+//+", 4, dec, sizeof(dec), true), -1);
}

static void test_b64_refusals(void **state)
{
    (void)state;
    uint8_t dec[16];
    assert_int_equal(b64_decode("Zg==", 4, dec, sizeof(dec), false), -1);   /* padding */
    assert_int_equal(b64_decode("Z", 1, dec, sizeof(dec), false), -1);      /* no length */
    assert_int_equal(b64_decode("Zh", 2, dec, sizeof(dec), false), -1);     /* bits left */
    assert_int_equal(b64_decode("Zm 9", 4, dec, sizeof(dec), false), -1);
    assert_int_equal(b64_decode("Zm9vYmFy", 8, dec, 5, false), -1);        /* too small */
    char small[4];
    assert_int_equal(b64_encode((const uint8_t *)"foo", 3, small, sizeof(small), false), -1);
}

/* ---- keys and session ids ----------------------------------------------- */

static void test_key_generate(void **state)
{
    (void)state;
    char a[KEY_LEN + 1], b[KEY_LEN + 1];
    assert_int_equal(key_generate(KEY_PREFIX, a, sizeof(a)), 0);
    assert_int_equal(key_generate(KEY_PREFIX, b, sizeof(b)), 0);
    assert_int_equal(strlen(a), KEY_LEN);
    assert_memory_equal(a, "sk_", 3);
    assert_string_not_equal(a, b);
    assert_int_equal(key_kind(a, strlen(a)), KEY_STREAM);
    assert_int_equal(key_generate(SESSION_PREFIX, a, sizeof(a)), 0);
    assert_int_equal(key_kind(a, strlen(a)), KEY_SESSION);
    assert_int_equal(key_generate(KEY_PREFIX, a, KEY_LEN), -1);   /* no room for NUL */
}

static void test_key_kind(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "sk_", "sk_short", "SK_0123456789abcdef", "xx_0123456789abcdef",
        "sk_0123456789abcde!", "sk_0123456789 abcdef", "sk_0123456789abcdef\n",
        "ss_0123456789abcde=",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(key_kind(bad[i], strlen(bad[i])), KEY_INVALID);
    assert_int_equal(key_kind("sk_0123456789abcdef", 19), KEY_STREAM);
    assert_int_equal(key_kind("ss_0123456789abcdef", 19), KEY_SESSION);
    char longest[KEY_MAX + 2];
    memset(longest, 'a', sizeof(longest));
    memcpy(longest, "sk_", 3);
    assert_int_equal(key_kind(longest, KEY_MAX), KEY_STREAM);
    assert_int_equal(key_kind(longest, KEY_MAX + 1), KEY_INVALID);
}

static void test_sha256_hex(void **state)
{
    (void)state;
    char hex[SHA256_HEX_LEN + 1];
    key_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_secret_equal(void **state)
{
    (void)state;
    assert_true(secret_equal("same-token", "same-token"));
    assert_false(secret_equal("same-token", "same-tokeN"));
    assert_false(secret_equal("same-token", "same-token-longer"));
    assert_false(secret_equal("", "x"));
}

/* ---- passwords ---------------------------------------------------------- */

static void test_password_roundtrip(void **state)
{
    (void)state;
    char h1[PASSWORD_HASH_MAX], h2[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("hunter22", 8, 10, h1, sizeof(h1)), 0);
    assert_int_equal(password_hash("hunter22", 8, 10, h2, sizeof(h2)), 0);
    assert_string_not_equal(h1, h2);   /* salted */
    assert_memory_equal(h1, "$scrypt$ln=10,r=8,p=1$", 22);
    assert_true(password_verify("hunter22", 8, h1));
    assert_false(password_verify("hunter23", 8, h1));
    assert_false(password_verify("hunter2", 7, h1));
    assert_false(password_verify("", 0, h1));
    /* the length counts, not a NUL */
    assert_int_equal(password_hash("a\0b", 3, 10, h1, sizeof(h1)), 0);
    assert_true(password_verify("a\0b", 3, h1));
    assert_false(password_verify("a\0c", 3, h1));
}

static void test_password_parse(void **state)
{
    (void)state;
    char h[PASSWORD_HASH_MAX];
    struct password_hash p;
    assert_int_equal(password_hash("x", 1, 11, h, sizeof(h)), 0);
    assert_int_equal(password_parse(h, &p), 0);
    assert_int_equal(p.ln, 11);
    assert_int_equal(p.r, 8);
    assert_int_equal(p.p, 1);
    static const char *const bad[] = {
        "",
        "$scrypt$",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
        "$scrypt$ln=9,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=19,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=15,r=0,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=15,r=8,p=0$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$",
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=150,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (password_parse(bad[i], &p) != -1)
            fail_msg("accepted %s", bad[i]);
        assert_false(password_verify("x", 1, bad[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_vectors),
        cmocka_unit_test(test_b64_alphabets),
        cmocka_unit_test(test_b64_refusals),
        cmocka_unit_test(test_key_generate),
        cmocka_unit_test(test_key_kind),
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_secret_equal),
        cmocka_unit_test(test_password_roundtrip),
        cmocka_unit_test(test_password_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
