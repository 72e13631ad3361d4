/* Configuration from one declarative table per daemon.
 *
 * Each option "some-name" is read, in increasing priority, from its default,
 * the environment (SLUICE_SOME_NAME), and the command line (--some-name=V or
 * --some-name V). A secret may instead be read from a file named by
 * SLUICE_SOME_NAME_FILE or --some-name-file (Docker secrets); one trailing
 * newline is stripped. Numbers are parsed with checked conversions and bounds.
 * --help prints every option with its variable, default and help text.
 *
 *   struct relay_config { char *listen; int64_t heartbeat_ms; ... };
 *   static const struct config_opt relay_opts[] = {
 *       { "listen", CONF_STR, offsetof(struct relay_config, listen),
 *         .def = "0.0.0.0:7700", .help = "SLP listen address" },
 *       { "heartbeat", CONF_MS, offsetof(struct relay_config, heartbeat_ms),
 *         .def = "2s", .min = 100, .max = 60000, .help = "..." },
 *       { 0 }
 *   };
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum config_type {
    CONF_STR,     /* char *, malloc'd; "" allowed unless min > 0 (min length) */
    CONF_SECRET,  /* char *, as CONF_STR, also from *_FILE; never printed */
    CONF_INT,     /* int64_t, within [min, max] */
    CONF_MS,      /* int64_t milliseconds; "250ms", "2s", "1m", "1h" or plain ms */
    CONF_BYTES,   /* int64_t bytes; "512", "64k", "16M", "1G" (powers of 1024) */
    CONF_BOOL,    /* bool; true/false, yes/no, on/off, 1/0; a bare --flag is true */
};

struct config_opt {
    const char *name;      /* lower-case words joined by '-' */
    enum config_type type;
    size_t offset;         /* of the field in the daemon's config struct */
    const char *def;       /* default, parsed like user input; NULL = unset */
    int64_t min, max;      /* bounds for numbers; min length for strings */
    const char *help;
};

/* One table and the struct its offsets point into. */
struct config_table {
    const struct config_opt *opts;   /* ends with an entry whose name is NULL */
    void *base;
};

enum config_result { CONFIG_OK = 0, CONFIG_EXIT = 1, CONFIG_ERROR = -1 };

/* Fills every table from defaults, environment and <argv>. Returns CONFIG_OK;
 * CONFIG_EXIT after printing --help to stdout; or CONFIG_ERROR with a message
 * naming the option and its source in *<err> (malloc'd, the caller frees).
 * Strings already in the structs are freed and replaced. */
enum config_result config_load(const struct config_table *tables, size_t ntables,
                               const char *prog, int argc, char **argv, char **err);

/* Frees the strings config_load allocated and sets them to NULL. */
void config_free(const struct config_table *tables, size_t ntables);

/* Checked conversions used by config_load, exposed for other parsers. Each
 * returns 0, or -1 if <s> is empty, malformed or outside [min, max]. */
int config_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);
int config_parse_ms(const char *s, int64_t min, int64_t max, int64_t *out);
int config_parse_bytes(const char *s, int64_t min, int64_t max, int64_t *out);
int config_parse_bool(const char *s, bool *out);

#endif
