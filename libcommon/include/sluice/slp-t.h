/* SLP, the Sluice Link Protocol: types and constants only (prototypes are in
 * slp.h). proto/SLP.md is the normative text; every number here is defined
 * there. Frame types, error codes and EOS reasons each come from one X-macro
 * table below, which generates both the enum and the names.
 */
#ifndef SLUICE_SLP_T_H
#define SLUICE_SLP_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLP_VERSION         1        /* the only version this code speaks */
#define SLP_HEADER_LEN      8        /* length u32, version u8, type u8, flags u16 */
#define SLP_MAX_FRAME       1048576  /* whole frame, header included */
#define SLP_MAX_CONTROL     1024     /* body of any frame other than MEDIA */
#define SLP_TS_PACKET       188
#define SLP_MEDIA_HEADER_LEN 24      /* frame header + pts + wall clock */
#define SLP_MEDIA_MAX_PACKETS ((SLP_MAX_FRAME - SLP_MEDIA_HEADER_LEN) / SLP_TS_PACKET)
#define SLP_PTS_NONE        (-1)     /* MEDIA pts when no PES starts in the frame */
#define SLP_PTS_MAX         ((INT64_C(1) << 33) - 1)

/* Field limits (bytes). */
#define SLP_ID_MAX          128      /* node ids, publisher ids */
#define SLP_AGENT_MAX       64
#define SLP_PROTOCOL_MAX    16
#define SLP_CLIENT_MAX      64
#define SLP_TEXT_MAX        255      /* ERROR and EOS text */

/* MEDIA flags (the frame header's flags field; other types send 0). */
#define SLP_F_KEYFRAME      0x0001
#define SLP_F_DISCONTINUITY 0x0002

/* X(symbol, wire value, name) */
#define SLP_TYPES(X)                \
    X(HELLO,     1, "HELLO")        \
    X(PUBLISH,   2, "PUBLISH")      \
    X(SUBSCRIBE, 3, "SUBSCRIBE")    \
    X(ACCEPT,    4, "ACCEPT")       \
    X(MEDIA,     5, "MEDIA")        \
    X(EOS,       6, "EOS")          \
    X(PING,      7, "PING")         \
    X(PONG,      8, "PONG")         \
    X(ERROR,     9, "ERROR")

enum slp_type {
#define SLP_X_(sym, val, name) SLP_##sym = (val),
    SLP_TYPES(SLP_X_)
#undef SLP_X_
};

/* X(symbol, wire value, name, meaning). The meaning doubles as the default
 * text of an ERROR frame. Every ERROR closes the connection. */
#define SLP_ERRORS(X)                                                               \
    X(BAD_FRAME,           1, "bad_frame",           "malformed frame")           \
    X(UNSUPPORTED_VERSION, 2, "unsupported_version", "unsupported SLP version")   \
    X(UNKNOWN_TYPE,        3, "unknown_type",        "unknown frame type")        \
    X(TOO_LARGE,           4, "too_large",           "frame too large")           \
    X(BAD_NAME,            5, "bad_name",            "invalid stream name")       \
    X(UNEXPECTED,          6, "unexpected",          "frame not allowed now")     \
    X(CONFLICT,            7, "conflict",            "not the publish lease holder") \
    X(NOT_FOUND,           8, "not_found",           "stream is not live")        \
    X(TIMEOUT,             9, "timeout",             "peer silent for too long")  \
    X(UNAVAILABLE,        10, "unavailable",         "cannot decide now, retry")  \
    X(OVERLOADED,         11, "overloaded",          "at capacity")               \
    X(TOO_SLOW,           12, "too_slow",            "subscriber fell behind")    \
    X(REPLACED,           13, "replaced",            "publisher replaced")        \
    X(GOING_AWAY,         14, "going_away",          "shutting down")             \
    X(INTERNAL,           15, "internal",            "internal error")

enum slp_error {
    SLP_E_NONE = 0,
#define SLP_X_(sym, val, name, text) SLP_E_##sym = (val),
    SLP_ERRORS(SLP_X_)
#undef SLP_X_
};

/* X(symbol, wire value, name) */
#define SLP_EOS_REASONS(X)                  \
    X(ENDED,          1, "ended")           \
    X(PUBLISHER_LOST, 2, "publisher_lost")  \
    X(SHUTDOWN,       3, "shutdown")        \
    X(REVOKED,        4, "revoked")

