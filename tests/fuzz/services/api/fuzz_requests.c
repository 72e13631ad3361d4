/* libFuzzer: request bodies. The first byte picks the parser, the rest is the
 * body, parsed as JSON the way the server parses it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../../../services/api/requests.h"
#include "sluice/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    json_t *body = json_parse(data + 1, size - 1, NULL, 0);
    if (body == NULL || !json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    char err[200];
    union {
        struct login_req login;
        struct user_req user;
        struct stream_req stream;
        struct stream_patch patch;
        struct session_req session;
        struct authorize_req authz;
        struct recording_req rec;
    } out;
    switch (data[0] % 7) {
    case 0: req_login(body, &out.login, err, sizeof(err)); break;
    case 1: req_user(body, &out.user, err, sizeof(err)); break;
    case 2:
        if (req_stream(body, &out.stream, err, sizeof(err)) == 0 && out.stream.passphrase &&
            !passphrase_valid(out.stream.passphrase))
            __builtin_trap();   /* an accepted passphrase must be valid */
        break;
    case 3: req_stream_patch(body, &out.patch, err, sizeof(err)); break;
    case 4: req_session(body, &out.session, err, sizeof(err)); break;
    case 5: req_authorize(body, &out.authz, err, sizeof(err)); break;
    default:
        /* what reaches SQL must have passed the grammars */
        if (req_recording(body, &out.rec, err, sizeof(err)) == 0 &&
            (!rfc3339_valid(out.rec.started_at) || !holder_url_valid(out.rec.holder_url) ||
             (out.rec.ended_at && !rfc3339_valid(out.rec.ended_at)) ||
             out.rec.bytes < 0 || out.rec.segments < 0 || out.rec.duration_ms < 0))
            __builtin_trap();
        break;
    }
    if (memchr(err, '\0', sizeof(err)) == NULL)
        __builtin_trap();
    json_decref(body);
    return 0;
}
