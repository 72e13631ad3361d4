/* The StreamID grammar (services/ingest/streamid.c), case by case, and the
 * credential classifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../../../services/ingest/streamid.h"

static int parse(const char *s, struct streamid *sid, const char **why)
{
    *why = NULL;
    return streamid_parse(s, strlen(s), sid, why);
}

static void test_accepts_the_documented_forms(void **state)
{
    (void)state;
    struct streamid sid;
    const char *why;
    assert_int_equal(parse("#!::r=cam1,s=sk_0123456789abcdefABCD,m=publish", &sid, &why), 0);
    assert_string_equal(sid.stream, "cam1");
    assert_string_equal(sid.cred, "sk_0123456789abcdefABCD");
    assert_int_equal(sid.mode, STREAMID_PUBLISH);
    assert_string_equal(sid.user, "");
    /* any order, u= h= t= accepted */
    assert_int_equal(parse("#!::m=request,u=alice,t=stream,h=live.example.com,s=x,r=A-b_9", &sid,
                           &why), 0);
    assert_string_equal(sid.stream, "A-b_9");
    assert_string_equal(sid.cred, "x");
    assert_string_equal(sid.user, "alice");
    assert_int_equal(sid.mode, STREAMID_REQUEST);
    assert_string_equal(streamid_mode_name(sid.mode), "request");
}

static void test_refuses_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",                                         /* nothing */
        "cam1",                                     /* not the keyed syntax */
        "#!:{r=cam1,s=k,m=publish}",                /* the nested form */
        "#!::",                                     /* no pair */
        "#!::r=cam1,s=k",                           /* m missing */
        "#!::r=cam1,m=publish",                     /* s missing */
        "#!::s=k,m=publish",                        /* r missing */
        "#!::r=cam1,s=k,m=publish,",                /* trailing comma */
        "#!::r=cam1,,s=k,m=publish",                /* empty pair */
        "#!::r=cam1,s=k,m=publish,r=cam2",          /* key twice */
        "#!::r=cam1,s=,m=publish",                  /* empty value */
        "#!::r=cam1,s=k,m=play",                    /* unknown mode */
        "#!::r=cam1,s=k,m=publish,x=1",             /* unknown key */
        "#!::R=cam1,s=k,m=publish",                 /* keys are lower case */
        "#!::rr=cam1,s=k,m=publish",
        "#!::r=cam/1,s=k,m=publish",                /* not a stream name */
        "#!::r=cam1,s=k k,m=publish",               /* space in a value */
        "#!::r=cam1,s=k,m=publish,t=file",          /* only t=stream */
        "#!::r=cam1,s,m=publish",                   /* no '=' */
        "#!::r=cam1,s=k,m=publish ",
        "#!::r=0123456789012345678901234567890123456789012345678901234567890123x,s=k,m=publish",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct streamid sid;
        const char *why = NULL;
        if (parse(bad[i], &sid, &why) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_non_null(why);
    }
}

static void test_bounds(void **state)
{
    (void)state;
    struct streamid sid;
    const char *why;
    char buf[700];
    /* a 64-byte name is fine */
    snprintf(buf, sizeof(buf), "#!::r=%064d,s=k,m=publish", 7);
    assert_int_equal(parse(buf, &sid, &why), 0);
    assert_int_equal(strlen(sid.stream), 64);
    /* s= up to 200 bytes; 201 is refused */
    char cred[202];
    memset(cred, 'a', 200);
    cred[200] = '\0';
    snprintf(buf, sizeof(buf), "#!::r=a,s=%s,m=publish", cred);
    assert_int_equal(parse(buf, &sid, &why), 0);
    cred[200] = 'a';
    cred[201] = '\0';
    snprintf(buf, sizeof(buf), "#!::r=a,s=%s,m=publish", cred);
    assert_int_equal(parse(buf, &sid, &why), -1);
    /* the whole thing: at most 512 bytes */
    memset(buf, 'h', sizeof(buf));
    memcpy(buf, "#!::r=a,s=k,m=publish,h=", 24);
    assert_int_equal(streamid_parse(buf, 512, &sid, &why), 0);
    assert_int_equal(streamid_parse(buf, 513, &sid, &why), -1);
    /* a NUL inside is a byte like any other: refused */
    assert_int_equal(streamid_parse("#!::r=a,s=k\0k,m=publish", 23, &sid, &why), -1);
}

static void test_cred_kind(void **state)
{
    (void)state;
    const char *key = "sk_3q2mX0bV9aJk7cQ1pR8sT4uW6yZ2eF5g";
    const char *sess = "ss_Yh2aJk7cQ1pR8sT4uW6yZ2eF5g3q2mX0bV";
    assert_int_equal(cred_kind(key, strlen(key)), CRED_KEY);
    assert_int_equal(cred_kind(sess, strlen(sess)), CRED_SESSION);
    assert_int_equal(cred_kind("sk_0123456789abcdef", 19), CRED_KEY);       /* 16: the least */
    assert_int_equal(cred_kind("sk_0123456789abcde", 18), CRED_INVALID);    /* 15 */
    assert_int_equal(cred_kind("sk_0123456789abcde+", 19), CRED_INVALID);   /* not base64url */
    assert_int_equal(cred_kind("xx_0123456789abcdef", 19), CRED_INVALID);
    assert_int_equal(cred_kind("SK_0123456789abcdef", 19), CRED_INVALID);
    char longer[3 + 129 + 1];
    memcpy(longer, "ss_", 3);
    memset(longer + 3, 'a', 129);
    longer[132] = '\0';
    assert_int_equal(cred_kind(longer, 131), CRED_SESSION);                 /* 128 */
    assert_int_equal(cred_kind(longer, 132), CRED_INVALID);                 /* 129 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_the_documented_forms),
        cmocka_unit_test(test_refuses_malformed),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_cred_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
