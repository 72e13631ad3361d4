/* libFuzzer harness: the viewer headers the edge interprets against a cached
 * body: Range (any answer must stay inside the body), If-None-Match and
 * If-Range. The first two bytes choose the body size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/edge/cond.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint64_t body = (uint64_t)data[0] << 8 | data[1];
    char *value = malloc(size - 1);
    memcpy(value, data + 2, size - 2);
    value[size - 2] = '\0';
    uint64_t off = 0, len = 0;
    enum range_result r = range_parse(value, body, &off, &len);
    if (r == RANGE_OK && (len == 0 || off >= body || len > body - off))
        __builtin_trap();
    etag_list_match(value, "\"abc\"");
    etag_list_match(value, "W/\"abc\"");
    if_range_allows(value, "\"abc\"", "Sat, 21 Nov 2026 10:00:00 GMT");
    free(value);
    return 0;
}
