/* libFuzzer harness for where a viewer looks for its stream: the stream
 * record (sluice:stream:<name>) or stream.start event that
 * stream_location_parse reads, and authtable_revokes between the entries of
 * two tables (the input split at the first NUL: a table before, the one that
 * replaced it after). A location that parses must be printable and hold a
 * port; revokes must answer for every pair without a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/ingest/authtable.h"
#include "../../../../services/ingest/relays.h"
#include "sluice/json.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static struct authtable *load(const uint8_t *data, size_t len)
{
    char err[128];
    size_t skipped;
    struct authtable *t = NULL;
    json_t *doc = json_parse(data, len, err, sizeof(err));
    if (doc != NULL) {
        t = authtable_from_json(doc, &skipped, err, sizeof(err));
        json_decref(doc);
    }
    return t;
}

static void locate(const uint8_t *data, size_t len)
{
    char err[128];
    struct relay_choice c;
    json_t *o = json_parse(data, len, err, sizeof(err));
    if (o != NULL && stream_location_parse(o, &c) == 0) {
        check(c.id[0] != '\0' && strlen(c.addr) >= 3 && strchr(c.addr, ':') != NULL);
        for (const char *p = c.addr; *p; p++)
            check(*p > 0x20 && *p < 0x7f);
    }
    json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { "cam1", "a", "x", "0" };
    const uint8_t *nul = memchr(data, 0, size);
    size_t first = nul ? (size_t)(nul - data) : size;
    locate(data, first);
    if (nul == NULL)
        return 0;
    locate(nul + 1, size - first - 1);
    struct authtable *then = load(data, first), *now = load(nul + 1, size - first - 1);
    for (size_t i = 0; then != NULL && i < 4; i++) {
        const struct auth_entry *e = authtable_find(then, names[i]);
        if (e != NULL) {
            const char *why = authtable_revokes(e, authtable_find(now, names[i]));
            check(why == NULL || why[0] != '\0');
            check(authtable_revokes(e, e) == NULL || e->deleted || e->disabled);
        }
    }
    authtable_unref(then);
    authtable_unref(now);
    return 0;
}
