/* The edge's pure parsers: request paths and file names, the playlist target
 * duration, Range / If-None-Match / If-Range, and route records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../../../services/edge/cond.h"
#include "../../../../services/edge/playlist.h"
#include "../../../../services/edge/record.h"
#include "../../../../services/edge/reqpath.h"

/* ---- paths ---------------------------------------------------------------- */

static int parse(enum edge_ns ns, const char *rest, struct objpath *out)
{
    const char *why = NULL;
    int rc = objpath_parse(ns, rest, strlen(rest), out, &why);
    if (rc == -1)
        assert_non_null(why);
    return rc;
}

static void test_paths_ok(void **state)
{
    (void)state;
    struct objpath p;
    assert_int_equal(parse(NS_LIVE, "demo/index.m3u8", &p), 0);
    assert_string_equal(p.name, "demo");
    assert_string_equal(p.file, "index.m3u8");
    assert_string_equal(p.key, "/live/demo/index.m3u8");
    assert_int_equal(p.keylen, strlen(p.key));
    assert_int_equal(p.type, OBJ_PLAYLIST);
    assert_string_equal(p.content_type, "application/vnd.apple.mpegurl");
    assert_int_equal(parse(NS_LIVE, "A_b-9/e3-000123.ts", &p), 0);
    assert_int_equal(p.type, OBJ_SEGMENT);
    assert_string_equal(p.content_type, "video/mp2t");
    assert_int_equal(parse(NS_VOD, "rec_42/seg.1.m4s", &p), 0);
    assert_string_equal(p.key, "/vod/rec_42/seg.1.m4s");
    assert_string_equal(p.content_type, "video/iso.segment");
    assert_int_equal(parse(NS_VOD, "r/init.mp4", &p), 0);
    assert_int_equal(p.type, OBJ_SEGMENT);
    char name[65], rest[300];
    memset(name, 'n', 64);
    name[64] = '\0';
    snprintf(rest, sizeof(rest), "%s/x.ts", name);
    assert_int_equal(parse(NS_LIVE, rest, &p), 0);
}

static void test_paths_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "demo", "demo/", "/index.m3u8", "demo/index.m3u8/x", "de mo/index.m3u8",
        "demo/.index.m3u8", "demo/..", "demo/a..ts", "demo/index.txt", "demo/index",
        "demo/.ts", "demo/index.m3u8 ", "demo/in%dex.ts", "demo/in\\dex.ts", "d.e/x.ts",
        "demo/x.TS", "demo/x.ts.tmp", "../x.ts", "demo/x.m3u",
    };
    struct objpath p;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(NS_LIVE, bad[i], &p) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    char rest[400], name[66];
    memset(name, 'n', 65);
    name[65] = '\0';
    snprintf(rest, sizeof(rest), "%s/x.ts", name);   /* 65-character name */
    assert_int_equal(parse(NS_LIVE, rest, &p), -1);
    char file[FILE_NAME_MAX + 2];
    memset(file, 'f', sizeof(file) - 1);
    memcpy(file + FILE_NAME_MAX - 2, ".ts", 4);   /* exactly FILE_NAME_MAX + 1 */
    snprintf(rest, sizeof(rest), "demo/%s", file);
    assert_int_equal(strlen(file), FILE_NAME_MAX + 1);
    assert_int_equal(parse(NS_LIVE, rest, &p), -1);
    /* a NUL inside the bytes is refused even when the length covers it */
    const char *why;
    assert_int_equal(objpath_parse(NS_LIVE, "demo/x\0.ts", 10, &p, &why), -1);
}

/* ---- playlists ------------------------------------------------------------ */

static int target(const char *text, int64_t *ms)
{
    return playlist_target_duration(text, strlen(text), ms);
}

