/* Metrics registry and Prometheus exposition: see metrics.h. */
#include "sluice/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "sluice/log.h"

#define MAX_COLLECT_HOOKS 8

const double metrics_default_buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
const size_t metrics_default_nbuckets =
    sizeof(metrics_default_buckets) / sizeof(metrics_default_buckets[0]);

struct metric_series {
    struct metric *family;
    struct metric_series *prev, *next;
    char *values[METRIC_MAX_LABELS];
    double value;          /* counter or gauge; a histogram's sum */
    uint64_t count;        /* histogram: observations */
    uint64_t *bucket;      /* histogram: observations per bucket (not cumulative) */
};

struct metric {
    const struct metric_def *def;
    size_t nlabels;
    const double *bounds;
    size_t nbounds;
    struct metric_series *head;
};

struct metrics {
    struct metric **fam;
    size_t nfam;
    struct {
        void (*fn)(void *);
        void *arg;
    } hook[MAX_COLLECT_HOOKS];
    size_t nhooks;
};

struct metrics *metrics_new(void)
{
    return calloc(1, sizeof(struct metrics));
}

static void series_free(struct metric_series *s)
{
    for (size_t i = 0; i < METRIC_MAX_LABELS; i++)
        free(s->values[i]);
    free(s->bucket);
    free(s);
}

void metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nfam; i++) {
        struct metric_series *s = m->fam[i]->head, *next;
        for (; s; s = next) {
            next = s->next;
            series_free(s);
        }
        free(m->fam[i]);
    }
    free(m->fam);
    free(m);
}

static struct metric *find_family(const struct metrics *m, const char *name)
{
    for (size_t i = 0; i < m->nfam; i++) {
        if (strcmp(m->fam[i]->def->name, name) == 0)
            return m->fam[i];
    }
    return NULL;
}

int metrics_register(struct metrics *m, const struct metric_def *defs, struct metric **out)
{
    for (size_t k = 0; defs[k].name != NULL; k++) {
        const struct metric_def *d = &defs[k];
        struct metric *known = find_family(m, d->name);
        if (known != NULL && known->def == d) {
            /* the same table again (two HTTP servers in one daemon) */
            if (out)
                out[k] = known;
            continue;
        }
        if (known != NULL) {
            log_error("metrics: %s registered twice", d->name);
            return -1;
        }
        struct metric **grown = realloc(m->fam, (m->nfam + 1) * sizeof(*grown));
        if (grown == NULL)
            return -1;
        m->fam = grown;
        struct metric *f = calloc(1, sizeof(*f));
        if (f == NULL)
            return -1;
        f->def = d;
        while (f->nlabels < METRIC_MAX_LABELS && d->labels[f->nlabels])
            f->nlabels++;
        f->bounds = d->buckets ? d->buckets : metrics_default_buckets;
        f->nbounds = d->buckets ? d->nbuckets : metrics_default_nbuckets;
        m->fam[m->nfam++] = f;
        if (out)
            out[k] = f;
    }
    return 0;
}

static bool labels_match(const struct metric_series *s, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s->values[i], v[i]) != 0)
            return false;
    }
    return true;
}

static struct metric_series *series_new(struct metric *f, const char *const *v)
{
    struct metric_series *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->family = f;
    for (size_t i = 0; i < f->nlabels; i++) {
        if ((s->values[i] = strdup(v[i] ? v[i] : "")) == NULL)
            goto fail;
    }
    if (f->def->type == METRIC_HISTOGRAM &&
        (s->bucket = calloc(f->nbounds, sizeof(*s->bucket))) == NULL)
        goto fail;
    s->next = f->head;
    if (f->head)
        f->head->prev = s;
    f->head = s;
    return s;
fail:
    series_free(s);
    return NULL;
}

struct metric_series *metric_at(struct metric *f, ...)
{
    const char *v[METRIC_MAX_LABELS] = { 0 };
    va_list ap;
    va_start(ap, f);
    for (size_t i = 0; i < f->nlabels; i++) {
        v[i] = va_arg(ap, const char *);
        if (v[i] == NULL)
            v[i] = "";
    }
    va_end(ap);
    for (struct metric_series *s = f->head; s; s = s->next) {
        if (labels_match(s, v, f->nlabels))
            return s;
    }
    return series_new(f, v);
}