enum slp_eos_reason {
#define SLP_X_(sym, val, name) SLP_EOS_##sym = (val),
    SLP_EOS_REASONS(SLP_X_)
#undef SLP_X_
};

enum slp_role { SLP_ROLE_PUBLISHER = 1, SLP_ROLE_SUBSCRIBER = 2, SLP_ROLE_RELAY = 3 };

/* SUBSCRIBE start modes. Either way the first MEDIA a subscriber gets is a
 * KEYFRAME frame. */
enum slp_start {
    SLP_START_KEYFRAME = 1,  /* at the last cached keyframe, at once if any */
    SLP_START_LIVE = 2,      /* at the next keyframe the publisher sends */
};

/* A string field: <len> bytes at <p>, NOT NUL-terminated. In a decoded frame
 * it points into the decoded buffer. */
struct slp_str {
    const char *p;
    size_t len;
};

struct slp_hello {
    enum slp_role role;
    uint8_t version;         /* highest version the sender speaks */
    struct slp_str node;     /* sender's node id, 1..SLP_ID_MAX visible ASCII */
    struct slp_str agent;    /* software, 0..SLP_AGENT_MAX printable ASCII */
};

struct slp_publish {
    struct slp_str name;       /* stream name, [A-Za-z0-9_-]{1,64} */
    struct slp_str publisher;  /* holder of sluice:lease:publish:<name> */
    struct slp_str node;       /* ingest node id */
    struct slp_str protocol;   /* "srt", "rtmp", "slpcat": [a-z0-9]{1,16} */
    struct slp_str client;     /* publisher's address "ip:port", may be empty */
    int64_t started_us;        /* wall clock when the publisher connected */
};

struct slp_subscribe {
    struct slp_str name;
    enum slp_start start;
    uint32_t wait_ms;          /* how long to wait for a stream not yet live */
};

struct slp_accept {
    enum slp_type request;     /* SLP_PUBLISH or SLP_SUBSCRIBE */
};

struct slp_media {
    int64_t pts;               /* 90 kHz, 0..SLP_PTS_MAX, or SLP_PTS_NONE */
    int64_t wall_us;           /* ingest wall clock, µs since the epoch */
    const uint8_t *ts;         /* whole 188-byte packets */
    size_t ts_len;
};

struct slp_eos {
    uint8_t reason;            /* enum slp_eos_reason; unknown values allowed */
    struct slp_str text;       /* free text, may be empty */
};

struct slp_ping {              /* PING and PONG */
    uint64_t token;
};

struct slp_err {
    uint16_t code;             /* enum slp_error; unknown values allowed */
    struct slp_str text;       /* free text, may be empty */
};

/* One frame, decoded or to encode. <type> selects the union member. */
struct slp_frame {
    enum slp_type type;
    uint8_t version;
    uint16_t flags;
    size_t size;               /* whole frame (header included); see slp_decode */
    enum slp_error error;      /* slp_decode: SLP_INVALID's code ... */
    const char *why;           /* ... and a static reason for logs */
    union {
        struct slp_hello hello;
        struct slp_publish publish;
        struct slp_subscribe subscribe;
        struct slp_accept accept;
        struct slp_media media;
        struct slp_eos eos;
        struct slp_ping ping;
        struct slp_err err;
    };
};

/* Where a connection is in the handshake of SLP.md section 6, as seen by
 * one side; slp_session_recv() checks each frame that arrives against it. */
enum slp_session_state {
    SLP_S_NEW,          /* nothing yet: the peer's HELLO is due */
    SLP_S_HELLO,        /* the peer said HELLO: the request (or ACCEPT) is due */
    SLP_S_REQUESTED,    /* relay: the request came, our answer is pending */
    SLP_S_ACCEPTED,     /* streaming */
    SLP_S_ENDED,        /* the peer sent EOS: nothing more may come */
};

struct slp_session {
    bool relay;                  /* we are the relay (the server side) */
    enum slp_role client;        /* the client's role: the peer's, or ours */
    enum slp_session_state state;
    bool publish_seen;           /* subscriber: the stream's PUBLISH came */
};

enum slp_status {
    SLP_OK,          /* a whole, valid frame */
    SLP_NEED_MORE,   /* a valid prefix: more bytes needed */
    SLP_INVALID,     /* can never be a valid frame: send ERROR, close */
};

#endif
