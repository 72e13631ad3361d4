/* slpcat: publish MPEG-TS to a relay over SLP, or subscribe to a stream and
 * write its TS out. One process, one libevent loop, one SLP connection.
 *
 *   main.c       options, usage, exit codes, the loop
 *   link.c       the SLP connection (libcommon slpclient): options, errors, exit codes
 *   publish.c    input, pacing, annotation (or --raw), EOS at the end
 *   subscribe.c  output of the MEDIA payload, EOS and --frames
 *   lease.c      the publish lease in Redis: take, renew, release
 */
#ifndef SLPCAT_H
#define SLPCAT_H

#include <stdbool.h>
#include <stdint.h>

/* X(symbol, code, meaning): the exit codes, as --help prints them. */
#define SLPCAT_EXITS(X)                                                                   \
    X(OK,       0, "done: the input was sent and EOS written (publish), or the stream "    \
                   "ended with EOS or --frames were written (subscribe)")                  \
    X(USAGE,    1, "bad command line or option")                                          \
    X(NETWORK,  2, "cannot connect to the relay, the connection was lost, or timed out")  \
    X(REFUSED,  3, "the relay sent an ERROR frame (printed: code and text)")              \
    X(LEASE,    4, "the publish lease is held by someone else or was lost, or Redis "      \
                   "cannot be reached")                                                    \
    X(PROTOCOL, 5, "the relay sent a malformed or unexpected frame")                     \
    X(IO,       6, "cannot read the input or write the output")

enum slpcat_exit {
#define SLPCAT_X_(sym, code, text) SLPCAT_EXIT_##sym = (code),
    SLPCAT_EXITS(SLPCAT_X_)
#undef SLPCAT_X_
};

struct slpcat_config {
    /* both */
    char *relay;
    char *stream;
    char *node_id;
    char *log_level;
    int64_t connect_timeout_ms;
    int64_t idle_timeout_ms;
    /* publish */
    char *file;
    char *publisher_id;
    char *redis_url;
    char *protocol;
    char *client;
    int64_t rate;
    int64_t max_packets;
    int64_t lease_ttl_ms;
    bool fast, raw, loop, takeover;
    /* subscribe */
    char *from;
    char *output;
    int64_t wait_s;
    int64_t frames;
};

struct event_base;
struct evdns_base;

#define SLPCAT_NODE_MAX 128

struct slpcat {
    struct event_base *base;
    struct evdns_base *dns;
    struct slpcat_config cfg;
    char node[SLPCAT_NODE_MAX + 1];  /* --node-id, or the host name */
    int exit_code;
    bool stopping;               /* a signal came: wind down */
};
/* Ends the run with <code> (the first code given wins): breaks the loop. */
void slpcat_quit(struct slpcat *s, int code);

/* Prints "slpcat: <message>" to stderr, one line. */
void slpcat_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Subcommands. *_start sets up on s->base and returns the state, or NULL
 * with *<exit_code> set (the reason printed); *_stop is what SIGINT/SIGTERM
 * do; *_free runs after the loop. */
struct publisher;
struct publisher *publish_start(struct slpcat *s, int *exit_code);
void publish_stop(struct publisher *p);
void publish_free(struct publisher *p);

struct subscriber;
struct subscriber *subscribe_start(struct slpcat *s, int *exit_code);
void subscribe_stop(struct subscriber *sub);
void subscribe_free(struct subscriber *sub);

#endif
