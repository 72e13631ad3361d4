"""Publisher changes, as subscribers see them (docs/relay.md): the lease
holder dropping and reconnecting, a half-open connection replaced, a
takeover by a new lease holder (announced by a PUBLISH, or found in Redis at
a heartbeat), a publisher that never comes back, and Redis down when a
publisher reconnects, within the grace or after it (the relay remembers the
last publisher of each name, until Redis says otherwise)."""
import time

import pytest

import slpwire as w
from conftest import wait_for
from media import decode_errors, finish, fixture
from relay_fixtures import (HEARTBEAT_MS, Client, Collector, first_video_frame, lease, metric,
                            publish, raw_publisher, raw_subscriber, start_relay, stream_info,
                            subscribe, ts_packets)

STREAM = "cam1"


@pytest.fixture
def relay(daemons, redis_server):
    return start_relay(daemons, redis_server, PUBLISHER_GRACE="3s")


def gop(pts, frames=3, flags=0):
    """A keyframe frame and <frames> - 1 others."""
    out = w.media(ts_packets(4), w.F_KEYFRAME | flags, pts, int(time.time() * 1e6))
    for i in range(1, frames):
        out += w.media(ts_packets(2), 0, -1, int(time.time() * 1e6))
    return out


def media_of(frames):
    return [f for f in frames if f.type == w.MEDIA]


def test_drop_and_reconnect_with_slpcat(relay, redis_server, tmp_path):
    """A real publisher is killed mid-stream and its lease holder comes back:
    the subscriber stays, gets the PUBLISH again and a DISCONTINUITY
    keyframe, and the whole output decodes."""
    lease(redis_server, STREAM, "ingest-1/7")
    out = tmp_path / "out.ts"
    sub = subscribe(relay, STREAM, out, "--wait", "10", "--log-level", "info")
    first = publish(relay, STREAM, "ingest-1/7", fixture("h264_aac_10s.ts"))
    wait_for(lambda: (stream_info(relay, STREAM) or {}).get("keyframes_in", 0) >= 2,
             what="two keyframes")
    first.kill()                                     # no EOS: the connection just goes
    finish(first)
    wait_for(lambda: stream_info(relay, STREAM)["state"] == "lost", what="the stream lost")
    again = publish(relay, STREAM, "ingest-1/7", fixture("h264_aac_10s.ts"), "--fast")
    assert finish(again)[0] == 0
    code, _, err = finish(sub)
    assert code == 0, err
    assert err.count("stream is live: publisher ingest-1/7") == 2
    assert err.count("discontinuity at PTS") == 1
    assert "end of stream: ended" in err
    assert first_video_frame(out) == (1, "I")
    assert metric(relay, "sluice_relay_publisher_changes_total", kind="reconnect") == 1


def test_reconnect_replaces_a_half_open_connection(relay, redis_server):
    lease(redis_server, STREAM, "ingest-1/7")
    old = raw_publisher(relay, STREAM, "ingest-1/7")
    sub = raw_subscriber(relay, STREAM)
    col = Collector(sub)
    old.send(gop(0))
    wait_for(lambda: len(media_of(col.frames)) == 3, what="the first GOP")
    new = raw_publisher(relay, STREAM, "ingest-1/7")         # the old one is still open
    f = old.expect(w.ERROR)
    assert w.ERRORS[f.code] == "replaced"
    assert f.text == b"replaced by a new connection of ingest-1/7"
    assert old.recv() is None
    new.send(w.media(ts_packets(1), 0, -1, 1) + gop(9000) + w.eos(1, "bye"))
    frames = col.wait()
    types = [f.type for f in frames]
    assert types == [w.PUBLISH] + [w.MEDIA] * 3 + [w.PUBLISH] + [w.MEDIA] * 3 + [w.EOS]
    after = frames[5]
    assert after.flags == w.F_KEYFRAME | w.F_DISCONTINUITY and after.pts == 9000
    assert after.ts == ts_packets(4)                          # the payload, unchanged
    assert new.recv() is None


