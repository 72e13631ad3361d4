/* One SLP connection, whatever its role: the socket, reading and decoding
 * frames (SLP.md section 11) in large reads, the handshake order (section 6,
 * through libcommon's slp_session), the output queue and its writes,
 * keepalive and timeouts (section 10), and the graceful close (section 6,
 * "Closing"). What a publisher's or a subscriber's frames mean is decided in
 * publisher.c and subscriber.c.
 *
 * Lifetime: a conn is created by conn_accept() and closed by conn_close(),
 * which any path may call: the socket closes at once, and the memory is freed
 * by the relay's reaper once the current callback returns, so a caller up the
 * stack may still look at the conn (its state is then CONN_DEAD, and every
 * function here ignores it). conn_end() and conn_error() instead begin a
 * graceful close, at whose end the conn closes itself.
 */
#ifndef RELAY_CONN_H
#define RELAY_CONN_H

#include <stdint.h>
#include <sys/socket.h>

#include "relay-t.h"

#define KEEPALIVE_MS 5000         /* PING a peer we have sent nothing for this long */
#define ERROR_DRAIN_MS 1000       /* an ERROR goes out within this (SLP.md 7.8) */
#define EOS_DRAIN_MS 10000        /* the media before an EOS, and the EOS, within this */
#define LINGER_MS 2000            /* after our half-close, the peer closes within this */

/* Takes the accepted, non-blocking socket <fd> of peer <addr>. */
void conn_accept(struct relay *r, int fd, const struct sockaddr *addr, socklen_t addrlen);

/* Queues the control frame <f> (copied). A PONG to a subscriber whose queue
 * is at its bound is skipped (a peer that does not read cannot grow our
 * memory). Returns 0, or -1 if <f> could not be queued. */
int conn_send(struct conn *c, const struct slp_frame *f);

/* Writes what is queued: now, as far as the socket takes it, and the rest
 * when it becomes writable. May close <c> (a dead peer). */
void conn_flush(struct conn *c);

/* Begins the graceful close: <last> (EOS or ERROR; NULL for none) goes after
 * what is queued, which drains for up to <drain_ms>; then half-close, read
 * until the peer closes (LINGER_MS at most), close. The caller has already
 * detached <c> from its stream, or wants conn.c to (see conn_detach). */
void conn_end(struct conn *c, const struct slp_frame *last, int64_t drain_ms);

/* Sends ERROR <code> with a printf text (NULL: the code's meaning) and ends
 * <c> as conn_end() does. Counted in sluice_relay_errors_sent_total. */
void conn_error(struct conn *c, enum slp_error code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Closes <c> at once (the peer is gone, or a bound passed), detaching it
 * from its stream first. <why> is logged. */
void conn_close(struct conn *c, const char *why);

/* Leaves <c>'s stream: a publisher's stream treats it as lost, a
 * subscriber's stream forgets it. */
void conn_detach(struct conn *c, const char *why);

/* Timeouts, keepalive and the subscriber checks; every tick. May close <c>. */
void conn_tick(struct conn *c, int64_t now_ms);

/* Frees the connections closed so far (the reaper). */
void conn_reap(struct relay *r);

/* Closes and frees every connection (exit). */
void conn_free_all(struct relay *r);

/* Moves <c> to state <st>, keeping the relay's counts of publishers and
 * subscribers. */
void conn_set_state(struct conn *c, enum conn_state st);

bool conn_is_subscriber(const struct conn *c);
bool conn_is_publisher(const struct conn *c);
const char *conn_state_name(enum conn_state s);

#endif
