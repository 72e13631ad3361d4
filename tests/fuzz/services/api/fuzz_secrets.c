/* libFuzzer: the small parsers of stored and presented secrets: password hash
 * strings, base64 (decode, then encode must give the input back), key and
 * session id shapes, stored session values. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/api/b64.h"
#include "../../../../services/api/keys.h"
#include "../../../../services/api/password.h"
#include "../../../../services/api/sessions.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    struct password_hash h;
    password_parse(s, &h);

    uint8_t dec[512];
    char enc[700];
    for (int url = 0; url <= 1; url++) {
        int n = b64_decode(s, size, dec, sizeof(dec), url);
        if (n >= 0) {
            int m = b64_encode(dec, (size_t)n, enc, sizeof(enc), url);
            if (m != (int)size || memcmp(enc, s, size) != 0)
                __builtin_trap();   /* one canonical encoding */
        }
    }

    enum key_kind k = key_kind(s, size);
    if (k != KEY_INVALID && (size < 3 + KEY_BODY_MIN || size > KEY_MAX))
        __builtin_trap();

    struct session sess;
    session_parse(s, size, &sess);
    free(s);
    return 0;
}
