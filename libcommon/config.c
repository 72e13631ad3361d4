/* Configuration from declarative tables: see config.h. */
#include "sluice/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_FILE_MAX 4096

static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(*err);
    if (vasprintf(err, fmt, ap) == -1)
        *err = NULL;
    va_end(ap);
}

int config_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Parses "<integer><unit>" where <units> maps suffixes to multipliers. */
static int parse_scaled(const char *s, const char *const *suffix, const int64_t *mult,
                        int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0)
        return -1;
    for (size_t i = 0; suffix[i] != NULL; i++) {
        if (strcmp(end, suffix[i]) != 0)
            continue;
        if (v > INT64_MAX / mult[i])
            return -1;
        v *= mult[i];
        if (v < min || v > max)
            return -1;
        *out = v;
        return 0;
    }
    return -1;
}

int config_parse_ms(const char *s, int64_t min, int64_t max, int64_t *out)
{
    static const char *const sfx[] = { "", "ms", "s", "m", "h", NULL };
    static const int64_t mult[] = { 1, 1, 1000, 60000, 3600000 };
    return parse_scaled(s, sfx, mult, min, max, out);
}

int config_parse_bytes(const char *s, int64_t min, int64_t max, int64_t *out)
{
    static const char *const sfx[] = { "", "k", "K", "M", "G", NULL };
    static const int64_t mult[] = { 1, 1024, 1024, 1048576, 1073741824 };
    return parse_scaled(s, sfx, mult, min, max, out);
}

