"""sluice-relay with real publishers and subscribers (slpcat, and SLP by
hand where a test must see every frame), real Redis and ffprobe: fan-out,
the GOP cache, waiting subscribers, refusals, malformed frames and the
graceful stop. Publisher changes are in test_relay_publisher.py, Redis in
test_relay_redis.py, slow subscribers in test_relay_slow.py."""
import re
import signal
import time

import pytest
import requests

import slpwire as w
from conftest import wait_for
from media import decode_errors, finish, fixture
from relay_fixtures import (Client, Collector, codecs_and_duration, first_video_frame, lease,
                            metric, probe_counts, publish, raw_publisher, raw_subscriber,
                            start_relay, stream_info, streams, subscribe, ts_packets)

STREAM = "cam1"


@pytest.fixture
def relay(daemons, redis_server):
    return start_relay(daemons, redis_server)


def test_fan_out_a_real_file_to_several_readers(relay, redis_server, tmp_path):
    """Three slpcat readers wait for the stream, a publisher sends the 10 s
    H.264/AAC fixture: every output is valid, complete and the same."""
    src = fixture("h264_aac_10s.ts")
    lease(redis_server, STREAM, "ingest-1/7")
    outs = [tmp_path / f"out{i}.ts" for i in range(3)]
    subs = [subscribe(relay, STREAM, out, "--wait", "10") for out in outs]
    quitter = subscribe(relay, STREAM, tmp_path / "quitter.ts", "--wait", "10", "--frames", "30")
    wait_for(lambda: len((stream_info(relay, STREAM) or {}).get("subscribers", [])) == 4,
             what="four waiting subscribers")
    assert stream_info(relay, STREAM)["state"] == "waiting"
    pub = publish(relay, STREAM, "ingest-1/7", src, "--fast")
    code, _, err = finish(pub)
    assert code == 0, err
    assert finish(quitter)[0] == 0                        # one leaves early: nobody minds
    for proc in subs:
        code, _, err = finish(proc)
        assert code == 0, err
        assert "end of stream: ended: end of input" in err
        assert "stream is live: publisher ingest-1/7 on test-ingest" in err
    want = probe_counts(src)
    _, src_duration = codecs_and_duration(src)
    for out in outs:
        codecs, duration = codecs_and_duration(out)
        assert codecs == ["aac", "h264"]
        assert abs(duration - src_duration) < 0.2, (duration, src_duration)
        assert probe_counts(out) == want
        assert decode_errors(out) == []
    assert outs[0].read_bytes() == outs[1].read_bytes() == outs[2].read_bytes()
    assert metric(relay, "sluice_relay_dropped_frames_total") == 0
    assert stream_info(relay, STREAM) is None            # ended and gone


def test_late_joiner_starts_on_a_keyframe(relay, redis_server, tmp_path):
    """One reader joins mid-stream from the GOP cache (--from keyframe),
    another at the next keyframe (--from live): both decode from an IDR."""
    lease(redis_server, STREAM, "ingest-1/7")
    # paced (about twice real time, to keep the test short): GOPs come one by one
    pub = publish(relay, STREAM, "ingest-1/7", fixture("h264_aac_10s.ts"), "--rate", "6000000")
    wait_for(lambda: (stream_info(relay, STREAM) or {}).get("keyframes_in", 0) >= 3,
             what="three keyframes")
    time.sleep(0.5)                                       # mid-GOP
    cached, live = tmp_path / "cached.ts", tmp_path / "live.ts"
    a = subscribe(relay, STREAM, cached, "--from", "keyframe")
    b = subscribe(relay, STREAM, live, "--from", "live")
    assert finish(pub)[0] == 0
    for proc in (a, b):
        code, _, err = finish(proc)
        assert code == 0, err
    for out in (cached, live):
        assert first_video_frame(out) == (1, "I")
        assert sorted(codecs_and_duration(out)[0]) == ["aac", "h264"]
        assert decode_errors(out) == []
    # the cached start is the keyframe before the join, the live one the next
    assert cached.stat().st_size > live.stat().st_size
    assert codecs_and_duration(cached)[1] - codecs_and_duration(live)[1] == pytest.approx(1, abs=0.15)