static void test_target_duration(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(target("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n", &ms), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(target("#EXTM3U\r\n#EXT-X-TARGETDURATION:10\r\n#EXTINF:9.9,\r\n", &ms), 0);
    assert_int_equal(ms, 10000);
    assert_int_equal(target("#EXT-X-TARGETDURATION:6", &ms), 0);   /* no newline */
    assert_int_equal(ms, 6000);
    assert_int_equal(target("#EXTM3U\n#EXT-X-TARGETDURATION:2.5 \n", &ms), 0);
    assert_int_equal(ms, 2500);
    assert_int_equal(target("#EXTM3U\n#EXT-X-TARGETDURATION:1.23456\n", &ms), 0);
    assert_int_equal(ms, 1234);
}

static void test_target_duration_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n",   /* a master playlist */
        "#EXT-X-TARGETDURATION:\n", "#EXT-X-TARGETDURATION:x\n", "#EXT-X-TARGETDURATION:0\n",
        "#EXT-X-TARGETDURATION:-2\n", "#EXT-X-TARGETDURATION:2x\n",
        "#EXT-X-TARGETDURATION:86401\n", "#EXT-X-TARGETDURATION:99999999999\n",
        " #EXT-X-TARGETDURATION:2\n", "x#EXT-X-TARGETDURATION:2\n",
        "#EXT-X-TARGETDURATION: 2\n", "#EXT-X-TARGETDURATION:.5\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = -7;
        if (target(bad[i], &ms) != -1)
            fail_msg("accepted \"%s\" as %lld ms", bad[i], (long long)ms);
        assert_int_equal(ms, -7);
    }
    /* the first tag decides, even if a later one would parse */
    int64_t ms;
    assert_int_equal(target("#EXT-X-TARGETDURATION:y\n#EXT-X-TARGETDURATION:4\n", &ms), -1);
}

static bool ended(const char *text)
{
    return playlist_ended(text, strlen(text));
}

static void test_playlist_ended(void **state)
{
    (void)state;
    assert_true(ended("#EXTM3U\n#EXTINF:2.000,\n1-5.ts\n#EXT-X-ENDLIST\n"));
    assert_true(ended("#EXTM3U\r\n#EXTINF:2.000,\r\n1-5.ts\r\n#EXT-X-ENDLIST\r\n"));
    assert_true(ended("#EXT-X-ENDLIST"));                      /* no newline */
    assert_true(ended("#EXTM3U\n#EXT-X-ENDLIST \n"));
    assert_false(ended(""));
    assert_false(ended("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000,\n1-5.ts\n"));
    assert_false(ended("#EXTM3U\n#EXT-X-ENDLISTX\n"));
    assert_false(ended("#EXTM3U\n #EXT-X-ENDLIST\n"));
    assert_false(ended("#EXTM3U\nx#EXT-X-ENDLIST\n"));
    assert_false(ended("#EXT-X-ENDLIS"));
    assert_false(playlist_ended("#EXT-X-ENDLIST", 13));          /* cut short */
}

/* ---- Range and friends ---------------------------------------------------- */

static void test_range(void **state)
{
    (void)state;
    uint64_t off, len;
    assert_int_equal(range_parse(NULL, 100, &off, &len), RANGE_NONE);
    assert_int_equal(range_parse("bytes=0-9", 100, &off, &len), RANGE_OK);
    assert_true(off == 0 && len == 10);
    assert_int_equal(range_parse("bytes=90-", 100, &off, &len), RANGE_OK);
    assert_true(off == 90 && len == 10);
    assert_int_equal(range_parse("bytes=90-1000", 100, &off, &len), RANGE_OK);
    assert_true(off == 90 && len == 10);
    assert_int_equal(range_parse("bytes=-30", 100, &off, &len), RANGE_OK);
    assert_true(off == 70 && len == 30);
    assert_int_equal(range_parse("bytes=-300", 100, &off, &len), RANGE_OK);
    assert_true(off == 0 && len == 100);
    assert_int_equal(range_parse(" Bytes = 5-5 ", 100, &off, &len), RANGE_OK);
    assert_true(off == 5 && len == 1);
    assert_int_equal(range_parse("bytes=100-", 100, &off, &len), RANGE_UNSATISFIABLE);
    assert_int_equal(range_parse("bytes=-0", 100, &off, &len), RANGE_UNSATISFIABLE);
    assert_int_equal(range_parse("bytes=0-", 0, &off, &len), RANGE_UNSATISFIABLE);
    static const char *const ignored[] = {
        "bytes=0-1,5-6", "items=0-1", "bytes=5-1", "bytes=", "bytes=-", "bytes=a-b",
        "bytes 0-1", "bytes=0-1x", "bytes=99999999999999999999-",
    };
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        assert_int_equal(range_parse(ignored[i], 100, &off, &len), RANGE_NONE);
}