def test_takeover_by_a_new_lease_holder(relay, redis_server):
    lease(redis_server, STREAM, "ingest-1/7")
    old = raw_publisher(relay, STREAM, "ingest-1/7")
    sub = raw_subscriber(relay, STREAM)
    col = Collector(sub)
    old.send(gop(0, frames=2))
    wait_for(lambda: len(media_of(col.frames)) == 2, what="the first GOP")
    lease(redis_server, STREAM, "ingest-2/3")                 # ingest takes it over
    new = raw_publisher(relay, STREAM, "ingest-2/3", node="ingest-2")
    f = old.expect(w.ERROR)
    assert w.ERRORS[f.code] == "replaced" and f.text == b"the lease of cam1 passed to ingest-2/3"
    new.send(w.media(ts_packets(1), 0, -1, 1) + gop(90000, frames=2) + w.eos(1))
    frames = col.wait()
    publishes = [f for f in frames if f.type == w.PUBLISH]
    assert [p.publisher for p in publishes] == [b"ingest-1/7", b"ingest-2/3"]
    assert publishes[1].node == b"ingest-2"
    m = media_of(frames)
    assert [x.flags for x in m] == [w.F_KEYFRAME, 0, w.F_KEYFRAME | w.F_DISCONTINUITY, 0]
    assert metric(relay, "sluice_relay_publisher_changes_total", kind="takeover") == 1
    # the old holder cannot come back: it no longer holds the lease
    c = Client(relay)
    c.send(w.hello(w.ROLE_PUBLISHER, "t") + w.publish(STREAM, "ingest-1/7"))
    f = c.expect_error("conflict")
    assert f.text == b"lease of cam1 held by ingest-2/3"


def test_lease_moved_elsewhere_found_at_a_heartbeat(relay, redis_server):
    """The lease passes to a publisher on another relay: within a heartbeat
    this relay replaces its publisher and waits; the grace ends the stream
    for its subscribers."""
    lease(redis_server, STREAM, "ingest-1/7")
    pub = raw_publisher(relay, STREAM, "ingest-1/7")
    sub = raw_subscriber(relay, STREAM)
    col = Collector(sub)
    pub.send(gop(0))
    wait_for(lambda: len(media_of(col.frames)) == 3, what="the first GOP")
    lease(redis_server, STREAM, "ingest-9/1")
    t0 = time.monotonic()
    f = pub.expect(w.ERROR)
    assert w.ERRORS[f.code] == "replaced" and f.text == b"the lease of cam1 passed to ingest-9/1"
    assert time.monotonic() - t0 < 2 * HEARTBEAT_MS / 1000 + 0.5
    frames = col.wait()
    assert frames[-1].type == w.EOS and frames[-1].reason == 2      # publisher_lost
    assert 2.5 < time.monotonic() - t0 < 5


def test_publisher_lost_for_good(relay, redis_server, tmp_path):
    lease(redis_server, STREAM, "ingest-1/7")
    out = tmp_path / "out.ts"
    sub = subscribe(relay, STREAM, out, "--wait", "10")
    pub = publish(relay, STREAM, "ingest-1/7", fixture("h264_aac_10s.ts"))
    wait_for(lambda: (stream_info(relay, STREAM) or {}).get("keyframes_in", 0) >= 2,
             what="two keyframes")
    pub.kill()
    finish(pub)
    t0 = time.monotonic()
    code, _, err = finish(sub)
    assert code == 0
    assert "end of stream: publisher_lost: publisher ingest-1/7 did not come back within 3000 ms" in err
    assert 2.7 < time.monotonic() - t0 < 4.5
    assert decode_errors(out) == []
    assert stream_info(relay, STREAM) is None
    assert redis_server.client().get(f"sluice:stream:{STREAM}") is None


def test_redis_down_known_publisher_may_reconnect(relay, redis_server):
    lease(redis_server, STREAM, "ingest-1/7")
    pub = raw_publisher(relay, STREAM, "ingest-1/7")
    sub = raw_subscriber(relay, STREAM)
    col = Collector(sub)
    pub.send(gop(0))
    wait_for(lambda: len(media_of(col.frames)) == 3, what="the first GOP")
    redis_server.stop()
    wait_for(lambda: not relay.ready(), what="the relay to notice Redis is gone")
    pub.close()                                               # dropped...
    wait_for(lambda: stream_info(relay, STREAM)["state"] == "lost", what="the stream lost")
    again = raw_publisher(relay, STREAM, "ingest-1/7")        # ...and back: known here
    again.send(gop(9000, frames=2))
    # another id cannot be checked, and is not known: unavailable
    c = Client(relay)
    c.send(w.hello(w.ROLE_PUBLISHER, "t") + w.publish(STREAM, "ingest-2/3"))
    f = c.expect_error("unavailable")
    assert b"Redis unreachable" in f.text
    c = Client(relay)
    c.send(w.hello(w.ROLE_PUBLISHER, "t") + w.publish("fresh", "ingest-1/7"))
    c.expect_error("unavailable")                             # known for cam1 only
    wait_for(lambda: len(media_of(col.frames)) == 5, what="media after the reconnect")
    assert media_of(col.frames)[3].flags == w.F_KEYFRAME | w.F_DISCONTINUITY
    redis_server.start()                                      # the registry catches up
    r = redis_server.client()
    wait_for(lambda: r.get(f"sluice:stream:{STREAM}"), timeout=10, what="the record back")
    again.send(w.eos(1))
    assert col.wait()[-1].type == w.EOS


