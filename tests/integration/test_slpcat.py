"""slpcat against a scripted relay written in Python (slpwire.py, a second SLP
implementation from the spec alone), on the ffmpeg fixtures; Redis is real
for the publish lease. The relay itself is issue 4: these tests play its part
of SLP exactly as proto/SLP.md says a relay does."""
import signal
import socket
import subprocess
import threading
import time

import pytest

import slpwire as w
from media import ROOT, ffprobe, decode_errors, finish, fixture, packets, pcr, pid, pusi, slpcat

STREAM = "cam1"


class FakeRelay:
    """A listening socket; each accept() gives one SLP connection."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []

    def accept(self, timeout=15):
        self.sock.settimeout(timeout)
        s, _ = self.sock.accept()
        s.settimeout(timeout)
        conn = w.Conn(s)
        self.conns.append(conn)
        return conn

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture
def relay():
    r = FakeRelay()
    yield r
    r.close()


def handshake(conn, request, answer=True, extra=b""):
    """Reads HELLO and the request, checks them, and (if <answer>) accepts,
    sending <extra> frames in the same write."""
    hello = conn.recv()
    assert hello.type == w.HELLO
    req = conn.recv()
    assert req.type == request
    want_role = w.ROLE_PUBLISHER if request == w.PUBLISH else w.ROLE_SUBSCRIBER
    assert hello.role == want_role and hello.version == 1
    assert hello.agent == b"slpcat/1"
    if answer:
        conn.send(w.hello(w.ROLE_RELAY, "relay-test", "fake-relay/1") + w.accept(request)
                  + extra)
    return hello, req


def read_until_eos(conn):
    """MEDIA frames until EOS (answering PINGs), then the close; returns
    (media, eos)."""
    media = []
    while True:
        f = conn.recv()
        assert f is not None, "connection closed without EOS"
        if f.type == w.MEDIA:
            media.append(f)
        elif f.type == w.EOS:
            expect_close(conn)
            return media, f
        elif f.type == w.PING:
            conn.send(w.ping(f.token, pong=True))
        elif f.type != w.PONG:
            raise AssertionError(f"unexpected {f.type_name} from a publisher")


def expect_close(conn):
    """After EOS or ERROR the peer closes; so does the relay (SLP.md 6, 7.6)."""
    assert conn.recv() is None
    conn.close()


def refuse(conn, code, text):
    """Sends ERROR and closes as a relay must: after the peer (SLP.md 7.8).
    Closing with unread bytes would reset the connection, losing the ERROR."""
    conn.send(w.error(code, text))
    conn.sock.shutdown(socket.SHUT_WR)
    try:
        while conn.recv() is not None:
            pass
    except (OSError, w.Invalid):
        pass
    conn.close()


def check_contract(media, vpid=0x100, pmt=0x1000):
    """SLP.md section 9: KEYFRAME frames begin PAT, PMT, then the video PES;
    what comes before the first one (ffmpeg starts with an SDT) carries no
    video PES start."""
    first = next(i for i, f in enumerate(media) if f.flags & w.F_KEYFRAME)
    for f in media[:first]:
        assert not any(pid(p) == vpid and pusi(p) for p in packets(f.ts))
    for f in media:
        assert len(f.ts) % 188 == 0
        if f.flags & w.F_KEYFRAME:
            pk = packets(f.ts)
            assert pid(pk[0]) == 0 and pid(pk[1]) == pmt
            assert pid(pk[2]) == vpid and pusi(pk[2])
            assert f.pts >= 0


def publish(relay, *args, stream=STREAM, **kw):
    return slpcat("publish", "--relay", relay.addr, "--stream", stream, "--node-id", "test-node",
                  *args, **kw)


def first_bytes(name, seconds, tmp_path):
    """The first <seconds> of a fixture by its PCR, cut at a packet."""
    data = fixture(name).read_bytes()
    pk = packets(data)
    start = None
    for i, p in enumerate(pk):
        v = pcr(p)
        if v is None:
            continue
        if start is None:
            start = v
        elif v - start >= seconds * 27_000_000:
            out = tmp_path / f"first{seconds}s.ts"
            out.write_bytes(b"".join(pk[:i]))
            return out, (v - start) / 27e6
    raise AssertionError("fixture too short")


# --------------------------------------------------------------------------
# The spec, read by the second implementation

def test_spec_examples_decode_in_python():
    ex = w.spec_examples(ROOT / "proto" / "SLP.md")
    assert set(ex) == {"hello", "publish", "subscribe", "accept", "media", "eos", "ping",
                       "pong", "error"}
    for name, data in ex.items():
        f, size = w.decode(data)
        assert size == len(data) and f.type_name.lower() == name
        for k in range(len(data)):
            assert w.decode(data[:k])[0] is None
    assert w.hello(w.ROLE_PUBLISHER, "ingest-1", "sluice-ingest/0.1") == ex["hello"]
    assert w.publish("cam1", "ingest-1:7f3a9c", "ingest-1", "srt", "203.0.113.7:50114",
                     1763690400000000) == ex["publish"]
    assert w.subscribe("cam1", w.START_KEYFRAME, 10000) == ex["subscribe"]
    assert w.accept(w.PUBLISH) == ex["accept"]
    assert w.media(ex["media"][24:], w.F_KEYFRAME, 900000, 1763690400123456) == ex["media"]
    assert w.eos(1, "publisher stopped") == ex["eos"]
    assert w.ping(0x0102030405060708) == ex["ping"]
    assert w.ping(0x0102030405060708, pong=True) == ex["pong"]
    assert w.error("conflict", "lease held by ingest-2:91c2") == ex["error"]


# --------------------------------------------------------------------------
# publish

def test_publish_file_annotated(relay, tmp_path):
    src = fixture("h264_aac_10s.ts")
    t0 = time.time()
    proc = publish(relay, "--publisher-id", "pub-1", "--file", src, "--fast")
    conn = relay.accept()
    hello, req = handshake(conn, w.PUBLISH, extra=w.ping(42))   # a relay may PING any time
    assert hello.node == b"test-node"
    assert req.name == b"cam1" and req.publisher == b"pub-1" and req.node == b"test-node"
    assert req.protocol == b"slpcat" and req.client == b""
    assert abs(req.started_us / 1e6 - t0) < 10
    media, eos = read_until_eos(conn)
    code, _, err = finish(proc)
    assert code == 0, err
    assert eos.reason == 1 and eos.text == b"end of input"
    check_contract(media)
    assert sum(1 for f in media if f.flags & w.F_KEYFRAME) == 10
    assert len(media) >= 250                     # about a frame per access unit
    assert all(t0 - 1 < f.wall_us / 1e6 < time.time() + 1 for f in media)
    keys = [f.pts for f in media if f.flags & w.F_KEYFRAME]
    assert [b - a for a, b in zip(keys, keys[1:])] == [90000] * 9
    out = tmp_path / "out.ts"
    out.write_bytes(b"".join(f.ts for f in media))
    codecs, duration = ffprobe(out)
    assert sorted(codecs) == ["aac", "h264"] and 9.5 < duration < 10.5
    assert decode_errors(out) == []


def test_publish_hevc_answers_ping(relay):
    proc = publish(relay, "--publisher-id", "pub-1", "--file", fixture("hevc_aac_6s.ts"),
                   "--fast", "--max-packets", "50")
    conn = relay.accept()
    handshake(conn, w.PUBLISH, extra=w.ping(0xfeedface))   # answered before the media ends
    media, pong = [], None
    while True:
        f = conn.recv()
        if f.type == w.PONG:
            pong = f
        elif f.type == w.MEDIA:
            media.append(f)
        elif f.type == w.EOS:
            break
    expect_close(conn)
    assert pong is not None and pong.token == 0xfeedface
    check_contract(media)
    assert sum(1 for f in media if f.flags & w.F_KEYFRAME) == 6
    assert max(len(f.ts) for f in media) <= (50 + 2) * 188
    assert finish(proc)[0] == 0


def test_publish_paced_by_pcr(relay, tmp_path):
    src, span = first_bytes("h264_aac_10s.ts", 2, tmp_path)
    proc = publish(relay, "--publisher-id", "pub-1", "--file", src)
    conn = relay.accept()
    handshake(conn, w.PUBLISH)
    t0 = time.monotonic()
    media, _ = read_until_eos(conn)
    elapsed = time.monotonic() - t0
    assert finish(proc)[0] == 0
    assert span * 0.9 <= elapsed <= span + 1.0, (span, elapsed)
    # wall clocks follow the stream's clock, not the reading speed
    walls = [f.wall_us for f in media]
    assert (walls[-1] - walls[0]) / 1e6 >= span * 0.85


def test_publish_paced_by_rate(relay, tmp_path):
    src = tmp_path / "half.ts"
    src.write_bytes(fixture("h264_aac_10s.ts").read_bytes()[:188 * 2660])   # 500 080 bytes
    proc = publish(relay, "--publisher-id", "pub-1", "--file", src, "--rate", "4000000")
    conn = relay.accept()
    handshake(conn, w.PUBLISH)
    t0 = time.monotonic()
    media, _ = read_until_eos(conn)
    elapsed = time.monotonic() - t0
    assert finish(proc)[0] == 0
    assert 0.85 <= elapsed <= 2.0, elapsed        # 500 kB at 500 kB/s
    assert sum(len(f.ts) for f in media) >= 188 * 2600


def test_publish_raw(relay):
    src = fixture("aac_10s.ts")
    proc = publish(relay, "--publisher-id", "pub-1", "--file", src, "--fast", "--raw",
                   "--max-packets", "100")
    conn = relay.accept()
    handshake(conn, w.PUBLISH)
    media, _ = read_until_eos(conn)
    assert finish(proc)[0] == 0
    assert all(f.flags == 0 and f.pts == w.PTS_NONE for f in media)
    assert all(len(f.ts) <= 100 * 188 for f in media)
    assert b"".join(f.ts for f in media) == src.read_bytes()


def test_publish_from_stdin(relay):
    data = fixture("aac_10s.ts").read_bytes()
    proc = publish(relay, "--publisher-id", "pub-1", "--fast", stdin=subprocess.PIPE)
    conn = relay.accept()
    handshake(conn, w.PUBLISH)
    proc.stdin.write(data)
    proc.stdin.close()
    proc.stdin = None
    media, _ = read_until_eos(conn)
    code, _, err = finish(proc)
    assert code == 0, err
    assert sum(1 for f in media if f.flags & w.F_KEYFRAME) == 10


def test_publish_refused_conflict(relay):
    proc = publish(relay, "--publisher-id", "pub-1", "--file", fixture("aac_10s.ts"))
    conn = relay.accept()
    handshake(conn, w.PUBLISH, answer=False)
    conn.send(w.hello(w.ROLE_RELAY, "relay-test"))
    refuse(conn, "conflict", "lease held by ingest-2:91c2")
    code, _, err = finish(proc)
    assert code == 3
    assert "slpcat: relay refused PUBLISH: conflict: lease held by ingest-2:91c2" in err


def test_publish_loop_marks_discontinuity(relay, tmp_path):
    src, _ = first_bytes("h264_aac_10s.ts", 1.5, tmp_path)   # two keyframes a pass
    proc = publish(relay, "--publisher-id", "pub-1", "--file", src, "--fast", "--loop")
    conn = relay.accept()
    handshake(conn, w.PUBLISH)
    keys = []
    while len(keys) < 6:
        f = conn.recv()
        if f.type == w.MEDIA and f.flags & w.F_KEYFRAME:
            keys.append(f)
    refuse(conn, "going_away", "enough")
    code, _, err = finish(proc)
    assert code == 3 and "relay ended the session: going_away: enough" in err
    disc = [bool(f.flags & w.F_DISCONTINUITY) for f in keys]
    assert disc == [False, False, True, False, True, False]
    assert keys[2].pts == keys[0].pts


def test_publish_sigterm_sends_eos(relay, tmp_path):
    proc = publish(relay, "--publisher-id", "pub-1", "--file", fixture("h264_aac_10s.ts"))
    conn = relay.accept()
    handshake(conn, w.PUBLISH)
    f = conn.recv()
    assert f.type == w.MEDIA
    proc.send_signal(signal.SIGTERM)
    _, eos = read_until_eos(conn)
    assert eos.reason == 1 and eos.text == b"stopped"
    assert finish(proc)[0] == 0


def test_publish_needs_an_id(relay):
    code, _, err = finish(publish(relay, "--file", fixture("aac_10s.ts")))
    assert code == 1 and "--publisher-id" in err


def test_bad_options():
    assert finish(slpcat("publish", "--stream", "no/slash", "--publisher-id", "x"))[0] == 1
    assert finish(slpcat("subscribe", "--stream", "a", "--from", "middle"))[0] == 1
    assert finish(slpcat("dance"))[0] == 1
    code, out, _ = finish(slpcat("--help"))
    assert code == 0 and b"Exit codes:" in out and b"  4  the publish lease" in out


def test_connect_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    code, _, err = finish(slpcat("subscribe", "--relay", f"127.0.0.1:{port}", "--stream", "a"))
    assert code == 2 and "cannot connect to relay" in err


def test_silent_relay_times_out(relay):
    proc = slpcat("subscribe", "--relay", relay.addr, "--stream", "a",
                  "--connect-timeout", "1s")
    relay.accept()                               # and never answers
    code, _, err = finish(proc)
    assert code == 2 and "timed out waiting for HELLO" in err


# --------------------------------------------------------------------------
# publish with the lease (real Redis)

def lease_key(stream=STREAM):
    return f"sluice:lease:publish:{stream}"


def test_publish_takes_and_renews_the_lease(relay, redis_server, tmp_path):
    r = redis_server.client()
    src = tmp_path / "part.ts"
    src.write_bytes(fixture("h264_aac_10s.ts").read_bytes()[:188 * 2660])
    proc = publish(relay, "--redis-url", redis_server.url, "--file", src, "--rate", "1600000",
                   "--lease-ttl", "1500ms")
    conn = relay.accept()
    _, req = handshake(conn, w.PUBLISH)
    holder = req.publisher.decode()
    assert holder.startswith("slpcat-test-node-")
    assert r.get(lease_key()) == holder           # as a relay checks it
    time.sleep(2.0)                               # beyond the TTL: renewed meanwhile
    assert r.get(lease_key()) == holder
    assert 0 < r.pttl(lease_key()) <= 1500
    read_until_eos(conn)
    assert finish(proc)[0] == 0
    assert r.get(lease_key()) is None             # released at the end


def test_publish_lease_held_by_another(relay, redis_server):
    r = redis_server.client()
    r.set(lease_key(), "ingest-9:abc", px=30000)
    code, _, err = finish(publish(relay, "--redis-url", redis_server.url,
                                  "--file", fixture("aac_10s.ts")))
    assert code == 4
    assert "being published by ingest-9:abc" in err
    assert r.get(lease_key()) == "ingest-9:abc"
    # with --takeover, slpcat takes it and the relay sees the new holder
    proc = publish(relay, "--redis-url", redis_server.url, "--file", fixture("aac_10s.ts"),
                   "--takeover", "--fast", "--publisher-id", "pub-new")
    conn = relay.accept()
    _, req = handshake(conn, w.PUBLISH)
    assert req.publisher == b"pub-new" and r.get(lease_key()) == "pub-new"
    read_until_eos(conn)
    code, _, err = finish(proc)
    assert code == 0 and "took the publish lease over from ingest-9:abc" in err


def test_publish_stops_when_the_lease_is_lost(relay, redis_server):
    r = redis_server.client()
    proc = publish(relay, "--redis-url", redis_server.url, "--file", fixture("h264_aac_10s.ts"),
                   "--lease-ttl", "1200ms")
    conn = relay.accept()
    handshake(conn, w.PUBLISH)
    assert conn.recv().type == w.MEDIA
    r.set(lease_key(), "ingest-2:91c2", px=30000)  # a takeover elsewhere
    t0 = time.monotonic()
    while (f := conn.recv()) is not None:
        assert f.type != w.EOS                      # no EOS: the stream goes on elsewhere
    conn.close()
    code, _, err = finish(proc)
    assert code == 4 and "lost the publish lease of cam1 to ingest-2:91c2" in err
    assert time.monotonic() - t0 < 2.5
    assert r.get(lease_key()) == "ingest-2:91c2"    # not released: not ours


def test_publish_survives_a_redis_outage(relay, redis_server, tmp_path):
    """DESIGN.md: while Redis is down the holder keeps working, and takes its
    lease again when Redis returns."""
    src = tmp_path / "part.ts"
    src.write_bytes(fixture("h264_aac_10s.ts").read_bytes()[:188 * 2660])
    proc = publish(relay, "--redis-url", redis_server.url, "--file", src, "--rate", "1000000",
                   "--lease-ttl", "1500ms")                 # about 4 s of sending
    conn = relay.accept()
    _, req = handshake(conn, w.PUBLISH)
    holder = req.publisher.decode()
    media = []

    def read_for(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            f = conn.recv()
            assert f is not None and f.type != w.EOS
            media.append(f)

    read_for(0.8)
    redis_server.stop()
    read_for(1.2)                                  # media keeps flowing meanwhile
    redis_server.start()                           # empty: the lease is gone
    deadline = time.monotonic() + 3
    while redis_server.client().get(lease_key()) != holder:
        assert time.monotonic() < deadline, "the lease was not taken again"
        read_for(0.1)
    rest, _ = read_until_eos(conn)
    code, _, err = finish(proc)
    assert code == 0, err
    assert sum(len(f.ts) for f in media + rest) >= 188 * 2600
    assert redis_server.client().get(lease_key()) is None


def test_publish_redis_unreachable(relay):
    code, _, err = finish(publish(relay, "--redis-url", "redis://127.0.0.1:1",
                                  "--file", fixture("aac_10s.ts"), "--connect-timeout", "1s"))
    assert code == 4 and "does not answer" in err


# --------------------------------------------------------------------------
# subscribe

def serve_file(conn, data, per_frame=100, eos=True):
    """Sends <data> as the stream: PUBLISH, MEDIA frames (the first a
    KEYFRAME), EOS."""
    conn.send(w.publish(STREAM, "ingest-1:7f3a9c", "ingest-1", "srt", "203.0.113.7:50114",
                        int(time.time() * 1e6)))
    pk = packets(data)
    for i in range(0, len(pk), per_frame):
        flags = w.F_KEYFRAME if i == 0 else 0
        conn.send(w.media(b"".join(pk[i:i + per_frame]), flags, 0, int(time.time() * 1e6)))
    if eos:
        conn.send(w.eos(1, "publisher stopped"))


def serve_in_thread(conn, data, **kw):
    """serve_file() beside the test, which meanwhile drains slpcat's stdout;
    a peer that hangs up early is fine."""
    def run():
        try:
            serve_file(conn, data, **kw)
            while conn.recv() is not None:   # as a relay does: close when the peer does
                pass
            conn.close()
        except (OSError, w.Invalid):
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def subscribe(relay, *args):
    return slpcat("subscribe", "--relay", relay.addr, "--stream", STREAM, *args)


def test_subscribe_writes_the_stream(relay):
    data = fixture("h264_aac_10s.ts").read_bytes()
    proc = subscribe(relay, "--wait", "5", "--from", "live")
    conn = relay.accept()
    _, req = handshake(conn, w.SUBSCRIBE)
    assert req.name == b"cam1" and req.start == w.START_LIVE and req.wait_ms == 5000
    serve_in_thread(conn, data)
    code, out, err = finish(proc)
    assert code == 0, err
    assert out == data
    assert "end of stream: ended: publisher stopped" in err
    assert "publisher ingest-1:7f3a9c on ingest-1 via srt from 203.0.113.7:50114" in err


def test_subscribe_stops_after_frames(relay):
    data = fixture("aac_10s.ts").read_bytes()
    proc = subscribe(relay, "--frames", "3")
    conn = relay.accept()
    handshake(conn, w.SUBSCRIBE)
    serve_in_thread(conn, data, per_frame=10, eos=False)
    code, out, _ = finish(proc)
    assert code == 0 and out == data[:3 * 10 * 188]


def test_subscribe_not_found(relay):
    proc = subscribe(relay)
    conn = relay.accept()
    _, req = handshake(conn, w.SUBSCRIBE, answer=False)
    assert req.wait_ms == 0 and req.start == w.START_KEYFRAME
    conn.send(w.hello(w.ROLE_RELAY, "relay-test"))
    refuse(conn, "not_found", "stream cam1 is not live")
    code, out, err = finish(proc)
    assert code == 3 and out == b""
    assert "slpcat: relay refused SUBSCRIBE: not_found: stream cam1 is not live" in err


def test_subscribe_keeps_a_waiting_link_alive(relay):
    proc = subscribe(relay, "--wait", "30", "--idle-timeout", "8s")
    conn = relay.accept()
    handshake(conn, w.SUBSCRIBE)
    t0 = time.monotonic()
    f = conn.recv()                                  # nothing to send yet: slpcat PINGs
    assert f.type == w.PING and 4 <= time.monotonic() - t0 <= 7
    conn.send(w.ping(f.token, pong=True))
    serve_in_thread(conn, fixture("aac_10s.ts").read_bytes())
    assert finish(proc)[0] == 0


@pytest.mark.parametrize("bad, code_name", [
    (w.frame(0x42, b"\0" * 8), "unknown_type"),
    (b"\x00\x00\x00\x08\x02\x07\x00\x00" + b"\0" * 8, "unsupported_version"),
    (b"\x00\x10\x00\x00\x01\x05\x00\x00", "too_large"),
    (w.media(b"\x47" + b"\0" * 187), "unexpected"),          # MEDIA before PUBLISH
    (w.subscribe("x"), "unexpected"),
])
def test_subscribe_refuses_bad_frames(relay, bad, code_name):
    proc = subscribe(relay)
    conn = relay.accept()
    handshake(conn, w.SUBSCRIBE)
    conn.send(bad)
    answer = conn.recv()
    assert answer.type == w.ERROR and w.ERRORS[answer.code] == code_name
    expect_close(conn)
    code, _, err = finish(proc)
    assert code == 5 and "bad frame from the relay" in err