def test_subscriber_waits_for_the_stream(relay, redis_server):
    sub = raw_subscriber(relay, STREAM, wait_ms=10000)
    col = Collector(sub)
    time.sleep(0.5)
    lease(redis_server, STREAM, "pub-1")
    pub = raw_publisher(relay, STREAM, "pub-1")
    pub.send(w.media(ts_packets(3), 0, 0, 1) +                       # before any keyframe
             w.media(ts_packets(4), w.F_KEYFRAME, 9000, 2) + w.media(ts_packets(2), 0, -1, 3) +
             w.eos(1, "done"))
    frames = col.wait()
    assert [f.type for f in frames] == [w.PUBLISH, w.MEDIA, w.MEDIA, w.EOS]
    assert frames[0].publisher == b"pub-1" and frames[0].protocol == b"srt"
    assert frames[1].flags == w.F_KEYFRAME and frames[1].pts == 9000 and frames[1].wall_us == 2
    assert frames[2].ts == ts_packets(2)
    assert frames[3].reason == 1 and frames[3].text == b"done"
    assert sub.recv() is None
    assert pub.recv() is None                             # the relay closes after EOS


def test_subscribe_not_found(relay):
    c = Client(relay)
    c.send(w.hello(w.ROLE_SUBSCRIBER, "t") + w.subscribe("nothing", w.START_KEYFRAME, 0))
    f = c.expect_error("not_found")
    assert f.text == b"stream nothing is not live"
    c = raw_subscriber(relay, "nothing", wait_ms=600)     # waits, then gives up
    t0 = time.monotonic()
    f = c.expect_error("not_found", after_hello=False)
    assert 0.5 <= time.monotonic() - t0 < 1.5
    assert stream_info(relay, "nothing") is None          # nothing left behind


def test_publish_refused_without_the_lease(relay, redis_server):
    c = Client(relay)
    c.send(w.hello(w.ROLE_PUBLISHER, "t") + w.publish(STREAM, "pub-1"))
    f = c.expect_error("conflict")
    assert f.text == b"nobody holds the publish lease of cam1"
    lease(redis_server, STREAM, "ingest-2/91c2")
    code, _, err = finish(publish(relay, STREAM, "pub-1", fixture("aac_10s.ts")))
    assert code == 3
    assert "relay refused PUBLISH: conflict: lease of cam1 held by ingest-2/91c2" in err
    assert metric(relay, "sluice_relay_errors_sent_total", code="conflict") == 2


def test_eos_reason_is_forwarded(relay, redis_server):
    lease(redis_server, STREAM, "pub-1")
    pub = raw_publisher(relay, STREAM, "pub-1")
    sub = raw_subscriber(relay, STREAM)
    col = Collector(sub)
    pub.send(w.media(ts_packets(2), w.F_KEYFRAME, 0, 1) + w.eos(4, "key rotated"))
    frames = col.wait()
    assert frames[-1].type == w.EOS and frames[-1].reason == 4 and frames[-1].text == b"key rotated"


@pytest.mark.parametrize("version", [2, 255])
def test_a_client_of_a_later_version_goes_on_in_version_1(relay, redis_server, version):
    """proto/SLP.md section 5: a client that speaks up to a later version says
    so in its HELLO (still a v1 frame); the relay answers with its HELLO
    stating 1, and the session goes on in version 1: the SUBSCRIBE and the
    PUBLISH are accepted and media flows. (slpwire reads v1 headers only, so
    every frame the relay sends is checked to be version 1 too.)"""
    lease(redis_server, STREAM, "pub-1")
    sub = Client(relay)
    sub.send(w.hello(w.ROLE_SUBSCRIBER, "sub-later", "later/9", version=version)
             + w.subscribe(STREAM, w.START_KEYFRAME, 10000))
    hello = sub.expect(w.HELLO, role=w.ROLE_RELAY, version=1)
    assert hello.raw[4] == 1                              # the header's version byte
    sub.expect(w.ACCEPT, request=w.SUBSCRIBE)
    col = Collector(sub)
    pub = Client(relay)
    pub.send(w.hello(w.ROLE_PUBLISHER, "pub-later", "later/9", version=version)
             + w.publish(STREAM, "pub-1"))
    pub.expect(w.HELLO, role=w.ROLE_RELAY, version=1)
    pub.expect(w.ACCEPT, request=w.PUBLISH)
    pub.send(w.media(ts_packets(4), w.F_KEYFRAME, 0, 1) + w.media(ts_packets(2), 0, -1, 2)
             + w.eos(1, "done"))
    frames = col.wait()
    assert [f.type for f in frames] == [w.PUBLISH, w.MEDIA, w.MEDIA, w.EOS]
    assert frames[1].ts == ts_packets(4) and frames[2].ts == ts_packets(2)
    assert pub.recv() is None                             # the relay closes after EOS
    assert metric(relay, "sluice_relay_errors_sent_total") == 0

