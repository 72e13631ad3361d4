/* libFuzzer harness: route records read from Redis (sluice:origin:<name>,
 * sluice:vod:<id>). Whatever is accepted must be a URL the edge may connect
 * to. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/edge/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char url[ORIGIN_URL_MAX + 1], why[200];
    if (route_record_parse((const char *)data, size, url, why, sizeof(why)) == 0) {
        size_t n = strlen(url);
        if (!origin_url_valid(url, n) || url[n - 1] == '/')
            __builtin_trap();
    } else if (why[0] == '\0') {
        __builtin_trap();
    }
    origin_url_valid((const char *)data, size);
    return 0;
}
