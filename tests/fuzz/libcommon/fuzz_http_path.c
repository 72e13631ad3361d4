/* libFuzzer harness: the HTTP router's path handling (peer input on every
 * public port): splitting and percent-decoding a request path, matching it
 * against route patterns, building captures, and escaping it for a log line.
 * Includes http.c to reach its static helpers. */
#include "../../../libcommon/http.c"

static const char *const patterns[] = {
    "/live/{}/{}", "/vod/{}/*", "/v1/streams/{}", "/v1/streams/{}/key", "/files/*",
    "/metrics", "/",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[MAX_PATH + 2];
    if (size > MAX_PATH + 1)
        return 0;
    memcpy(path, data, size);
    path[size] = '\0';
    char store[MAX_PATH + MAX_SEGMENTS + 2];
    const char *seg[MAX_SEGMENTS];
    int nseg = split_path(path, store, sizeof(store), seg, MAX_SEGMENTS);
    char logged[256];
    log_escape(logged, sizeof(logged), data, size);
    if (nseg < 0)
        return 0;
    for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++) {
        struct capture cap[HTTP_MAX_PARAMS];
        int ncap;
        if (!match(patterns[p], seg, nseg, cap, &ncap))
            continue;
        for (int i = 0; i < ncap; i++) {
            char *text = capture_text(seg, nseg, cap[i]);
            /* a capture never carries a separator it did not span */
            if (text != NULL && !cap[i].rest && strchr(text, '/') != NULL)
                __builtin_trap();
            free(text);
        }
    }
    return 0;
}
