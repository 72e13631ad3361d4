/* slpcat subscribe: asks a relay for a stream and writes the TS of its MEDIA
 * frames, as they are, to stdout or --output. The first MEDIA frame is always
 * a KEYFRAME frame (SLP.md section 6), so the output is decodable from its
 * first byte. It ends at EOS (exit 0), after --frames MEDIA frames, or on an
 * error.
 *
 * Writes to the output block: a slow reader of our stdout slows our reads
 * from the relay, which is what a relay's per-subscriber queue is for. A
 * closed output (EPIPE, e.g. `| head -c`) ends the run quietly with 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "link.h"
#include "slpcat.h"
#include "sluice/log.h"
#include "sluice/slp.h"

struct subscriber {
    struct slpcat *s;
    struct link *link;
    int fd;
    uint64_t frames, keyframes, bytes;
};

/* Writes all of <p>; returns 0, 1 if the reader went away, -1 on error. */
static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w == -1 && errno == EPIPE) {
            return 1;
        } else if (!(w == -1 && errno == EINTR)) {
            return -1;
        }
    }
    return 0;
}

static void on_media(struct subscriber *sub, const struct slp_frame *f)
{
    if (f->flags & SLP_F_DISCONTINUITY)
        log_info("discontinuity at PTS %lld", (long long)f->media.pts);
    int rc = write_all(sub->fd, f->media.ts, f->media.ts_len);
    if (rc != 0) {
        if (rc == -1)
            slpcat_say("cannot write %s: %s", sub->s->cfg.output, strerror(errno));
        link_end(sub->link, NULL, rc == 1 ? SLPCAT_EXIT_OK : SLPCAT_EXIT_IO);
        return;
    }
    sub->frames++;
    sub->keyframes += (f->flags & SLP_F_KEYFRAME) != 0;
    sub->bytes += f->media.ts_len;
    if (sub->s->cfg.frames > 0 && sub->frames >= (uint64_t)sub->s->cfg.frames)
        link_end(sub->link, NULL, SLPCAT_EXIT_OK);
}

static void on_publish(const struct slp_frame *f)
{
    char pub[4 * SLP_ID_MAX + 8], node[4 * SLP_ID_MAX + 8], client[4 * SLP_CLIENT_MAX + 8];
    log_escape(pub, sizeof(pub), f->publish.publisher.p, f->publish.publisher.len);
    log_escape(node, sizeof(node), f->publish.node.p, f->publish.node.len);
    log_escape(client, sizeof(client), f->publish.client.p, f->publish.client.len);
    log_info("stream is live: publisher %s on %s via %.*s from %s", pub, node,
             (int)f->publish.protocol.len, f->publish.protocol.p, client[0] ? client : "-");
}

static void on_eos(struct subscriber *sub, const struct slp_frame *f)
{
    char text[4 * SLP_TEXT_MAX + 8];
    const char *reason = slp_eos_name(f->eos.reason);
    log_escape(text, sizeof(text), f->eos.text.p, f->eos.text.len);
    log_info("end of stream: %s%s%s", reason ? reason : "(unknown reason)",
             text[0] ? ": " : "", text);
    link_end(sub->link, NULL, SLPCAT_EXIT_OK);
}

static void on_frame(const struct slp_frame *f, void *arg)
{
    struct subscriber *sub = arg;
    if (f->type == SLP_MEDIA)
        on_media(sub, f);
    else if (f->type == SLP_PUBLISH)
        on_publish(f);
    else if (f->type == SLP_EOS)
        on_eos(sub, f);
}

static void on_accepted(void *arg)
{
    struct subscriber *sub = arg;
    log_info("subscribed to %s, waiting for media", sub->s->cfg.stream);
}

static void on_closed(int code, void *arg)
{
    struct subscriber *sub = arg;
    log_info("wrote %llu frames (%llu keyframes), %llu bytes of TS",
             (unsigned long long)sub->frames, (unsigned long long)sub->keyframes,
             (unsigned long long)sub->bytes);
    slpcat_quit(sub->s, code);
}

static const struct link_handler handler = { on_accepted, on_frame, NULL, on_closed };

static int open_output(struct subscriber *sub)
{
    const char *out = sub->s->cfg.output;
    sub->fd = strcmp(out, "-") == 0
                  ? 1 : open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (sub->fd == -1) {
        slpcat_say("cannot open %s: %s", out, strerror(errno));
        return -1;
    }
    return 0;
}

struct subscriber *subscribe_start(struct slpcat *s, int *exit_code)
{
    const struct slpcat_config *c = &s->cfg;
    enum slp_start start;
    if (slp_start_parse(c->from, &start) == -1) {
        slpcat_say("--from %s: keyframe or live", c->from);
        *exit_code = SLPCAT_EXIT_USAGE;
        return NULL;
    }
    struct subscriber *sub = calloc(1, sizeof(*sub));
    *exit_code = SLPCAT_EXIT_IO;
    if (sub == NULL)
        return NULL;
    sub->s = s;
    sub->fd = -1;
    if (open_output(sub) == -1) {
        subscribe_free(sub);
        return NULL;
    }
    struct slp_frame req = { .type = SLP_SUBSCRIBE, .subscribe = {
        slp_cstr(c->stream), start, (uint32_t)(c->wait_s * 1000) } };
    sub->link = link_start(s, &req, &handler, sub);
    if (sub->link == NULL) {
        *exit_code = SLPCAT_EXIT_USAGE;
        subscribe_free(sub);
        return NULL;
    }
    *exit_code = SLPCAT_EXIT_OK;
    return sub;
}

void subscribe_stop(struct subscriber *sub)
{
    link_end(sub->link, NULL, SLPCAT_EXIT_OK);
}

void subscribe_free(struct subscriber *sub)
{
    if (sub == NULL)
        return;
    link_free(sub->link);
    if (sub->fd > 1)
        close(sub->fd);
    free(sub);
}