# --------------------------------------------------------------------------
# Malformed frames: an ERROR with the decoder's code, the connection closed,
# and nobody else affected.

def _hello_then(*frames):
    return w.hello(w.ROLE_SUBSCRIBER, "bad") + b"".join(frames)


def _bad_subscribe(name):
    return w.frame(w.SUBSCRIBE, bytes([len(name)]) + name + b"\x01\x00\x00\x00\x00")


HELLO = w.hello(w.ROLE_PUBLISHER, "bad")
MALFORMED = [
    # (what is sent, expected ERROR, whether the relay's HELLO (and ACCEPT) come first)
    ("bad version", b"\x00\x00\x00\x04\x02\x01\x00\x00\x01\x01\x01x", "unsupported_version", False),
    ("unknown type", w.frame(0x42, b"\0" * 8), "unknown_type", False),
    ("oversized length", b"\x00\x20\x00\x00\x01\x05\x00\x00", "too_large", False),
    ("control frame over 1 KiB", b"\x00\x00\x08\x00\x01\x01\x00\x00", "too_large", False),
    ("relay role", w.hello(w.ROLE_RELAY, "bad"), "bad_frame", False),
    ("MEDIA first", w.media(ts_packets(1)), "unexpected", False),
    ("bad name", _hello_then(_bad_subscribe(b"no/slash")), "bad_name", True),
    ("empty name", _hello_then(_bad_subscribe(b"")), "bad_name", True),
    ("second HELLO", _hello_then(w.hello(w.ROLE_SUBSCRIBER, "again")), "unexpected", True),
    ("SUBSCRIBE from a publisher", HELLO + w.subscribe(STREAM), "unexpected", True),
    ("MEDIA before ACCEPT", HELLO + w.publish(STREAM, "pub-1") + w.media(ts_packets(1)),
     "unexpected", True),
    ("MEDIA from a subscriber", _hello_then(w.subscribe("idle", wait_ms=5000),
                                            w.media(ts_packets(1))), "unexpected", "accepted"),
    ("MEDIA without sync bytes", None, "bad_frame", True),       # sent by a publisher below
    ("packet count", None, "bad_frame", True),
]


def test_malformed_frames_do_not_hurt_others(relay, redis_server, tmp_path):
    lease(redis_server, STREAM, "ingest-1/7")
    lease(redis_server, "other", "pub-x")
    out = tmp_path / "out.ts"
    sub = subscribe(relay, STREAM, out, "--wait", "10")
    pub = publish(relay, STREAM, "ingest-1/7", fixture("h264_aac_10s.ts"), "--rate", "8000000")
    for what, data, code, after_hello in MALFORMED:
        if data is None:                      # MEDIA checks need an accepted publisher
            c = raw_publisher(relay, "other", "pub-x")
            if what == "packet count":
                c.send(b"\x00\x00\x00\x20\x01\x05\x00\x00" + b"\0" * 32)
            else:
                c.send(w.media(ts_packets(2, first=0x47)[:188] + ts_packets(1, first=0x00)))
            f = c.expect_error(code, after_hello=False)
        else:
            c = Client(relay)
            c.send(data)
            f = c.expect_error(code, after_hello=bool(after_hello),
                               before=(w.ACCEPT,) if after_hello == "accepted" else ())
        assert f.text, what
    # a frame cut short, then garbage: the header was fine, the body is not
    c = Client(relay)
    hello = w.hello(w.ROLE_SUBSCRIBER, "slowpoke")
    c.send(hello[:10])
    time.sleep(0.3)
    c.send(b"\xff" * (len(hello) - 10))
    c.expect_error("bad_frame", after_hello=False)
    code, _, err = finish(pub)
    assert code == 0, err
    code, _, err = finish(sub)
    assert code == 0, err
    assert "discontinuity" not in err
    assert probe_counts(out) == probe_counts(fixture("h264_aac_10s.ts"))
    assert metric(relay, "sluice_relay_dropped_frames_total") == 0
    assert metric(relay, "sluice_relay_errors_sent_total") >= len(MALFORMED) + 1


