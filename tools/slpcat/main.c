/* slpcat: options, usage and exit codes, signals, the loop. See slpcat.h. */
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "slpcat.h"
#include "sluice/config.h"
#include "sluice/log.h"
#include "sluice/names.h"
#include "sluice/ts.h"

#define OFF(field) offsetof(struct slpcat_config, field)

static const struct config_opt common_opts[] = {
    { "relay", CONF_STR, OFF(relay), "127.0.0.1:7700", 1, 0, "the relay's SLP address, host:port" },
    { "stream", CONF_STR, OFF(stream), NULL, 1, 0, "the stream name (required)" },
    { "node-id", CONF_STR, OFF(node_id), "", 0, 0,
      "this node's id in HELLO and PUBLISH (default: the host name)" },
    { "log-level", CONF_STR, OFF(log_level), "info", 1, 0, "debug, info, warn or error" },
    { "connect-timeout", CONF_MS, OFF(connect_timeout_ms), "5s", 100, 600000,
      "bound on connecting, the handshake, and taking the lease" },
    { "idle-timeout", CONF_MS, OFF(idle_timeout_ms), "20s", 1000, 3600000,
      "give up on a relay silent this long (PINGs keep a quiet link alive)" },
    { NULL },
};

static const struct config_opt publish_opts[] = {
    { "file", CONF_STR, OFF(file), "-", 1, 0, "the TS to send; - is stdin" },
    { "rate", CONF_INT, OFF(rate), "0", 0, 100000000000LL,
      "pace at this many bits per second instead of by the input's PCR" },
    { "fast", CONF_BOOL, OFF(fast), "false", 0, 0, "do not pace: send as fast as the relay takes it" },
    { "raw", CONF_BOOL, OFF(raw), "false", 0, 0,
      "no TS annotation: frames of whole packets, no flags, no checks" },
    { "loop", CONF_BOOL, OFF(loop), "false", 0, 0,
      "start the file again at its end (marked DISCONTINUITY), until stopped" },
    { "publisher-id", CONF_STR, OFF(publisher_id), "", 0, 0,
      "the publisher id to send (the lease holder's); generated when taking the lease" },
    { "redis-url", CONF_SECRET, OFF(redis_url), "", 0, 0,
      "take sluice:lease:publish:<stream> in this Redis, and hold it while publishing" },
    { "takeover", CONF_BOOL, OFF(takeover), "false", 0, 0,
      "take the lease even if another publisher holds it" },
    { "lease-ttl", CONF_MS, OFF(lease_ttl_ms), "10s", 1000, 600000,
      "the lease's time to live (renewed every third of it)" },
    { "protocol", CONF_STR, OFF(protocol), "slpcat", 1, 0, "the protocol named in PUBLISH" },
    { "client", CONF_STR, OFF(client), "", 0, 0, "the client address named in PUBLISH" },
    { "max-packets", CONF_INT, OFF(max_packets), "512", TS_FRAME_MIN_PACKETS, TS_FRAME_MAX_PACKETS,
      "TS packets per MEDIA frame, at most" },
    { NULL },
};

static const struct config_opt subscribe_opts[] = {
    { "from", CONF_STR, OFF(from), "keyframe", 1, 0,
      "keyframe: start at the relay's last keyframe; live: at the next one" },
    { "wait", CONF_INT, OFF(wait_s), "0", 0, 86400,
      "seconds the relay waits for the stream to go live (0: fail at once)" },
    { "frames", CONF_INT, OFF(frames), "0", 0, INT64_MAX,
      "stop after this many MEDIA frames (0: at the end of the stream)" },
    { "output", CONF_STR, OFF(output), "-", 1, 0, "where the TS goes; - is stdout" },
    { NULL },
};

static const char synopsis[] =
    "Usage: slpcat publish --stream NAME [--relay HOST:PORT] [--file F]\n"
    "                      [--rate BPS | --fast] [--raw] [--loop]\n"
    "                      [--publisher-id ID] [--redis-url URL [--takeover]]\n"
    "       slpcat subscribe --stream NAME [--relay HOST:PORT] [--from keyframe|live]\n"
    "                      [--wait SECONDS] [--frames N] [--output F]\n"
    "\n"
    "publish    sends TS (a file, or stdin) to a relay over SLP, paced in real time\n"
    "           by its PCR (or --rate, or --fast), cut into MEDIA frames by the TS\n"
    "           annotator (keyframes flagged, PTS, wall clock) or, with --raw, as is.\n"
    "           The relay accepts only the holder of sluice:lease:publish:NAME: give\n"
    "           --publisher-id (someone else holds it for you) or --redis-url (slpcat\n"
    "           takes it with a generated id and renews it while publishing).\n"
    "subscribe  asks a relay for a stream and writes its TS to stdout (or --output),\n"
    "           starting at a keyframe, until the stream ends.\n"
    "\n"
    "Protocol errors from the relay are printed as they come, for example\n"
    "  slpcat: relay refused PUBLISH: conflict: lease held by ingest-2:91c2\n"
    "\n"
    "Exit codes:\n";

