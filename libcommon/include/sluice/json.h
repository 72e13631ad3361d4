/* JSON helpers over jansson (which libjwt already uses). Parsing of anything a
 * peer sends goes through json_parse(), which refuses duplicate keys, NUL bytes
 * in strings, and nesting deeper than a bound. */
#ifndef SLUICE_JSON_H
#define SLUICE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct evbuffer;

/* Parses <len> bytes as one JSON value. Returns it (the caller owns the
 * reference), or NULL with a short, printable reason in <err> (<errlen> bytes). */
json_t *json_parse(const void *buf, size_t len, char *err, size_t errlen);

/* Parses the whole of <buf> without draining it. As json_parse(). */
json_t *json_parse_evbuffer(struct evbuffer *buf, char *err, size_t errlen);

/* Appends the compact encoding of <v> to <out>. Returns 0 or -1. */
int json_to_evbuffer(const json_t *v, struct evbuffer *out);

/* Field readers for objects that came from a peer. Each returns 0 and sets
 * *<out> when <key> holds the right type; 1 when the key is absent or null
 * (*<out> untouched); -1 when it holds another type. */
int json_get_str(const json_t *obj, const char *key, const char **out);
int json_get_int(const json_t *obj, const char *key, int64_t *out);
int json_get_bool(const json_t *obj, const char *key, bool *out);

/* True if every key of the object <obj> is one of the NULL-terminated <allowed>;
 * otherwise false with the first unknown key in *<bad>. */
bool json_keys_only(const json_t *obj, const char *const *allowed, const char **bad);

#endif