def test_redis_down_known_publisher_comes_back_after_the_grace(relay, redis_server, tmp_path):
    """Issue 4: "While Redis is unreachable, a publisher id the relay already
    knows may reconnect", even once its stream has ended here (its link was
    down longer than publisher-grace, 3 s): the relay remembers the last
    publisher of each name for known-publisher-ttl (1 min). Another id is
    still refused, and an EOS ends what the relay knows."""
    lease(redis_server, STREAM, "ingest-1/7")
    pub = raw_publisher(relay, STREAM, "ingest-1/7")
    col = Collector(raw_subscriber(relay, STREAM))
    pub.send(gop(0))
    wait_for(lambda: len(media_of(col.frames)) == 3, what="the first GOP")
    redis_server.stop()
    wait_for(lambda: not relay.ready(), what="the relay to notice Redis is gone")
    pub.close()                                               # its link goes down...
    assert col.wait()[-1].type == w.EOS and col.frames[-1].reason == 2      # publisher_lost
    wait_for(lambda: stream_info(relay, STREAM) is None, what="the stream gone")
    # ...for longer than the grace; another id is not known, and cannot be checked
    c = Client(relay)
    c.send(w.hello(w.ROLE_PUBLISHER, "t") + w.publish(STREAM, "ingest-2/3"))
    f = c.expect_error("unavailable")
    assert f.text == (b"cannot check the publish lease of cam1 (Redis unreachable) and "
                      b"publisher ingest-2/3 is not known here")
    # the known one comes back: a real file, decoded whole by a new subscriber
    out = tmp_path / "out.ts"
    sub = subscribe(relay, STREAM, out, "--wait", "10")
    wait_for(lambda: (stream_info(relay, STREAM) or {}).get("subscriber_count") == 1,
             what="the subscriber waiting")
    again = publish(relay, STREAM, "ingest-1/7", fixture("h264_aac_10s.ts"), "--fast")
    code, _, err = finish(again)
    assert code == 0, err
    code, _, err = finish(sub)
    assert code == 0, err
    assert "stream is live: publisher ingest-1/7" in err and "end of stream: ended" in err
    assert first_video_frame(out) == (1, "I")
    assert decode_errors(out) == []
    assert ("stream cam1: Redis unreachable: accepting publisher ingest-1/7, the last one "
            "seen publishing it here") in relay.log_text()
    # it ended the stream with EOS: not known any more
    c = Client(relay)
    c.send(w.hello(w.ROLE_PUBLISHER, "t") + w.publish(STREAM, "ingest-1/7"))
    c.expect_error("unavailable")
    redis_server.start()
    wait_for(relay.ready, timeout=10, what="the relay to see Redis again")


def test_a_lease_answer_overrules_what_the_relay_remembers(relay, redis_server):
    """Once Redis has said that the lease of a name is someone else's, the
    relay no longer counts its last publisher as known for the next outage."""
    lease(redis_server, STREAM, "ingest-1/7")
    pub = raw_publisher(relay, STREAM, "ingest-1/7")
    pub.send(gop(0))
    pub.close()
    wait_for(lambda: stream_info(relay, STREAM) is None, what="the grace to run out")
    lease(redis_server, STREAM, "ingest-2/3")
    c = Client(relay)
    c.send(w.hello(w.ROLE_PUBLISHER, "t") + w.publish(STREAM, "ingest-1/7"))
    assert c.expect_error("conflict").text == b"lease of cam1 held by ingest-2/3"
    redis_server.stop()
    wait_for(lambda: not relay.ready(), what="the relay to notice Redis is gone")
    c = Client(relay)
    c.send(w.hello(w.ROLE_PUBLISHER, "t") + w.publish(STREAM, "ingest-1/7"))
    c.expect_error("unavailable")
    redis_server.start()
    wait_for(relay.ready, timeout=10, what="the relay to see Redis again")