int config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "1", "true", "yes", "on", NULL };
    static const char *const no[] = { "0", "false", "no", "off", NULL };
    for (size_t i = 0; yes[i]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* "redis-url" -> "SLUICE_REDIS_URL" (+ <suffix>). */
static void env_name(char *dst, size_t len, const char *name, const char *suffix)
{
    size_t o = (size_t)snprintf(dst, len, "SLUICE_");
    for (const char *p = name; *p && o + 1 < len; p++)
        dst[o++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    dst[o] = '\0';
    snprintf(dst + o, len - o, "%s", suffix);
}

static const char *type_hint(enum config_type t)
{
    switch (t) {
    case CONF_INT: return "integer";
    case CONF_MS: return "duration (250ms, 2s, 1m)";
    case CONF_BYTES: return "size (512, 64k, 16M)";
    case CONF_BOOL: return "boolean";
    default: return "string";
    }
}

/* Stores <val> into the field of <o> in <base>. */
static int set_value(const struct config_opt *o, void *base, const char *val,
                     const char *source, char **err)
{
    void *field = (char *)base + o->offset;
    int rc = 0;
    switch (o->type) {
    case CONF_STR:
    case CONF_SECRET:
        if ((int64_t)strlen(val) < o->min) {
            set_err(err, "%s: %s must not be empty", source, o->name);
            return -1;
        }
        free(*(char **)field);
        *(char **)field = strdup(val);
        return *(char **)field ? 0 : -1;
    case CONF_INT:
        rc = config_parse_int(val, o->min, o->max, field);
        break;
    case CONF_MS:
        rc = config_parse_ms(val, o->min, o->max, field);
        break;
    case CONF_BYTES:
        rc = config_parse_bytes(val, o->min, o->max, field);
        break;
    case CONF_BOOL:
        rc = config_parse_bool(val, field);
        break;
    }
    if (rc == -1) {
        if (o->type == CONF_BOOL)
            set_err(err, "%s: %s: \"%s\" is not a boolean", source, o->name, val);
        else
            set_err(err, "%s: %s: \"%s\" is not a %s in [%" PRId64 ", %" PRId64 "]",
                    source, o->name, val, type_hint(o->type), o->min, o->max);
    }
    return rc;
}

/* Reads a secret file: the whole file, one trailing newline stripped. */
static int read_secret(const struct config_opt *o, void *base, const char *path,
                       const char *source, char **err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        set_err(err, "%s: %s: cannot open %s: %s", source, o->name, path, strerror(errno));
        return -1;
    }
    char buf[SECRET_FILE_MAX + 1];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (n > SECRET_FILE_MAX) {
        set_err(err, "%s: %s: %s is larger than %d bytes", source, o->name, path,
                SECRET_FILE_MAX);
        return -1;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        set_err(err, "%s: %s: %s contains a NUL byte", source, o->name, path);
        return -1;
    }
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return set_value(o, base, buf, source, err);
}

static int load_defaults(const struct config_table *t, char **err)
{
    for (const struct config_opt *o = t->opts; o->name; o++) {
        if (o->def != NULL && set_value(o, t->base, o->def, "default", err) == -1)
            return -1;
    }
    return 0;
}

static int load_env(const struct config_table *t, char **err)
{
    for (const struct config_opt *o = t->opts; o->name; o++) {
        char var[128];
        env_name(var, sizeof(var), o->name, "");
        const char *v = getenv(var);
        if (v != NULL && set_value(o, t->base, v, var, err) == -1)
            return -1;
        if (o->type != CONF_SECRET)
            continue;
        env_name(var, sizeof(var), o->name, "_FILE");
        v = getenv(var);
        if (v != NULL && read_secret(o, t->base, v, var, err) == -1)
            return -1;
    }
    return 0;
}

/* Finds the option for "--<arg>" (without the dashes, up to <len>); sets
 * *<file> when it is the "-file" form of a secret. */
static const struct config_opt *find_opt(const struct config_table *tables, size_t n,
                                         const char *arg, size_t len, void **base,
                                         bool *file)
{
    for (size_t i = 0; i < n; i++) {
        for (const struct config_opt *o = tables[i].opts; o->name; o++) {
            size_t nl = strlen(o->name);
            *base = tables[i].base;
            *file = false;
            if (nl == len && strncmp(arg, o->name, len) == 0)
                return o;
            if (o->type == CONF_SECRET && len == nl + 5 &&
                strncmp(arg, o->name, nl) == 0 && strncmp(arg + nl, "-file", 5) == 0) {
                *file = true;
                return o;
            }
        }
    }
    return NULL;
}

static void print_help(const struct config_table *tables, size_t n, const char *prog)
{
    printf("Usage: %s [--option=value ...]\n\n"
           "Every option can also be set in the environment as SLUICE_<OPTION>\n"
           "(upper case, '-' as '_'); a flag overrides the environment. Secrets\n"
           "also accept SLUICE_<OPTION>_FILE or --<option>-file.\n\n", prog);
    for (size_t i = 0; i < n; i++) {
        for (const struct config_opt *o = tables[i].opts; o->name; o++) {
            char var[128];
            env_name(var, sizeof(var), o->name, "");
            printf("  --%-24s %s\n", o->name, o->help ? o->help : "");
            printf("    %-24s %s", var, type_hint(o->type));
            if (o->type == CONF_SECRET)
                printf(", secret (also %s_FILE)", var);
            else if (o->def != NULL)
                printf(", default \"%s\"", o->def);
            printf("\n");
        }
    }
}

static int load_args(const struct config_table *tables, size_t n, int argc,
                     char **argv, char **err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            set_err(err, "unexpected argument \"%s\" (see --help)", a);
            return -1;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        void *base;
        bool file;
        const struct config_opt *o = find_opt(tables, n, a, len, &base, &file);
        if (o == NULL) {
            set_err(err, "unknown option --%.*s (see --help)", (int)len, a);
            return -1;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (val == NULL && o->type == CONF_BOOL)
            val = "true";
        if (val == NULL && i + 1 < argc)
            val = argv[++i];
        if (val == NULL) {
            set_err(err, "option --%s needs a value", o->name);
            return -1;
        }
        int rc = file ? read_secret(o, base, val, "command line", err)
                      : set_value(o, base, val, "command line", err);
        if (rc == -1)
            return -1;
    }
    return 0;
}

enum config_result config_load(const struct config_table *tables, size_t ntables,
                               const char *prog, int argc, char **argv, char **err)
{
    *err = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(tables, ntables, prog);
            return CONFIG_EXIT;
        }
    }
    for (size_t i = 0; i < ntables; i++) {
        if (load_defaults(&tables[i], err) == -1 || load_env(&tables[i], err) == -1)
            goto fail;
    }
    if (load_args(tables, ntables, argc, argv, err) == -1)
        goto fail;
    return CONFIG_OK;
fail:
    if (*err == NULL)
        *err = strdup("out of memory");
    return CONFIG_ERROR;
}

void config_free(const struct config_table *tables, size_t ntables)
{
    for (size_t i = 0; i < ntables; i++) {
        for (const struct config_opt *o = tables[i].opts; o->name; o++) {
            if (o->type != CONF_STR && o->type != CONF_SECRET)
                continue;
            char **field = (char **)((char *)tables[i].base + o->offset);
            free(*field);
            *field = NULL;
        }
    }
}