static void test_etags(void **state)
{
    (void)state;
    assert_true(etag_list_match("\"a\"", "\"a\""));
    assert_true(etag_list_match("\"x\", \"a\"", "\"a\""));
    assert_true(etag_list_match("W/\"a\"", "\"a\""));
    assert_true(etag_list_match("\"a\"", "W/\"a\""));
    assert_true(etag_list_match("*", "\"a\""));
    assert_true(etag_list_match(" \"b\" ,\t\"a\" ", "\"a\""));
    assert_false(etag_list_match("\"b\"", "\"a\""));
    assert_false(etag_list_match("\"a\"", ""));
    assert_false(etag_list_match(NULL, "\"a\""));
    assert_false(etag_list_match("", "\"a\""));
    assert_false(etag_list_match(",,,", "\"a\""));
    assert_true(if_range_allows(NULL, "", ""));
    assert_true(if_range_allows("\"a\"", "\"a\"", ""));
    assert_false(if_range_allows("\"a\"", "W/\"a\"", ""));
    assert_false(if_range_allows("\"a\"", "\"b\"", ""));
    assert_true(if_range_allows("Sat, 21 Nov 2026 10:00:00 GMT", "",
                                "Sat, 21 Nov 2026 10:00:00 GMT"));
    assert_false(if_range_allows("Sat, 21 Nov 2026 10:00:00 GMT", "", ""));
}

/* ---- route records -------------------------------------------------------- */

static int record(const char *json, char *url)
{
    char why[200] = "";
    int rc = route_record_parse(json, strlen(json), url, why, sizeof(why));
    if (rc == -1)
        assert_true(why[0] != '\0');
    return rc;
}

static void test_records(void **state)
{
    (void)state;
    char url[ORIGIN_URL_MAX + 1];
    assert_int_equal(record("{\"url\":\"http://10.0.0.5:8080\",\"manifest\":"
                            "\"/live/demo/index.m3u8\",\"updated_at\":\"x\"}", url), 0);
    assert_string_equal(url, "http://10.0.0.5:8080");
    assert_int_equal(record("{\"url\":\"http://hls-1:8080/\",\"stream\":\"demo\"}", url), 0);
    assert_string_equal(url, "http://hls-1:8080");
    static const char *const bad[] = {
        "", "null", "[]", "\"http://h:1\"", "{}", "{\"url\":1}", "{\"url\":\"h:1\"}",
        "{\"url\":\"http://h:1/x\"}", "{\"url\":\"http://h:1\",\"url\":\"http://i:1\"}",
        "{\"url\":\"http://h:1\"", "{\"url\":\"http://h\\u0000:1\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (record(bad[i], url) != -1)
            fail_msg("accepted %s", bad[i]);
    }
    char big[ROUTE_RECORD_MAX + 64];
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "{\"url\":\"http://h:1\"}", 20);
    assert_int_equal(record(big, url), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_ok),
        cmocka_unit_test(test_paths_refused),
        cmocka_unit_test(test_target_duration),
        cmocka_unit_test(test_target_duration_refused),
        cmocka_unit_test(test_playlist_ended),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_etags),
        cmocka_unit_test(test_records),
    };
    return cmocka_run_group_tests_name("edge parsers", tests, NULL, NULL);
}