def test_handshake_timeout(daemons, redis_server):
    relay = start_relay(daemons, redis_server, HANDSHAKE_TIMEOUT="700ms")
    c = Client(relay)
    t0 = time.monotonic()
    f = c.expect_error("timeout", after_hello=False)
    assert f.text == b"no HELLO within 700 ms"
    assert 0.6 < time.monotonic() - t0 < 1.5
    c = Client(relay)
    c.send(w.hello(w.ROLE_SUBSCRIBER, "t"))                # HELLO, then nothing
    f = c.expect_error("timeout")
    assert f.text == b"no request within 700 ms"


def test_overloaded(daemons, redis_server):
    relay = start_relay(daemons, redis_server, MAX_CONNECTIONS="2")
    held = [raw_subscriber(relay, STREAM, wait_ms=10000) for _ in range(2)]
    c = Client(relay)
    c.send(w.hello(w.ROLE_SUBSCRIBER, "t") + w.subscribe(STREAM, wait_ms=1000))
    f = c.expect_error("overloaded", after_hello=False)
    assert f.text == b"relay at its connection limit"
    for h in held:
        h.close()


def test_admin_streams(relay, redis_server):
    lease(redis_server, STREAM, "pub-1")
    pub = raw_publisher(relay, STREAM, "pub-1")
    pub.send(w.media(ts_packets(5), w.F_KEYFRAME, 0, 1) + w.media(ts_packets(3), 0, -1, 2))
    sub = raw_subscriber(relay, STREAM, wait_ms=0)
    wait_for(lambda: stream_info(relay, STREAM)["subscribers"][0]["frames"] == 2,
             what="the GOP at the subscriber")
    body = requests.get(relay.admin_url("/v1/streams"), timeout=2).json()
    assert body["relay"] == relay.node and body["address"] == relay.slp
    (s,) = body["streams"]
    assert s["name"] == STREAM and s["state"] == "live"
    assert s["publisher"]["id"] == "pub-1" and s["publisher"]["client"] == "203.0.113.7:5000"
    assert s["publisher"]["protocol"] == "srt" and s["publisher"]["frames"] == 2
    assert s["frames_in"] == 2 and s["keyframes_in"] == 1
    assert s["gop_cache"]["frames"] == 2
    (u,) = s["subscribers"]
    assert u["state"] == "live" and u["start"] == "keyframe" and u["node"] == "test-sub"
    assert u["queued_bytes"] == 0 and u["drops"] == 0 and u["gaps"] == 0
    assert requests.get(relay.admin_url("/v1/streams/nope"), timeout=2).status_code == 404
    assert metric(relay, "sluice_relay_publishers") == 1
    assert metric(relay, "sluice_relay_subscribers") == 1
    assert metric(relay, "sluice_relay_streams", state="live") == 1
    assert metric(relay, "sluice_relay_frames_out_total", stream=STREAM) == 2
    assert metric(relay, "sluice_relay_queue_limit_bytes") == 16 * 1024 * 1024
    assert requests.get(relay.admin_url("/readyz"), timeout=2).status_code == 200
    sub.close()
    pub.close()


