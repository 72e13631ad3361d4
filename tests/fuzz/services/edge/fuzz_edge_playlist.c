/* libFuzzer harness: the playlist parsers (target duration, EXT-X-ENDLIST),
 * over whatever an origin sends as a playlist. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/edge/playlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    int64_t ms = -1;
    int rc = playlist_target_duration(buf, size, &ms);
    if (rc == 0 && (ms <= 0 || ms > (int64_t)PLAYLIST_TARGET_MAX_S * 1000))
        __builtin_trap();
    if (rc != 0 && rc != -1)
        __builtin_trap();
    if (playlist_ended(buf, size) && size < 14)
        __builtin_trap();
    free(buf);
    return 0;
}
