/* Request bodies: see requests.h. */
#include "requests.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "password.h"
#include "sluice/json.h"
#include "sluice/names.h"
#include "sluice/url.h"

static const char *const role_names[] = { "publisher", "admin", NULL };
static const char *const mode_names[] = { "publish", "request", NULL };
static const char *const protocol_names[] = { "srt", "rtmp", NULL };

const char *role_name(enum role r) { return role_names[r]; }
const char *mode_name(enum mode m) { return mode_names[m]; }
const char *protocol_name(enum protocol p) { return protocol_names[p]; }

static int lookup_name(const char *const *names, const char *s)
{
    for (int i = 0; names[i]; i++) {
        if (strcmp(names[i], s) == 0)
            return i;
    }
    return -1;
}

int role_parse(const char *s, enum role *out)
{
    int i = lookup_name(role_names, s);
    if (i == -1)
        return -1;
    *out = (enum role)i;
    return 0;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int only_keys(const json_t *body, const char *const *allowed, char *err,
                     size_t errlen)
{
    const char *bad = NULL;
    if (json_keys_only(body, allowed, &bad))
        return 0;
    char safe[48];
    size_t n = strlen(bad);
    snprintf(safe, sizeof(safe), "%.*s%s", 32, bad, n > 32 ? "..." : "");
    for (char *p = safe; *p; p++) {   /* a key is UTF-8 from a peer: keep it tame */
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f || *p == '"')
            *p = '?';
    }
    return fail(err, errlen, "unknown field \"%s\"", safe);
}

/* No control characters (they have no business in a title or a name). */
static bool printable_utf8(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    }
    return true;
}

/* A string field of [min, max] bytes. Returns 0 (set), 1 (absent and not
 * <required>), or -1 with <err>. */
static int get_str(const json_t *body, const char *key, bool required, size_t min,
                   size_t max, const char **out, char *err, size_t errlen)
{
    int rc = json_get_str(body, key, out);
    if (rc == -1)
        return fail(err, errlen, "%s: must be a string", key);
    if (rc == 1) {
        if (required)
            return fail(err, errlen, "%s: is required", key);
        return 1;
    }
    size_t n = strlen(*out);
    if (n < min || n > max)
        return fail(err, errlen, "%s: must be %zu to %zu bytes long", key, min, max);
    return 0;
}

static int get_text(const json_t *body, const char *key, size_t max, const char **out,
                    char *err, size_t errlen)
{
    int rc = get_str(body, key, false, 0, max, out, err, errlen);
    if (rc == 0 && !printable_utf8(*out))
        return fail(err, errlen, "%s: must not contain control characters", key);
    return rc;
}

static int get_bool(const json_t *body, const char *key, struct opt_bool *out,
                    char *err, size_t errlen)
{
    int rc = json_get_bool(body, key, &out->value);
    if (rc == -1)
        return fail(err, errlen, "%s: must be true or false", key);
    out->set = rc == 0;
    return 0;
}

/* A string field that must be one of <names>; *<out> is its index. */
static int get_enum(const json_t *body, const char *key, bool required,
                    const char *const *names, int *out, char *err, size_t errlen)
{
    const char *s;
    int rc = get_str(body, key, required, 1, 32, &s, err, errlen);
    if (rc != 0)
        return rc;
    int i = lookup_name(names, s);
    if (i == -1) {
        char list[96] = "";
        for (int k = 0; names[k]; k++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
                     k ? (names[k + 1] ? ", " : " or ") : "", names[k]);
        return fail(err, errlen, "%s: must be %s", key, list);
    }
    *out = i;
    return 0;
}

bool username_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > USERNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == '@'))
            return false;
    }
    return true;
}

/* 10 to 79 printable ASCII characters: what libsrt takes, and what survives
 * being typed into an SRT URL. */
bool passphrase_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < PASSPHRASE_MIN || n > PASSPHRASE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    }
    return true;
}

static int check_passphrase(const char *s, char *err, size_t errlen)
{
    if (passphrase_valid(s))
        return 0;
    return fail(err, errlen, "passphrase: must be %d to %d printable ASCII characters",
                PASSPHRASE_MIN, PASSPHRASE_MAX);
}

bool recording_id_valid(const char *s)
{
    return stream_name_valid(s);
}

/* ---- times and URLs ----------------------------------------------------- */

/* <n> decimal digits at <s> into *<out>. */
static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static int days_in_month(int year, int month)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

