/* The packaging state: see pstate.h. */
#include "pstate.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "playlist.h"
#include "sluice/clock.h"
#include "sluice/json.h"
#include "sluice/slp-t.h"

#define WALL_MAX_US INT64_C(253402300799999999)   /* year 9999 */

/* Reads an integer field within [min, max]. Returns 1 when absent, 0 when
 * read, -1 (with <why>) when of the wrong type or out of range. */
static int get_int(const json_t *v, const char *key, int64_t min, int64_t max, int64_t *out,
                   char *why, size_t whylen)
{
    int64_t x;
    int rc = json_get_int(v, key, &x);
    if (rc == 1)
        return 1;
    if (rc == -1 || x < min || x > max) {
        snprintf(why, whylen, "\"%s\" is not an integer in [%lld, %lld]", key, (long long)min,
                 (long long)max);
        return -1;
    }
    *out = x;
    return 0;
}

/* The fields that describe the last segment: all or none. */
static int parse_segment(const json_t *v, struct pstate *out, char *why, size_t whylen)
{
    int64_t seq, dseq, target, pdt, dur, pts = -1, wall = 0;
    int rc = get_int(v, "media_sequence", 0, (int64_t)PSTATE_SEQ_MAX, &seq, why, whylen);
    if (rc != 0)
        return rc == 1 ? 0 : -1;
    if (get_int(v, "discontinuity_sequence", 0, (int64_t)PSTATE_SEQ_MAX, &dseq, why, whylen) ||
        get_int(v, "target_duration", 1, PL_TARGET_MAX, &target, why, whylen) ||
        get_int(v, "last_pdt_us", 0, WALL_MAX_US, &pdt, why, whylen) ||
        get_int(v, "last_duration_us", 0, (int64_t)PL_TARGET_MAX * 2000000, &dur, why, whylen)) {
        if (why[0] == '\0')
            snprintf(why, whylen, "media_sequence without the fields that go with it");
        return -1;
    }
    if (get_int(v, "end_pts", -1, SLP_PTS_MAX, &pts, why, whylen) == -1 ||
        get_int(v, "end_wall_us", 0, WALL_MAX_US, &wall, why, whylen) == -1)
        return -1;
    out->has_segment = true;
    out->media_sequence = (uint64_t)seq;
    out->discontinuity_sequence = (uint64_t)dseq;
    out->target_duration = (unsigned)target;
    out->last_pdt_us = pdt;
    out->last_duration_us = dur;
    out->end_pts = pts;
    out->end_wall_us = wall;
    return 0;
}

static int parse_object(const json_t *v, struct pstate *out, char *why, size_t whylen)
{
    int64_t epoch;
    const char *owner = NULL;
    if (!json_is_object(v)) {
        snprintf(why, whylen, "not a JSON object");
        return -1;
    }
    int rc = get_int(v, "epoch", 1, (int64_t)PSTATE_EPOCH_MAX, &epoch, why, whylen);
    if (rc != 0) {
        if (rc == 1)
            snprintf(why, whylen, "no \"epoch\"");
        return -1;
    }
    out->epoch = (uint64_t)epoch;
    if (parse_segment(v, out, why, whylen) == -1)
        return -1;
    if (json_get_bool(v, "ended", &out->ended) == -1) {
        snprintf(why, whylen, "\"ended\" is not a boolean");
        return -1;
    }
    if (json_get_str(v, "owner", &owner) == -1 ||
        (owner != NULL && strlen(owner) > PSTATE_OWNER_MAX)) {
        snprintf(why, whylen, "\"owner\" is not a string of at most %d bytes", PSTATE_OWNER_MAX);
        return -1;
    }
    snprintf(out->owner, sizeof(out->owner), "%s", owner ? owner : "");
    return 0;
}

int pstate_parse(const char *buf, size_t len, struct pstate *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    out->end_pts = -1;
    if (whylen > 0)
        why[0] = '\0';
    if (len > PSTATE_MAX_LEN) {
        snprintf(why, whylen, "longer than %d bytes", PSTATE_MAX_LEN);
        return -1;
    }
    char err[120];
    json_t *v = json_parse(buf, len, err, sizeof(err));
    if (v == NULL) {
        snprintf(why, whylen, "malformed JSON: %s", err);
        return -1;
    }
    int rc = parse_object(v, out, why, whylen);
    json_decref(v);
    if (rc == -1) {               /* nothing half-filled */
        memset(out, 0, sizeof(*out));
        out->end_pts = -1;
    }
    return rc;
}

static bool in_range(const struct pstate *st)
{
    if (st->epoch < 1 || st->epoch > PSTATE_EPOCH_MAX || strlen(st->owner) > PSTATE_OWNER_MAX)
        return false;
    if (!st->has_segment)
        return true;
    return st->media_sequence <= PSTATE_SEQ_MAX && st->discontinuity_sequence <= PSTATE_SEQ_MAX &&
           st->target_duration >= 1 && st->target_duration <= PL_TARGET_MAX &&
           st->last_pdt_us >= 0 && st->last_pdt_us <= WALL_MAX_US &&
           st->last_duration_us >= 0 && st->last_duration_us <= PL_TARGET_MAX * INT64_C(2000000) &&
           st->end_pts >= -1 && st->end_pts <= SLP_PTS_MAX &&
           st->end_wall_us >= 0 && st->end_wall_us <= WALL_MAX_US;
}

char *pstate_format(const struct pstate *st, int64_t now_us)
{
    if (!in_range(st))
        return NULL;
    char at[32];
    clock_rfc3339(at, sizeof(at), now_us);
    json_t *v = json_pack("{s:I, s:b, s:s, s:s}", "epoch", (json_int_t)st->epoch, "ended",
                          st->ended, "owner", st->owner, "updated_at", at);
    if (v != NULL && st->has_segment) {
        json_t *seg = json_pack("{s:I, s:I, s:i, s:I, s:I, s:I, s:I}",
                                "media_sequence", (json_int_t)st->media_sequence,
                                "discontinuity_sequence", (json_int_t)st->discontinuity_sequence,
                                "target_duration", (int)st->target_duration,
                                "last_pdt_us", (json_int_t)st->last_pdt_us,
                                "last_duration_us", (json_int_t)st->last_duration_us,
                                "end_pts", (json_int_t)st->end_pts,
                                "end_wall_us", (json_int_t)st->end_wall_us);
        if (seg == NULL || json_object_update(v, seg) == -1) {
            json_decref(v);
            v = NULL;
        }
        json_decref(seg);
    }
    char *out = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    return out;
}
