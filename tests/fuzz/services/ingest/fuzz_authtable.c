/* libFuzzer harness for what ingest parses from the api and Redis: the
 * authtable body, sluice:events messages, and relay records. The input is
 * split at the first NUL: the part before is loaded as an authtable, the part
 * after applied as an event to it (and to no table), then merged back as if a
 * reload came; whatever comes out must answer lookups and decisions without a
 * crash, and keep its counts straight. */
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

static void probe(const struct authtable *t)
{
    static const char *const names[] = { "cam1", "a", "x", "0" };
    struct streamid sid = { .mode = STREAMID_PUBLISH };
    struct auth_decision d;
    memcpy(sid.cred, "sk_0123456789abcdefgh", 22);
    for (size_t i = 0; i < 4; i++) {
        memcpy(sid.stream, names[i], strlen(names[i]) + 1);
        int code = authtable_decide(t, &sid, &d);
        check(code == d.code && d.why != NULL);
        const struct auth_entry *e = authtable_find(t, names[i]);
        check(e == NULL || strcmp(e->name, names[i]) == 0);
    }
    check(authtable_size(t) <= 100000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t first = nul ? (size_t)(nul - data) : size;
    char err[128];
    size_t skipped;
    struct authtable *t = NULL;
    json_t *doc = json_parse(data, first, err, sizeof(err));
    if (doc != NULL) {
        t = authtable_from_json(doc, &skipped, err, sizeof(err));
        json_decref(doc);
    }
    probe(t);
    if (nul != NULL) {
        json_t *ev = json_parse(nul + 1, size - first - 1, err, sizeof(err));
        if (ev != NULL) {
            struct authtable *out = NULL;
            struct auth_event info;
            if (authtable_apply_event(t, ev, &out, &info) == AE_APPLIED) {
                check(out != NULL && authtable_max_version(out) >= info.version);
                probe(out);
                if (t != NULL) {
                    struct authtable *m = authtable_merge(authtable_ref(t), out);
                    probe(m);
                    authtable_unref(m);
                }
                authtable_unref(out);
            }
            struct authtable *none = NULL;
            if (authtable_apply_event(NULL, ev, &none, &info) == AE_APPLIED)
                authtable_unref(none);
            json_decref(ev);
        }
    }
    authtable_unref(t);
    struct relay_choice rc;
    int64_t streams;
    if (relay_record_parse((const char *)data, first, &rc, &streams) == 0)
        check(streams >= 0 && strlen(rc.addr) > 0 && strlen(rc.id) > 0);
    return 0;
}