bool rfc3339_valid(const char *s)
{
    int y, mo, d, h, mi, sec, oh, om;
    if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || sec > 59)
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        size_t n = strspn(p + 1, "0123456789");
        if (n < 1 || n > 9)
            return false;
        p += 1 + n;
    }
    if (p[0] == 'Z')
        return p[1] == '\0';
    return (p[0] == '+' || p[0] == '-') && digits(p + 1, 2, &oh) && p[3] == ':' &&
           digits(p + 4, 2, &om) && p[6] == '\0' && oh <= 23 && om <= 59;
}

bool holder_url_valid(const char *s)
{
    return origin_url_valid(s, strlen(s));
}

bool base_url_valid(const char *s)
{
    size_t skip = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;
    char origin[ORIGIN_URL_MAX + 1];
    if (skip == 0 || strlen(s) > BASE_URL_MAX)
        return false;
    const char *host = s + skip;
    size_t hlen = strcspn(host, "/");
    /* the host and port: the origin URL grammar (url.h) */
    if (snprintf(origin, sizeof(origin), "http://%.*s", (int)hlen, host) >= (int)sizeof(origin) ||
        hlen == 0 || !origin_url_valid(origin, strlen(origin)) || origin[strlen(origin) - 1] == '/')
        return false;
    for (const char *p = host + hlen; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || strchr("\"<>\\^`{|}?#", *p))
            return false;
    }
    return true;
}

/* ---- the bodies --------------------------------------------------------- */

int req_login(const json_t *body, struct login_req *out, char *err, size_t errlen)
{
    static const char *const keys[] = { "username", "password", NULL };
    memset(out, 0, sizeof(*out));
    if (only_keys(body, keys, err, errlen) == -1 ||
        get_str(body, "username", true, 1, USERNAME_MAX, &out->username, err, errlen) ||
        get_str(body, "password", true, 1, PASSWORD_MAX_LEN, &out->password, err, errlen))
        return -1;
    return 0;
}

int req_user(const json_t *body, struct user_req *out, char *err, size_t errlen)
{
    static const char *const keys[] = { "username", "password", "role", NULL };
    int role = ROLE_PUBLISHER;
    memset(out, 0, sizeof(*out));
    if (only_keys(body, keys, err, errlen) == -1 ||
        get_str(body, "username", true, 1, USERNAME_MAX, &out->username, err, errlen) ||
        get_str(body, "password", true, PASSWORD_MIN_LEN, PASSWORD_MAX_LEN, &out->password,
                err, errlen) ||
        get_enum(body, "role", false, role_names, &role, err, errlen) == -1)
        return -1;
    if (!username_valid(out->username))
        return fail(err, errlen, "username: must be 1 to %d of A-Z a-z 0-9 _ - . @",
                    USERNAME_MAX);
    out->role = (enum role)role;
    return 0;
}

int req_stream(const json_t *body, struct stream_req *out, char *err, size_t errlen)
{
    static const char *const keys[] = { "name", "title", "category", "passphrase", "owner",
                                        "disabled", "record", NULL };
    struct opt_bool disabled = { 0 }, record = { 0 };
    memset(out, 0, sizeof(*out));
    out->title = out->category = "";
    if (only_keys(body, keys, err, errlen) == -1 ||
        get_str(body, "name", true, 1, STREAM_NAME_MAX, &out->name, err, errlen) ||
        get_text(body, "title", TITLE_MAX, &out->title, err, errlen) == -1 ||
        get_text(body, "category", CATEGORY_MAX, &out->category, err, errlen) == -1 ||
        get_str(body, "passphrase", false, 0, 256, &out->passphrase, err, errlen) == -1 ||
        get_str(body, "owner", false, 1, USERNAME_MAX, &out->owner, err, errlen) == -1 ||
        get_bool(body, "disabled", &disabled, err, errlen) == -1 ||
        get_bool(body, "record", &record, err, errlen) == -1)
        return -1;
    if (!stream_name_valid(out->name))
        return fail(err, errlen, "name: must be 1 to %d of A-Z a-z 0-9 _ -", STREAM_NAME_MAX);
    if (out->passphrase && check_passphrase(out->passphrase, err, errlen) == -1)
        return -1;
    if (out->owner && !username_valid(out->owner))
        return fail(err, errlen, "owner: not a valid user name");
    out->disabled = disabled.value;
    out->record = record.value;
    return 0;
}