def test_sigterm_ends_streams_cleanly(relay, redis_server):
    lease(redis_server, STREAM, "pub-1")
    pub = raw_publisher(relay, STREAM, "pub-1")
    pub.send(w.media(ts_packets(2), w.F_KEYFRAME, 0, 1))
    sub = raw_subscriber(relay, STREAM)
    waiter = raw_subscriber(relay, "later", wait_ms=30000)
    col, wcol = Collector(sub), Collector(waiter)
    wait_for(lambda: len(col.of_type(w.MEDIA)) == 1, what="media")
    r = redis_server.client()
    assert r.exists(f"sluice:stream:{STREAM}", f"sluice:relay:{relay.node}") == 2
    t0 = time.monotonic()
    relay.proc.send_signal(signal.SIGTERM)
    assert col.wait()[-1].type == w.EOS and col.frames[-1].reason == 3    # shutdown
    assert wcol.wait()[-1].type == w.EOS and wcol.frames[-1].reason == 3
    f = pub.expect(w.ERROR)
    assert w.ERRORS[f.code] == "going_away"
    pub.close()
    relay.stop()                                   # exits 0, clean sanitizer report
    assert time.monotonic() - t0 < 3
    assert r.exists(f"sluice:stream:{STREAM}", f"sluice:relay:{relay.node}") == 0


def test_metrics_pass_promtool(relay, redis_server):
    import shutil
    import subprocess
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed")
    lease(redis_server, STREAM, "pub-1")
    pub = raw_publisher(relay, STREAM, "pub-1")
    pub.send(w.media(ts_packets(2), w.F_KEYFRAME, 0, 1))
    sub = raw_subscriber(relay, STREAM)
    wait_for(lambda: stream_info(relay, STREAM)["subscribers"][0]["frames"] == 1, what="media")
    text = requests.get(relay.admin_url("/metrics"), timeout=5).text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    sub.close()
    pub.close()


def test_options_that_contradict_each_other_are_refused(redis_server):
    import os
    import subprocess
    from conftest import BIN
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update({"SLUICE_MAX_QUEUE": "1M", "SLUICE_GOP_CACHE_MAX": "1M",
                "SLUICE_REDIS_URL": redis_server.url, "SLUICE_LISTEN": "127.0.0.1:0",
                "SLUICE_ADMIN_LISTEN": "127.0.0.1:0"})
    r = subprocess.run([str(BIN / "sluice-relay")], env=env, capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1
    assert "gop-cache-max (1048576) must leave" in r.stderr


def test_many_subscribers_get_the_same_stream(relay, redis_server, tmp_path):
    """100 subscribers in one slpload process: every one gets every frame."""
    import json
    import subprocess
    from conftest import BIN
    lease(redis_server, STREAM, "ingest-1/7")
    load = subprocess.Popen([str(BIN / "slpload"), "subscribe", "--relay", relay.slp,
                             "--stream", STREAM, "--count", "100", "--duration", "20s",
                             "--per-reader"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: (stream_info(relay, STREAM) or {}).get("subscriber_count") == 100,
             what="100 subscribers")
    pub = publish(relay, STREAM, "ingest-1/7", fixture("h264_aac_10s.ts"), "--rate", "8000000")
    code, _, perr = finish(pub)
    assert code == 0, perr
    # how the annotator batches packets into frames follows the pacing, so
    # the count is the publisher's, not a constant
    sent = int(re.search(r"sent (\d+) frames \(10 keyframes\)", perr).group(1))
    out, err = load.communicate(timeout=30)
    report = json.loads(out)
    assert report["readers"] == 100 and report["eos"] == 100 and report["errors"] == 0
    assert report["gaps"] == 0
    frames = {r["frames"] for r in report["per_reader"]}
    keyframes = {r["keyframes"] for r in report["per_reader"]}
    assert len(frames) == 1 and keyframes == {10}
    # every frame but what came before the first IDR (the SDT, and so on)
    assert 0 <= sent - frames.pop() <= 2, (sent, report["per_reader"][0])
    assert len({r["bytes"] for r in report["per_reader"]}) == 1
    assert metric(relay, "sluice_relay_dropped_frames_total") == 0
