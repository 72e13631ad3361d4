/* slpload: options, the loop, the report. See slpload.h. */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "slpload.h"
#include "sluice/clock.h"
#include "sluice/config.h"
#include "sluice/names.h"

#define OFF(field) offsetof(struct slpload_config, field)

static const struct config_opt opts[] = {
    { "stream", CONF_STR, OFF(stream), "bench", 1, 0, "the stream name" },
    { "count", CONF_INT, OFF(count), "1", 1, 100000, "subscribers" },
    { "duration", CONF_MS, OFF(duration_ms), "10s", 100, 86400000,
      "run this long (subscribe: or until every reader has ended)" },
    { "relay", CONF_STR, OFF(relay), "127.0.0.1:7700", 1, 0, "subscribe: the relay, ip:port" },
    { "from", CONF_STR, OFF(from), "keyframe", 1, 0, "subscribe: keyframe or live" },
    { "wait", CONF_INT, OFF(wait_s), "10", 0, 86400,
      "subscribe: seconds the relay waits for the stream to go live" },
    { "rcvbuf", CONF_BYTES, OFF(rcvbuf), "0", 0, 64 * 1024 * 1024,
      "subscribe: SO_RCVBUF of each reader (0: the kernel's)" },
    { "per-reader", CONF_BOOL, OFF(per_reader), "false", 0, 0,
      "subscribe: report every reader's figures too" },
    { "listen", CONF_STR, OFF(listen), "127.0.0.1:7799", 1, 0, "floor: listen on ip:port" },
    { "file", CONF_STR, OFF(file), "", 0, 0, "floor: the TS file to send (looped)" },
    { "rate", CONF_INT, OFF(rate), "4000000", 1000, 10000000000LL,
      "floor: bits of TS per second" },
    { NULL },
};

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* Enough descriptors for the readers. */
static void raise_nofile(int64_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)want + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)want + 64 ? rl.rlim_max : (rlim_t)want + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "subscribe") != 0 && strcmp(argv[1], "floor") != 0)) {
        fprintf(stderr, "Usage: slpload subscribe --relay IP:PORT --stream NAME --count N "
                        "[--duration 10s]\n"
                        "       slpload floor --listen IP:PORT --file TS --rate BPS --count N "
                        "[--duration 10s]\n"
                        "slpload subscribe --help lists every option.\n");
        return 1;
    }
    bool floor = strcmp(argv[1], "floor") == 0;
    struct slpload s = { 0 };
    struct config_table t = { opts, &s.cfg };
    char *err = NULL;
    enum config_result rc = config_load(&t, 1, floor ? "slpload floor" : "slpload subscribe",
                                        argc - 1, argv + 1, &err);
    if (rc != CONFIG_OK || !stream_name_valid(s.cfg.stream)) {
        if (rc == CONFIG_ERROR)
            fprintf(stderr, "slpload: %s\n", err ? err : "bad options");
        free(err);
        config_free(&t, 1);
        return rc == CONFIG_EXIT ? 0 : 1;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(s.cfg.count);
    s.base = event_base_new();
    struct event *stop = evtimer_new(s.base, on_stop, s.base);
    struct event *sigint = evsignal_new(s.base, SIGINT, on_stop, s.base);
    struct event *sigterm = evsignal_new(s.base, SIGTERM, on_stop, s.base);
    struct timeval dur = clock_tv_ms(s.cfg.duration_ms);
    evtimer_add(stop, &dur);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    struct readers *rs = floor ? NULL : readers_start(&s);
    struct floor_writer *fw = floor ? floor_start(&s) : NULL;
    int code = 1;
    if (rs != NULL || fw != NULL) {
        int64_t t0 = clock_mono_us();
        event_base_dispatch(s.base);
        double secs = (clock_mono_us() - t0) / 1e6;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("{\"mode\":\"%s\",\"seconds\":%.3f,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,",
               floor ? "floor" : "subscribe", secs, tv_s(ru.ru_utime), tv_s(ru.ru_stime));
        if (rs != NULL)
            readers_report(rs, secs);
        else
            floor_report(fw, secs);
        printf("}\n");
        fflush(stdout);
        code = 0;
    }
    readers_free(rs);
    floor_free(fw);
    event_free(stop);
    event_free(sigint);
    event_free(sigterm);
    event_base_free(s.base);
    config_free(&t, 1);
    return code;
}
