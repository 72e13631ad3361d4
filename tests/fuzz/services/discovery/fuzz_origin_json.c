/* libFuzzer harness: origin.json as discovery reads it (hls writes it; a
 * broken or hostile file must never crash discovery or advertise a URL
 * outside the grammar). */
#include <stdint.h>
#include <string.h>

#include "../../../../services/discovery/originjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct origin_info info;
    char why[200] = "";
    if (origin_json_parse((const char *)data, size, &info, why, sizeof(why)) == 0) {
        if (!origin_url_valid(info.url, strlen(info.url)) ||
            strlen(info.node) > ORIGIN_NODE_MAX)
            __builtin_trap();
    } else if (why[0] == '\0') {
        __builtin_trap();
    }
    return 0;
}
