/* Route record parser: see record.h. */
#include "record.h"

#include <stdio.h>
#include <string.h>

#include "sluice/json.h"

int route_record_parse(const char *buf, size_t len, char *url, char *why, size_t whylen)
{
    if (len > ROUTE_RECORD_MAX) {
        snprintf(why, whylen, "record larger than %d bytes", ROUTE_RECORD_MAX);
        return -1;
    }
    char err[160];
    json_t *v = json_parse(buf, len, err, sizeof(err));
    if (v == NULL) {
        snprintf(why, whylen, "malformed JSON: %s", err);
        return -1;
    }
    const char *s = NULL;
    int rc = -1;
    if (!json_is_object(v))
        snprintf(why, whylen, "not a JSON object");
    else if (json_get_str(v, "url", &s) != 0)
        snprintf(why, whylen, "no \"url\" string");
    else if (origin_url_normalize(s, strlen(s), url, ORIGIN_URL_MAX + 1) == -1)
        snprintf(why, whylen, "\"url\" is not http://host[:port]");
    else
        rc = 0;
    json_decref(v);
    return rc;
}
