/* Helpers for unit tests that need an event loop or a real server.
 * Header-only so every test binary stays one file plus what it links. */
#ifndef SLUICE_TESTUTIL_H
#define SLUICE_TESTUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "sluice/clock.h"

/* A free TCP port on 127.0.0.1 (bound to 0, read back, released). */
static inline int test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    if (fd == -1 || bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
        getsockname(fd, (struct sockaddr *)&a, &len) == -1) {
        perror("test_free_port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Runs <base> until *<done> or <timeout_ms> passes. Returns *<done>. */
static inline bool test_loop_until(struct event_base *base, const bool *done, int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;
    while (!*done && clock_mono_ms() < end)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
    return *done;
}

/* Runs <base> for <ms> milliseconds. */
static inline void test_loop_for(struct event_base *base, int ms)
{
    bool never = false;
    test_loop_until(base, &never, ms);
}

/* Starts redis-server on <port> (no persistence, quiet). Returns its pid. */
static inline pid_t test_redis_start(int port)
{
    pid_t pid = fork();
    if (pid == 0) {
        char p[16];
        snprintf(p, sizeof(p), "%d", port);
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", "/tmp", (char *)NULL);
        _exit(127);
    }
    /* wait until it accepts */
    for (int i = 0; i < 200; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
        close(fd);
        if (rc == 0)
            return pid;
        usleep(10000);
    }
    fprintf(stderr, "redis-server did not start on %d\n", port);
    kill(pid, SIGKILL);
    exit(1);
}

static inline void test_redis_stop(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

#endif
