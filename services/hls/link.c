/* One SLP subscription to a relay: see link.h. */
#include "link.h"

#include <stdio.h>
#include <stdlib.h>

#include "sluice/log.h"
#include "sluice/slpclient.h"

#define AGENT "sluice-hls/0.1"
#define DRAIN_MS 1000           /* closing: how long our last frames may take */

struct link {
    struct slpclient *client;
    const struct link_handler *h;
    void *arg;
    bool over;                  /* the owner was told it ended, or closed it */
    char relay[300];
    struct link *prev, *next;   /* every link alive, for link_read_all() */
};

static struct link *all_links;

static const char *const end_names[] = {
    "eos", "refused", "network", "protocol",
};

const char *link_end_name(enum link_end why)
{
    return (unsigned)why < sizeof(end_names) / sizeof(end_names[0]) ? end_names[why] : "?";
}

static void link_free(struct link *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        all_links = l->next;
    if (l->next)
        l->next->prev = l->prev;
    slpclient_free(l->client);
    free(l);
}

void link_free_all(void)
{
    while (all_links != NULL)
        link_free(all_links);
}

/* The link ends by itself: tell the owner (who forgets it), close quietly. */
static void end(struct link *l, enum link_end why, const char *detail)
{
    if (l->over)
        return;
    l->over = true;
    l->h->ended(why, detail, l->arg);
    slpclient_end(l->client, NULL);
}

static void on_eos(struct link *l, const struct slp_frame *f)
{
    char text[4 * SLP_TEXT_MAX + 8], detail[sizeof(text) + 48];
    const char *name = slp_eos_name(f->eos.reason);
    log_escape(text, sizeof(text), f->eos.text.p, f->eos.text.len);
    snprintf(detail, sizeof(detail), "%s%s%s", name ? name : "(unknown reason)",
             text[0] ? ": " : "", text);
    end(l, LINK_END_EOS, detail);
}

static void on_frame(void *arg, const struct slp_frame *f)
{
    struct link *l = arg;
    if (l->over)
        return;
    if (f->type == SLP_MEDIA)
        l->h->media(f, l->arg);
    else if (f->type == SLP_PUBLISH)
        l->h->publish(&f->publish, l->arg);
    else if (f->type == SLP_EOS)
        on_eos(l, f);
}

static void on_accepted(void *arg)
{
    struct link *l = arg;
    if (!l->over)
        l->h->accepted(l->arg);
}

static void on_closed(void *arg, enum slpclient_end end, unsigned code, const char *text)
{
    struct link *l = arg;
    char detail[4 * SLP_TEXT_MAX + 64];
    const char *name = slp_error_name(code);
    enum link_end why = LINK_END_NETWORK;
    switch (end) {
    case SLPCLIENT_FINISHED:
        break;                          /* we ended it: the owner knows */
    case SLPCLIENT_REFUSED:
        why = LINK_END_REFUSED;
        if (name)
            snprintf(detail, sizeof(detail), "%s: %s", name, text);
        else
            snprintf(detail, sizeof(detail), "error %u: %s", code, text);
        text = detail;
        break;
    case SLPCLIENT_PROTOCOL:
        why = LINK_END_PROTOCOL;
        break;
    case SLPCLIENT_FAILED:
    case SLPCLIENT_LOST:
        break;
    }
    if (!l->over) {
        l->over = true;
        l->h->ended(why, text, l->arg);
    }
    link_free(l);
}

static const struct slpclient_handler client_handler = {
    on_accepted, on_frame, NULL, on_closed };

struct link *link_open(struct event_base *base, struct evdns_base *dns,
                       const struct link_options *o, const struct link_handler *h, void *arg)
{
    struct link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->h = h;
    l->arg = arg;
    snprintf(l->relay, sizeof(l->relay), "%s", o->relay);
    struct slp_frame sub = { .type = SLP_SUBSCRIBE, .subscribe = {
        slp_cstr(o->stream), SLP_START_KEYFRAME, o->wait_ms } };
    struct slpclient_options co = {
        .node = o->node, .agent = AGENT, .connect_timeout_ms = (int)o->connect_timeout_ms,
        .idle_timeout_ms = (int)o->idle_timeout_ms, .drain_ms = DRAIN_MS, .polled = true };
    l->client = slpclient_start(base, dns, o->relay, &sub, &co, &client_handler, l);
    if (l->client == NULL) {
        log_warn("stream %s: cannot subscribe at relay %s", o->stream, o->relay);
        free(l);
        return NULL;
    }
    l->next = all_links;
    if (all_links)
        all_links->prev = l;
    all_links = l;
    return l;
}

void link_close(struct link *l)
{
    l->over = true;
    slpclient_end(l->client, NULL);
}

bool link_accepted(const struct link *l)
{
    return !l->over && slpclient_open(l->client);
}

const char *link_relay(const struct link *l)
{
    return l->relay;
}

void link_read_all(void)
{
    for (struct link *l = all_links; l != NULL; l = l->next)
        slpclient_read(l->client);
}
