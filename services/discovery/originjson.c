/* origin.json parser: see originjson.h. */
#include "originjson.h"

#include <stdio.h>
#include <string.h>

#include "sluice/json.h"
#include "sluice/log.h"

int origin_json_parse(const char *buf, size_t len, struct origin_info *out, char *why,
                      size_t whylen)
{
    if (len > ORIGIN_JSON_MAX) {
        snprintf(why, whylen, "larger than %d bytes", ORIGIN_JSON_MAX);
        return -1;
    }
    char err[160];
    json_t *v = json_parse(buf, len, err, sizeof(err));
    if (v == NULL) {
        snprintf(why, whylen, "malformed JSON: %s", err);
        return -1;
    }
    const char *url = NULL, *node = NULL;
    int rc = -1;
    if (!json_is_object(v)) {
        snprintf(why, whylen, "not a JSON object");
    } else if (json_get_str(v, "url", &url) != 0) {
        snprintf(why, whylen, "no \"url\" string");
    } else if (origin_url_normalize(url, strlen(url), out->url, sizeof(out->url)) == -1) {
        char safe[64];
        snprintf(why, whylen, "\"url\" is not http://host[:port]: \"%s\"",
                 log_escape(safe, sizeof(safe), url, strlen(url)));
    } else if (json_get_str(v, "node", &node) == -1 ||
               (node != NULL && strlen(node) > ORIGIN_NODE_MAX)) {
        snprintf(why, whylen, "\"node\" is not a string of at most %d bytes",
                 ORIGIN_NODE_MAX);
    } else {
        log_escape(out->node, sizeof(out->node), node ? node : "", node ? strlen(node) : 0);
        rc = 0;
    }
    json_decref(v);
    return rc;
}
