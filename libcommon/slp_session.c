/* The SLP handshake order, pure: see slp.h and proto/SLP.md section 6 ("What
 * may arrive when"). The table there and the functions here say the same. */
#include "sluice/slp.h"

#define REFUSE(code, reason) do { *why = (reason); return (code); } while (0)

void slp_session_init(struct slp_session *s, bool relay, enum slp_role client)
{
    s->relay = relay;
    s->client = client;
    s->state = SLP_S_NEW;
    s->publish_seen = false;
}

void slp_session_accepted(struct slp_session *s)
{
    if (s->relay && s->state == SLP_S_REQUESTED)
        s->state = SLP_S_ACCEPTED;
}

/* The peer's first frame: its HELLO, of the role this side expects. */
static enum slp_error recv_hello(struct slp_session *s, const struct slp_frame *f,
                                 const char **why)
{
    if (f->type != SLP_HELLO)
        REFUSE(SLP_E_UNEXPECTED, "the first frame must be HELLO");
    if (s->relay) {
        if (f->hello.role != SLP_ROLE_PUBLISHER && f->hello.role != SLP_ROLE_SUBSCRIBER)
            REFUSE(SLP_E_BAD_FRAME, "HELLO: a client is a publisher or a subscriber");
        s->client = f->hello.role;
    } else if (f->hello.role != SLP_ROLE_RELAY) {
        REFUSE(SLP_E_BAD_FRAME, "HELLO: the server must be a relay");
    }
    s->state = SLP_S_HELLO;
    return SLP_E_NONE;
}

/* What a relay may get after the client's HELLO. */
static enum slp_error relay_recv(struct slp_session *s, const struct slp_frame *f,
                                 const char **why)
{
    bool publisher = s->client == SLP_ROLE_PUBLISHER;
    if (s->state == SLP_S_HELLO) {
        if (f->type != (publisher ? SLP_PUBLISH : SLP_SUBSCRIBE))
            REFUSE(SLP_E_UNEXPECTED, publisher ? "a publisher's HELLO is followed by PUBLISH"
                                               : "a subscriber's HELLO is followed by SUBSCRIBE");
        s->state = SLP_S_REQUESTED;
        return SLP_E_NONE;
    }
    if (s->state == SLP_S_ACCEPTED && publisher && (f->type == SLP_MEDIA || f->type == SLP_EOS)) {
        if (f->type == SLP_EOS)
            s->state = SLP_S_ENDED;
        return SLP_E_NONE;
    }
    if (s->state == SLP_S_REQUESTED && f->type == SLP_MEDIA)
        REFUSE(SLP_E_UNEXPECTED, "MEDIA before ACCEPT");
    REFUSE(SLP_E_UNEXPECTED, "frame not allowed from this client now");
}

/* What a client may get after the relay's HELLO. */
static enum slp_error client_recv(struct slp_session *s, const struct slp_frame *f,
                                  const char **why)
{
    enum slp_type request = s->client == SLP_ROLE_PUBLISHER ? SLP_PUBLISH : SLP_SUBSCRIBE;
    if (s->state == SLP_S_HELLO) {
        if (f->type != SLP_ACCEPT || f->accept.request != request)
            REFUSE(SLP_E_UNEXPECTED, "expected ACCEPT of our request");
        s->state = SLP_S_ACCEPTED;
        return SLP_E_NONE;
    }
    if (s->state != SLP_S_ACCEPTED || s->client != SLP_ROLE_SUBSCRIBER)
        REFUSE(SLP_E_UNEXPECTED, "frame not allowed from the relay now");
    switch (f->type) {
    case SLP_PUBLISH:
        s->publish_seen = true;
        return SLP_E_NONE;
    case SLP_MEDIA:
        if (!s->publish_seen)
            REFUSE(SLP_E_UNEXPECTED, "MEDIA before the stream's PUBLISH");
        return SLP_E_NONE;
    case SLP_EOS:
        s->state = SLP_S_ENDED;
        return SLP_E_NONE;
    default:
        REFUSE(SLP_E_UNEXPECTED, "frame not allowed from the relay now");
    }
}

enum slp_error slp_session_recv(struct slp_session *s, const struct slp_frame *f,
                                const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = NULL;
    if (f->type == SLP_ERROR)
        return SLP_E_NONE;
    if (s->state == SLP_S_NEW)
        return recv_hello(s, f, why);
    if (f->type == SLP_PING || f->type == SLP_PONG)
        return SLP_E_NONE;
    if (f->type == SLP_HELLO)
        REFUSE(SLP_E_UNEXPECTED, "a second HELLO");
    if (s->state == SLP_S_ENDED)
        REFUSE(SLP_E_UNEXPECTED, "frame after EOS");
    return s->relay ? relay_recv(s, f, why) : client_recv(s, f, why);
}
