/* Request bodies: see requests.h. */
#include "requests.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "password.h"
#include "sluice/json.h"
#include "sluice/names.h"

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