int req_stream_patch(const json_t *body, struct stream_patch *out, char *err, size_t errlen)
{
    static const char *const keys[] = { "title", "category", "passphrase", "disabled",
                                        "record", NULL };
    memset(out, 0, sizeof(*out));
    if (only_keys(body, keys, err, errlen) == -1 ||
        get_text(body, "title", TITLE_MAX, &out->title, err, errlen) == -1 ||
        get_text(body, "category", CATEGORY_MAX, &out->category, err, errlen) == -1 ||
        get_bool(body, "disabled", &out->disabled, err, errlen) == -1 ||
        get_bool(body, "record", &out->record, err, errlen) == -1)
        return -1;
    const json_t *pp = json_object_get(body, "passphrase");
    if (json_is_null(pp)) {
        out->pass_op = PASS_CLEAR;
    } else if (pp != NULL) {
        if (!json_is_string(pp))
            return fail(err, errlen, "passphrase: must be a string or null");
        out->passphrase = json_string_value(pp);
        if (check_passphrase(out->passphrase, err, errlen) == -1)
            return -1;
        out->pass_op = PASS_SET;
    }
    if (json_object_size(body) == 0)
        return fail(err, errlen, "nothing to change");
    return 0;
}

int req_session(const json_t *body, struct session_req *out, char *err, size_t errlen)
{
    static const char *const keys[] = { "mode", NULL };
    int mode = MODE_PUBLISH;
    if (only_keys(body, keys, err, errlen) == -1 ||
        get_enum(body, "mode", true, mode_names, &mode, err, errlen) != 0)
        return -1;
    out->mode = (enum mode)mode;
    return 0;
}

int req_authorize(const json_t *body, struct authorize_req *out, char *err, size_t errlen)
{
    static const char *const keys[] = { "protocol", "action", "stream", "key", "client",
                                        NULL };
    int proto = 0, action = 0;
    memset(out, 0, sizeof(*out));
    out->client = "";
    if (only_keys(body, keys, err, errlen) == -1 ||
        get_enum(body, "protocol", true, protocol_names, &proto, err, errlen) != 0 ||
        get_enum(body, "action", true, mode_names, &action, err, errlen) != 0 ||
        get_str(body, "stream", false, 0, 1024, &out->stream, err, errlen) == -1 ||
        get_str(body, "key", true, 0, 1024, &out->key, err, errlen) != 0 ||
        get_str(body, "client", false, 0, CLIENT_MAX, &out->client, err, errlen) == -1)
        return -1;
    out->protocol = (enum protocol)proto;
    out->action = (enum mode)action;
    return 0;
}

/* A non-negative integer field, at most <max>; 0 when absent. */
static int get_count(const json_t *body, const char *key, int64_t max, int64_t *out,
                     char *err, size_t errlen)
{
    *out = 0;
    int rc = json_get_int(body, key, out);
    if (rc == -1 || (rc == 0 && (*out < 0 || *out > max)))
        return fail(err, errlen, "%s: must be an integer from 0 to %lld", key,
                    (long long)max);
    return 0;
}

/* A time field: RFC 3339 (see rfc3339_valid). */
static int get_time(const json_t *body, const char *key, bool required, const char **out,
                    char *err, size_t errlen)
{
    int rc = get_str(body, key, required, 1, 64, out, err, errlen);
    if (rc == 0 && !rfc3339_valid(*out))
        return fail(err, errlen, "%s: must be an RFC 3339 time (2026-11-21T10:00:00.000Z)",
                    key);
    return rc;
}

int req_recording(const json_t *body, struct recording_req *out, char *err, size_t errlen)
{
    static const char *const keys[] = { "stream", "started_at", "ended_at", "duration_ms",
                                        "bytes", "segments", "holder_url", NULL };
    memset(out, 0, sizeof(*out));
    if (only_keys(body, keys, err, errlen) == -1 ||
        get_str(body, "stream", true, 1, STREAM_NAME_MAX, &out->stream, err, errlen) ||
        get_time(body, "started_at", true, &out->started_at, err, errlen) ||
        get_time(body, "ended_at", false, &out->ended_at, err, errlen) == -1 ||
        get_count(body, "duration_ms", INT64_MAX, &out->duration_ms, err, errlen) == -1 ||
        get_count(body, "bytes", INT64_MAX, &out->bytes, err, errlen) == -1 ||
        get_count(body, "segments", SEGMENTS_MAX, &out->segments, err, errlen) == -1 ||
        get_str(body, "holder_url", true, 1, HOLDER_URL_MAX, &out->holder_url, err, errlen))
        return -1;
    if (!stream_name_valid(out->stream))
        return fail(err, errlen, "stream: must be 1 to %d of A-Z a-z 0-9 _ -",
                    STREAM_NAME_MAX);
    if (origin_url_normalize(out->holder_url, strlen(out->holder_url), out->holder,
                             sizeof(out->holder)) == -1)
        return fail(err, errlen, "holder_url: must be http://host[:port]");
    out->holder_url = out->holder;   /* without a trailing '/' */
    return 0;
}