void metric_remove(struct metric_series *s)
{
    if (s == NULL)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        s->family->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    series_free(s);
}

void metric_add(struct metric_series *s, double v)
{
    if (s)
        s->value += v;
}

void metric_set(struct metric_series *s, double v)
{
    if (s)
        s->value = v;
}

double metric_value(const struct metric_series *s)
{
    return s ? s->value : 0;
}

void metric_observe(struct metric_series *s, double v)
{
    if (s == NULL || s->bucket == NULL)
        return;
    const struct metric *f = s->family;
    size_t i = 0;
    while (i < f->nbounds && v > f->bounds[i])
        i++;
    if (i < f->nbounds)
        s->bucket[i]++;
    s->count++;
    s->value += v;
}

void metrics_on_collect(struct metrics *m, void (*fn)(void *), void *arg)
{
    if (m->nhooks == MAX_COLLECT_HOOKS) {
        log_error("metrics: too many collect hooks");
        return;
    }
    m->hook[m->nhooks].fn = fn;
    m->hook[m->nhooks].arg = arg;
    m->nhooks++;
}

static void put_number(struct evbuffer *out, double v)
{
    if (isnan(v))
        evbuffer_add_printf(out, "NaN");
    else if (isinf(v))
        evbuffer_add_printf(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(int64_t)v && fabs(v) < 1e15)
        evbuffer_add_printf(out, "%lld", (long long)v);
    else
        evbuffer_add_printf(out, "%.17g", v);
}

/* Label values escape backslash, double quote and newline. */
static void put_escaped(struct evbuffer *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            evbuffer_add_printf(out, "\\%c", *s);
        else if (*s == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, s, 1);
    }
}

/* Writes {a="x",b="y"[,le="<le>"]}, or nothing when there is nothing to write. */
static void put_labels(struct evbuffer *out, const struct metric_series *s, const char *le)
{
    const struct metric *f = s->family;
    if (f->nlabels == 0 && le == NULL)
        return;
    evbuffer_add(out, "{", 1);
    for (size_t i = 0; i < f->nlabels; i++) {
        evbuffer_add_printf(out, "%s%s=\"", i ? "," : "", f->def->labels[i]);
        put_escaped(out, s->values[i]);
        evbuffer_add(out, "\"", 1);
    }
    if (le)
        evbuffer_add_printf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    evbuffer_add(out, "}", 1);
}

static void put_sample(struct evbuffer *out, const char *name, const char *suffix,
                       const struct metric_series *s, const char *le, double v)
{
    evbuffer_add_printf(out, "%s%s", name, suffix);
    put_labels(out, s, le);
    evbuffer_add(out, " ", 1);
    put_number(out, v);
    evbuffer_add(out, "\n", 1);
}

static void put_histogram(struct evbuffer *out, const struct metric_series *s)
{
    const struct metric *f = s->family;
    const char *name = f->def->name;
    uint64_t cum = 0;
    for (size_t i = 0; i < f->nbounds; i++) {
        char le[32];
        snprintf(le, sizeof(le), "%g", f->bounds[i]);
        cum += s->bucket[i];
        put_sample(out, name, "_bucket", s, le, (double)cum);
    }
    put_sample(out, name, "_bucket", s, "+Inf", (double)s->count);
    put_sample(out, name, "_sum", s, NULL, s->value);
    put_sample(out, name, "_count", s, NULL, (double)s->count);
}

int metrics_render(struct metrics *m, struct evbuffer *out)
{
    static const char *const type_names[] = { "counter", "gauge", "histogram" };
    for (size_t i = 0; i < m->nhooks; i++)
        m->hook[i].fn(m->hook[i].arg);
    for (size_t i = 0; i < m->nfam; i++) {
        const struct metric *f = m->fam[i];
        const struct metric_def *d = f->def;
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", d->name,
                            d->help ? d->help : d->name, d->name, type_names[d->type]);
        for (const struct metric_series *s = f->head; s; s = s->next) {
            if (d->type == METRIC_HISTOGRAM)
                put_histogram(out, s);
            else
                put_sample(out, d->name, "", s, NULL, s->value);
        }
    }
    return 0;
}
