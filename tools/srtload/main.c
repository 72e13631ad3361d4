/* srtload: options, the run, the report. See srtload.h. */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <srt/srt.h>

#include "srtload.h"
#include "sluice/config.h"

#define OFF(field) offsetof(struct srtload_config, field)

static const struct config_opt opts[] = {
    { "target", CONF_STR, OFF(target), "127.0.0.1:9999", 1, 0, "the SRT listener, host:port" },
    { "publish", CONF_STR, OFF(publish), "", 0, 0,
      "a file of StreamIDs to publish to, one per line (used in turn)" },
    { "publishers", CONF_INT, OFF(publishers), "0", 0, 10000, "publishers" },
    { "view", CONF_STR, OFF(view), "", 0, 0, "a file of StreamIDs to watch, one per line" },
    { "viewers", CONF_INT, OFF(viewers), "0", 0, 10000, "viewers" },
    { "refuse", CONF_STR, OFF(refuse), "", 0, 0,
      "a StreamID the listener should refuse, for --handshakes" },
    { "handshakes", CONF_INT, OFF(handshakes), "0", 0, 1000000,
      "handshakes with --refuse's StreamID" },
    { "parallel", CONF_INT, OFF(parallel), "50", 1, 10000, "handshakes under way at once" },
    { "file", CONF_STR, OFF(file), "", 0, 0, "the MPEG-TS the publishers send (looped)" },
    { "rate", CONF_INT, OFF(rate), "0", 0, 10000000000LL,
      "pace at this many bits per second; 0: by the file's PCR" },
    { "passphrase", CONF_SECRET, OFF(passphrase), "", 0, 0, "the streams' SRT passphrase" },
    { "duration", CONF_MS, OFF(duration_ms), "10s", 100, 86400000, "how long to run" },
    { "latency", CONF_MS, OFF(latency_ms), "120ms", 20, 10000, "SRT latency" },
    { "spread", CONF_MS, OFF(spread_ms), "1s", 0, 600000,
      "publishers and viewers connect spread over this" },
    { "connect-timeout", CONF_MS, OFF(connect_timeout_ms), "3s", 100, 60000,
      "SRT connection timeout" },
    { "per-connection", CONF_BOOL, OFF(per_connection), "true", 0, 0,
      "report every connection's counters" },
    { "own-ports", CONF_BOOL, OFF(own_ports), "false", 0, 0,
      "one UDP port per caller (libsrt then runs two threads for each)" },
    { NULL },
};

static volatile int stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static const char *check(const struct srtload_config *c)
{
    if (c->publishers > 0 && (c->publish[0] == '\0' || c->file[0] == '\0'))
        return "--publishers needs --publish (StreamIDs) and --file (TS)";
    if (c->viewers > 0 && c->view[0] == '\0')
        return "--viewers needs --view (StreamIDs)";
    if (c->handshakes > 0 && c->refuse[0] == '\0')
        return "--handshakes needs --refuse (a StreamID)";
    if (c->publishers + c->viewers + c->handshakes == 0)
        return "nothing to do: give --publishers, --viewers or --handshakes";
    return NULL;
}

int main(int argc, char **argv)
{
    struct srtload_config cfg = { 0 };
    struct config_table t = { opts, &cfg };
    char *cerr = NULL, err[256] = "";
    enum config_result rc = config_load(&t, 1, "srtload", argc, argv, &cerr);
    const char *bad = rc == CONFIG_OK ? check(&cfg) : NULL;
    if (rc != CONFIG_OK || bad != NULL) {
        if (rc == CONFIG_ERROR || bad != NULL)
            fprintf(stderr, "srtload: %s\n", bad ? bad : cerr ? cerr : "bad options");
        free(cerr);
        config_free(&t, 1);
        return rc == CONFIG_EXIT ? 0 : 1;
    }
    struct media m = { 0 };
    if (cfg.publishers > 0 && media_load(cfg.file, cfg.rate, &m, err, sizeof(err)) == -1) {
        fprintf(stderr, "srtload: %s\n", err);
        config_free(&t, 1);
        return 1;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;           /* --own-ports: a UDP socket each */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    srt_startup();
    srt_setloglevel(LOG_CRIT);
    int code = 1;
    struct run *r = run_new(&cfg, &m, err, sizeof(err));
    if (r == NULL) {
        fprintf(stderr, "srtload: %s\n", err[0] ? err : "out of memory");
    } else {
        run_loop(r, &stop);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("{\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,", tv_s(ru.ru_utime), tv_s(ru.ru_stime));
        run_report(r);
        printf("}\n");
        fflush(stdout);
        code = run_status(r);
        run_free(r);
    }
    srt_cleanup();
    media_free(&m);
    config_free(&t, 1);
    return code;
}
