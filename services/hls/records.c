/* Stream records and events: see records.h. */
#include "records.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/net.h"

static json_t *parse_object(const char *buf, size_t len, char *why, size_t whylen)
{
    if (len > RECORD_MAX_LEN) {
        snprintf(why, whylen, "longer than %d bytes", RECORD_MAX_LEN);
        return NULL;
    }
    char err[120];
    json_t *v = json_parse(buf, len, err, sizeof(err));
    if (v == NULL) {
        snprintf(why, whylen, "malformed JSON: %s", err);
        return NULL;
    }
    if (!json_is_object(v)) {
        snprintf(why, whylen, "not a JSON object");
        json_decref(v);
        return NULL;
    }
    return v;
}

static int get_name(const json_t *v, const char *key, char *out, char *why, size_t whylen)
{
    const char *s = NULL;
    if (json_get_str(v, key, &s) != 0 || !stream_name_valid(s)) {
        snprintf(why, whylen, "\"%s\" is not a stream name", key);
        return -1;
    }
    snprintf(out, STREAM_NAME_MAX + 1, "%s", s);
    return 0;
}

/* An SLP address to dial: host:port, both given, printable, bounded. */
static int get_relay(const json_t *v, char *out, bool required, char *why, size_t whylen)
{
    const char *s = NULL;
    int rc = json_get_str(v, "relay", &s);
    out[0] = '\0';
    if (rc == 1 && !required)
        return 0;
    char host[256];
    int port;
    if (rc != 0 || s[0] == ':' || strlen(s) > RELAY_ADDR_MAX || strspn(s, "0123456789abcdefghijklmnopqrstuvwxyz"
                                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-_:[]")
                                                     != strlen(s) ||
        net_split_hostport(s, host, sizeof(host), &port) == -1 || port == 0 || host[0] == '\0') {
        snprintf(why, whylen, "\"relay\" is not host:port");
        return -1;
    }
    snprintf(out, RELAY_ADDR_MAX + 1, "%s", s);
    return 0;
}

int records_stream_parse(const char *buf, size_t len, struct stream_record *out, char *why,
                         size_t whylen)
{
    memset(out, 0, sizeof(*out));
    json_t *v = parse_object(buf, len, why, whylen);
    if (v == NULL)
        return -1;
    int rc = get_name(v, "name", out->name, why, whylen) == 0 &&
             get_relay(v, out->relay, true, why, whylen) == 0 ? 0 : -1;
    json_decref(v);
    if (rc == -1)
        memset(out, 0, sizeof(*out));
    return rc;
}

int records_event_parse(const char *buf, size_t len, struct event_msg *out, char *why,
                        size_t whylen)
{
    memset(out, 0, sizeof(*out));
    json_t *v = parse_object(buf, len, why, whylen);
    if (v == NULL)
        return -1;
    const char *type = NULL;
    int rc = 0;
    if (json_get_str(v, "type", &type) != 0) {
        snprintf(why, whylen, "no \"type\" string");
        rc = -1;
    } else if (strcmp(type, "stream.start") == 0) {
        out->type = EV_STREAM_START;
        rc = get_name(v, "stream", out->stream, why, whylen) == 0 &&
             get_relay(v, out->relay, false, why, whylen) == 0 ? 0 : -1;
    } else if (strcmp(type, "stream.stop") == 0) {
        out->type = EV_STREAM_STOP;
        rc = get_name(v, "stream", out->stream, why, whylen);
    } else if (strcmp(type, "hls.released") == 0) {
        out->type = EV_HLS_RELEASED;
        rc = get_name(v, "stream", out->stream, why, whylen);
    }
    json_decref(v);
    if (rc == -1)
        memset(out, 0, sizeof(*out));
    return rc;
}
