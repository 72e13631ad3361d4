/* A client connection on the loop, from the moment the transport accepted
 * it until it is gone:
 *
 *   AUTHORIZING --(api allows the session)--> PUBLISHING or VIEWING --> CLOSING --> freed
 *        |                                        ^
 *        +-- a stream key: straight to -----------+
 *
 * A session id passed the listen callback on its form alone; here it is
 * consumed through POST /internal/v1/authorize at once, and until the api
 * allows it nothing the client sends goes anywhere: it is held (bounded by
 * auth-buffer) and thrown away if the answer is no, or none comes within
 * authorize-timeout. A publisher whose name is already live here replaces the
 * live one (takeover), or is closed when takeover is off. A viewer (m=request)
 * gets a viewer (viewer.h) whose sink is the connection.
 *
 * Every connection remembers its stream's authorization entry when it was let
 * in; when the table changes, those it no longer admits are closed.
 *
 * SRT is the only transport so far; the transport is two calls (the close
 * below, and the srtsrv handler that feeds us), so RTMP slots in beside it.
 */
#ifndef SLUICE_INGEST_CONN_H
#define SLUICE_INGEST_CONN_H

#include "srtsrv.h"

struct ingest;
struct conn;

/* The srtsrv handler (its arg is the ingest). */
extern const struct srtsrv_handler conn_srt_handler;

enum conn_mode { CONN_HANDSHAKE, CONN_REQUEST, CONN_PUBLISH };

/* Counts connections by what they do now, for srt_connections_current. */
void conn_count_modes(const struct ingest *ing, unsigned counts[3]);

/* The table changed (the change reached ingest at <since_us>, monotonic):
 * closes every connection that its stream's entry no longer admits
 * (authtable_revokes); a publisher's stream ends with EOS revoked. When the
 * SRT socket is closed, the time since <since_us> goes to
 * sluice_ingest_revoke_seconds and the log. */
void conn_recheck(struct ingest *ing, int64_t since_us);

/* Ingest is stopping: every connection ends, publishers with EOS shutdown. */
void conn_close_all(struct ingest *ing);

/* Frees what is left after the loop stopped (no transport calls). */
void conn_free_all(struct ingest *ing);

#endif
