/* slpcat's SLP connection: see link.h. */
#include "link.h"

#include <stdio.h>
#include <stdlib.h>

#include "slpcat.h"
#include "sluice/log.h"
#include "sluice/slpclient.h"

#define LOW_WATER (256 * 1024)   /* writable() when the output drops to this */

struct link {
    struct slpcat *s;
    const struct link_handler *h;
    void *arg;
    struct slpclient *client;
    uint8_t request;             /* the SLP frame type we asked with */
    bool accepted;
    bool ending;                 /* link_end() was called */
    int code;                    /* what link_end() asked to report */
};

static void on_accepted(void *arg)
{
    struct link *l = arg;
    l->accepted = true;
    log_info("relay accepted %s", slp_type_name(l->request));
    l->h->accepted(l->arg);
}

static void on_frame(void *arg, const struct slp_frame *f)
{
    struct link *l = arg;
    l->h->frame(f, l->arg);
}

static void on_writable(void *arg)
{
    struct link *l = arg;
    l->h->writable(l->arg);
}

/* Says why the relay refused or ended the session, in its own words. */
static void say_refused(const struct link *l, unsigned code, const char *text)
{
    char num[16];
    const char *name = slp_error_name(code);
    if (name == NULL) {
        snprintf(num, sizeof(num), "error %u", code);
        name = num;
    }
    if (l->accepted)
        slpcat_say("relay ended the session: %s: %s", name, text);
    else
        slpcat_say("relay refused %s: %s: %s", slp_type_name(l->request), name, text);
}

static void on_closed(void *arg, enum slpclient_end end, unsigned code, const char *text)
{
    struct link *l = arg;
    int exit_code = l->code;
    switch (end) {
    case SLPCLIENT_FINISHED:
        break;
    case SLPCLIENT_REFUSED:
        say_refused(l, code, text);
        exit_code = SLPCAT_EXIT_REFUSED;
        break;
    case SLPCLIENT_PROTOCOL:
        slpcat_say("%s", text);
        exit_code = SLPCAT_EXIT_PROTOCOL;
        break;
    case SLPCLIENT_FAILED:
    case SLPCLIENT_LOST:
        slpcat_say("%s", text);
        exit_code = SLPCAT_EXIT_NETWORK;
        break;
    }
    l->h->closed(exit_code, l->arg);
}

struct link *link_start(struct slpcat *s, const struct slp_frame *request,
                        const struct link_handler *h, void *arg)
{
    static const struct slpclient_handler client_handler = {
        on_accepted, on_frame, on_writable, on_closed };
    static const struct slpclient_handler subscriber_handler = {
        on_accepted, on_frame, NULL, on_closed };
    struct link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    *l = (struct link){ .s = s, .h = h, .arg = arg, .request = request->type };
    struct slpclient_options o = {
        .node = s->node, .agent = "slpcat/1",
        .connect_timeout_ms = (int)s->cfg.connect_timeout_ms,
        .idle_timeout_ms = (int)s->cfg.idle_timeout_ms,
        .drain_ms = (int)s->cfg.idle_timeout_ms, .low_water = LOW_WATER };
    l->client = slpclient_start(s->base, s->dns, s->cfg.relay, request, &o,
                                h->writable ? &client_handler : &subscriber_handler, l);
    if (l->client == NULL) {
        slpcat_say("cannot start %s to relay %s (check --relay, --stream, --node-id, "
                   "--publisher-id)", slp_type_name(request->type), s->cfg.relay);
        free(l);
        return NULL;
    }
    return l;
}

bool link_open(const struct link *l)
{
    return slpclient_open(l->client);
}

size_t link_pending(const struct link *l)
{
    return slpclient_pending(l->client);
}

int link_send_media(struct link *l, const uint8_t hdr[SLP_MEDIA_HEADER_LEN],
                    const uint8_t *ts, size_t len)
{
    return slpclient_send_media(l->client, hdr, ts, len);
}

void link_end(struct link *l, const struct slp_frame *last, int code)
{
    if (!l->ending) {             /* the first end says how it went */
        l->ending = true;
        l->code = code;
    }
    slpclient_end(l->client, last);
}

void link_free(struct link *l)
{
    if (l == NULL)
        return;
    slpclient_free(l->client);
    free(l);
}
