/* The stream-name grammar: see names.h. */
#include "sluice/names.h"

#include <string.h>

bool stream_name_validn(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > STREAM_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool stream_name_valid(const char *s)
{
    return s != NULL && stream_name_validn(s, strnlen(s, STREAM_NAME_MAX + 1));
}