static void print_synopsis(FILE *to)
{
    fputs(synopsis, to);
#define SLPCAT_X_(sym, code, text) fprintf(to, "  %d  %s\n", code, text);
    SLPCAT_EXITS(SLPCAT_X_)
#undef SLPCAT_X_
    fputs("\nslpcat publish --help and slpcat subscribe --help list every option.\n\n", to);
}

void slpcat_say(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "slpcat: %s\n", line);
}

void slpcat_quit(struct slpcat *s, int code)
{
    if (s->exit_code < 0)
        s->exit_code = code;
    event_base_loopbreak(s->base);
}

/* ------------------------------------------------------------------------ */

struct run {
    struct slpcat *s;
    struct publisher *pub;
    struct subscriber *sub;
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct run *r = arg;
    if (r->s->stopping) {
        slpcat_say("second signal: exiting now");
        slpcat_quit(r->s, 128 + (int)sig);
        return;
    }
    r->s->stopping = true;
    log_info("signal %d: stopping", (int)sig);
    if (r->pub != NULL)
        publish_stop(r->pub);
    else
        subscribe_stop(r->sub);
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

/* Loads the options of subcommand <cmd> (argv[1]). Returns -1 to go on, or
 * an exit code. */
static int load_options(struct slpcat *s, bool publish, int argc, char **argv)
{
    const struct config_table tables[] = {
        { common_opts, &s->cfg }, { publish ? publish_opts : subscribe_opts, &s->cfg },
    };
    char prog[32], *err = NULL;
    snprintf(prog, sizeof(prog), "slpcat %s", argv[1]);
    if (wants_help(argc, argv))
        print_synopsis(stdout);
    enum config_result rc = config_load(tables, 2, prog, argc - 1, argv + 1, &err);
    if (rc == CONFIG_EXIT)
        return SLPCAT_EXIT_OK;
    if (rc == CONFIG_ERROR) {
        slpcat_say("%s", err);
        free(err);
        return SLPCAT_EXIT_USAGE;
    }
    enum log_level level;
    if (s->cfg.stream == NULL || !stream_name_valid(s->cfg.stream)) {
        slpcat_say("--stream: a stream name is [A-Za-z0-9_-]{1,64} (see --help)");
        return SLPCAT_EXIT_USAGE;
    }
    if (log_level_parse(s->cfg.log_level, &level) == -1) {
        slpcat_say("--log-level: debug, info, warn or error");
        return SLPCAT_EXIT_USAGE;
    }
    log_init("slpcat", level, LOG_TEXT, NULL);
    snprintf(s->node, sizeof(s->node), "%s", s->cfg.node_id);
    if (s->node[0] == '\0' && gethostname(s->node, sizeof(s->node) - 1) == -1)
        snprintf(s->node, sizeof(s->node), "slpcat");
    return -1;
}

static void free_options(struct slpcat *s, bool publish)
{
    const struct config_table tables[] = {
        { common_opts, &s->cfg }, { publish ? publish_opts : subscribe_opts, &s->cfg },
    };
    config_free(tables, 2);
}

/* Runs the subcommand on a fresh loop; returns the exit code. */
static int run(struct slpcat *s, bool publish)
{
    struct run r = { s, NULL, NULL };
    int code = SLPCAT_EXIT_OK;
    s->base = event_base_new();
    s->dns = s->base ? evdns_base_new(s->base, EVDNS_BASE_INITIALIZE_NAMESERVERS) : NULL;
    struct event *sigint = s->base ? evsignal_new(s->base, SIGINT, on_signal, &r) : NULL;
    struct event *sigterm = s->base ? evsignal_new(s->base, SIGTERM, on_signal, &r) : NULL;
    if (sigint == NULL || sigterm == NULL) {
        slpcat_say("cannot set up the event loop");
        code = SLPCAT_EXIT_IO;
        goto out_free_base;
    }
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    if (publish)
        r.pub = publish_start(s, &code);
    else
        r.sub = subscribe_start(s, &code);
    if (r.pub != NULL || r.sub != NULL) {
        event_base_dispatch(s->base);
        code = s->exit_code < 0 ? SLPCAT_EXIT_OK : s->exit_code;
    }
    publish_free(r.pub);
    subscribe_free(r.sub);
out_free_base:
    if (sigint != NULL)
        event_free(sigint);
    if (sigterm != NULL)
        event_free(sigterm);
    if (s->dns != NULL)
        evdns_base_free(s->dns, 0);
    if (s->base != NULL)
        event_base_free(s->base);
    return code;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_synopsis(argc < 2 ? stderr : stdout);
        return argc < 2 ? SLPCAT_EXIT_USAGE : SLPCAT_EXIT_OK;
    }
    bool publish = strcmp(argv[1], "publish") == 0;
    if (!publish && strcmp(argv[1], "subscribe") != 0) {
        slpcat_say("unknown command \"%s\": publish or subscribe (see --help)", argv[1]);
        return SLPCAT_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    struct slpcat s = { .exit_code = -1 };
    int code = load_options(&s, publish, argc, argv);
    if (code < 0)
        code = run(&s, publish);
    free_options(&s, publish);
    log_close();
    return code;
}
