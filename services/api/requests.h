/* Request bodies: parsing and validation, pure functions from a JSON object
 * to a struct (fuzzed in tests/fuzz/services/api/fuzz_requests.c).
 *
 * Each parser refuses unknown fields, wrong types and out-of-range values
 * with a message naming the field, written to <err> (<errlen> bytes), and
 * returns -1; or fills <out> and returns 0. Strings in <out> point into the
 * body: they live as long as it does. */
#ifndef SLUICE_API_REQUESTS_H
#define SLUICE_API_REQUESTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define USERNAME_MAX 64
#define TITLE_MAX 200          /* bytes of UTF-8 */
#define CATEGORY_MAX 64
#define PASSPHRASE_MIN 10      /* libsrt's limits for SRTO_PASSPHRASE */
#define PASSPHRASE_MAX 79
#define CLIENT_MAX 96
#define RECORDING_ID_MAX 64    /* the stream-name grammar, see recording_id_valid */
#define HOLDER_URL_MAX 280     /* ORIGIN_URL_MAX of sluice/url.h */
#define BASE_URL_MAX 200
#define SEGMENTS_MAX 2147483647

enum role { ROLE_PUBLISHER, ROLE_ADMIN };
enum mode { MODE_PUBLISH, MODE_REQUEST };
enum protocol { PROTO_SRT, PROTO_RTMP };

const char *role_name(enum role r);
const char *mode_name(enum mode m);
const char *protocol_name(enum protocol p);
/* Parses a role name. Returns 0 or -1. */
int role_parse(const char *s, enum role *out);

/* An optional boolean field: absent, or a value. */
struct opt_bool {
    bool set, value;
};

struct login_req {
    const char *username, *password;
};

struct user_req {
    const char *username, *password;
    enum role role;              /* default publisher */
};

struct stream_req {
    const char *name, *title, *category;
    const char *passphrase;      /* NULL: none */
    const char *owner;           /* user name; NULL: the caller */
    bool disabled, record;
};

/* PATCH: only what is present changes. */
struct stream_patch {
    const char *title, *category;          /* NULL: unchanged */
    enum { PASS_KEEP, PASS_SET, PASS_CLEAR } pass_op;
    const char *passphrase;                /* with PASS_SET */
    struct opt_bool disabled, record;
};

struct session_req {
    enum mode mode;
};

struct authorize_req {
    enum protocol protocol;
    enum mode action;
    const char *stream;          /* NULL when absent */
    const char *key;             /* a stream key or session id, not yet checked */
    const char *client;          /* "" when absent */
};

/* PUT /internal/v1/recordings/{id}: a recorder registers or updates one
 * recording. Times are RFC 3339; ended_at NULL (absent or null) while the
 * recording runs; counters default to 0. */
struct recording_req {
    const char *stream, *started_at, *ended_at;
    const char *holder_url;              /* points to <holder> */
    int64_t duration_ms, bytes, segments;
    char holder[HOLDER_URL_MAX + 1];     /* the URL without a trailing '/' */
};

int req_login(const json_t *body, struct login_req *out, char *err, size_t errlen);
int req_user(const json_t *body, struct user_req *out, char *err, size_t errlen);
int req_stream(const json_t *body, struct stream_req *out, char *err, size_t errlen);
int req_stream_patch(const json_t *body, struct stream_patch *out, char *err,
                     size_t errlen);
int req_session(const json_t *body, struct session_req *out, char *err, size_t errlen);
int req_authorize(const json_t *body, struct authorize_req *out, char *err,
                  size_t errlen);
int req_recording(const json_t *body, struct recording_req *out, char *err,
                  size_t errlen);

/* Field grammars, also used on path segments. */
bool username_valid(const char *s);
bool passphrase_valid(const char *s);

/* A recording id: the stream-name grammar, [A-Za-z0-9_-]{1,64}, as the edge
 * reads /vod/<id>/ and Redis keys sluice:vod:<id> (docs/redis.md). Recorders
 * make them (a stream name and a time, say); the API only checks them. */
bool recording_id_valid(const char *s);

/* An RFC 3339 time as Sluice writes them, strictly:
 * YYYY-MM-DD"T"hh:mm:ss, optional fraction (1 to 9 digits), then "Z" or an
 * offset ±hh:mm; a real calendar date, years 0001 to 9999, seconds 00 to
 * 59. PostgreSQL would take far more ("now", "epoch", "infinity", "1/2/3"),
 * so every time from a peer passes here first. */
bool rfc3339_valid(const char *s);

/* A recorder's base URL: the origin URL grammar of sluice/url.h, which the
 * edge reads sluice:vod:<id> with ("http://" host [":" port]). */
bool holder_url_valid(const char *s);

/* A public base URL (edge-url): "http://" or "https://", a host and optional
 * port as in the origin URL grammar, an optional path of printable ASCII
 * without spaces; no query or fragment; at most BASE_URL_MAX bytes. */
bool base_url_valid(const char *s);

#endif
