"""The relay's Redis registry (docs/redis.md): records with a TTL of two
heartbeats, stream.start and stream.stop on sluice:events, expiry after
kill -9, media through a Redis outage and the registry back after it."""
import json
import threading
import time

import pytest

import slpwire as w
from conftest import wait_for
from media import finish, fixture
from relay_fixtures import (HEARTBEAT_MS, Collector, lease, metric, publish, raw_publisher,
                            raw_subscriber, start_relay, stream_info, subscribe, ts_packets)

STREAM = "cam1"
TTL_MS = 2 * HEARTBEAT_MS


class Events:
    """Messages on sluice:events, gathered in a thread."""

    def __init__(self, redis_server):
        self.pubsub = redis_server.client().pubsub()
        self.pubsub.subscribe("sluice:events")
        self.messages = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.pubsub.subscribed, what="the events subscription")

    def _run(self):
        while not self.stop:
            try:
                m = self.pubsub.get_message(timeout=0.1)
            except Exception:                       # Redis stopped under us
                return
            if m and m["type"] == "message":
                self.messages.append(json.loads(m["data"]))

    def of(self, type_):
        return [m for m in self.messages if m["type"] == type_]

    def close(self):
        self.stop = True
        self.thread.join(2)


@pytest.fixture
def events(redis_server):
    e = Events(redis_server)
    yield e
    e.close()


def test_records_and_events(daemons, redis_server, events):
    relay = start_relay(daemons, redis_server)
    r = redis_server.client()
    rec = json.loads(wait_for(lambda: r.get(f"sluice:relay:{relay.node}"), what="relay record"))
    assert rec["id"] == relay.node and rec["address"] == relay.slp
    assert rec["streams"] == 0 and rec["subscribers"] == 0
    assert 0 < r.pttl(f"sluice:relay:{relay.node}") <= TTL_MS
    lease(redis_server, STREAM, "ingest-1/7")
    pub = raw_publisher(relay, STREAM, "ingest-1/7")
    sub = raw_subscriber(relay, STREAM)
    rec = json.loads(wait_for(lambda: r.get(f"sluice:stream:{STREAM}"), what="stream record"))
    assert rec == {"name": STREAM, "relay": relay.slp, "relay_id": relay.node,
                   "ingest": "test-ingest", "protocol": "srt", "client": "203.0.113.7:5000",
                   "publisher": "ingest-1/7", "started_at": rec["started_at"]}
    assert rec["started_at"].endswith("Z")
    wait_for(lambda: events.of("stream.start"), what="stream.start")
    (start,) = events.of("stream.start")
    assert start["stream"] == STREAM and start["relay"] == relay.slp
    assert start["publisher"] == "ingest-1/7" and start["ingest"] == "test-ingest"
    assert start["protocol"] == "srt" and start["relay_id"] == relay.node
    # refreshed every heartbeat, never older than two
    for _ in range(4):
        time.sleep(HEARTBEAT_MS / 1000)
        assert 0 < r.pttl(f"sluice:stream:{STREAM}") <= TTL_MS
    wait_for(lambda: json.loads(r.get(f"sluice:relay:{relay.node}"))["subscribers"] == 1,
             what="the relay record counting the subscriber")
    assert json.loads(r.get(f"sluice:relay:{relay.node}"))["streams"] == 1
    col = Collector(sub)
    pub.send(w.media(ts_packets(2), w.F_KEYFRAME, 0, 1) + w.eos(1, "done"))
    col.wait()
    wait_for(lambda: events.of("stream.stop"), what="stream.stop")
    (stop,) = events.of("stream.stop")
    assert stop["stream"] == STREAM and stop["reason"] == "ended"
    assert r.get(f"sluice:stream:{STREAM}") is None        # gone at once, not at expiry
    assert len(events.of("stream.start")) == 1


def test_keys_expire_after_kill_9(daemons, redis_server):
    relay = start_relay(daemons, redis_server)
    r = redis_server.client()
    lease(redis_server, STREAM, "ingest-1/7")
    pub = raw_publisher(relay, STREAM, "ingest-1/7")
    wait_for(lambda: r.exists(f"sluice:stream:{STREAM}", f"sluice:relay:{relay.node}") == 2,
             what="both records")
    relay.kill()
    t0 = time.monotonic()
    wait_for(lambda: r.exists(f"sluice:stream:{STREAM}", f"sluice:relay:{relay.node}") == 0,
             timeout=5, interval=0.02, what="the records to expire")
    assert time.monotonic() - t0 <= TTL_MS / 1000 + 0.2
    pub.close()


def test_media_flows_while_redis_is_down(daemons, redis_server, events, tmp_path):
    relay = start_relay(daemons, redis_server)
    r = redis_server.client()
    lease(redis_server, STREAM, "ingest-1/7")
    out = tmp_path / "out.ts"
    sub = subscribe(relay, STREAM, out, "--wait", "10")
    pub = publish(relay, STREAM, "ingest-1/7", fixture("h264_aac_10s.ts"), "--rate", "6000000")
    wait_for(lambda: r.get(f"sluice:stream:{STREAM}"), what="the stream record")
    events.close()
    redis_server.stop()
    wait_for(lambda: not relay.ready(), what="/readyz to say Redis is gone")
    assert relay.metrics()["sluice_relay_redis_up"] == 0
    before = stream_info(relay, STREAM)["subscribers"][0]["frames"]
    time.sleep(1.5)                                        # longer than the record's TTL
    after = stream_info(relay, STREAM)["subscribers"][0]["frames"]
    assert after > before + 20                             # media goes on
    redis_server.start()                                   # empty, as after a crash
    r = redis_server.client()
    wait_for(relay.ready, timeout=10, what="the relay back on Redis")
    rec = json.loads(wait_for(lambda: r.get(f"sluice:stream:{STREAM}"), timeout=3,
                              what="the stream record back"))
    assert rec["relay_id"] == relay.node
    wait_for(lambda: r.get(f"sluice:relay:{relay.node}"), timeout=3, what="the relay record back")
    assert finish(pub)[0] == 0
    code, _, err = finish(sub)
    assert code == 0, err
    assert "discontinuity" not in err
    assert metric(relay, "sluice_relay_dropped_frames_total") == 0


def test_start_missed_while_down_is_published_on_return(daemons, redis_server):
    """A publisher that reconnected while Redis was unreachable is announced
    with stream.start once Redis answers again.

    Redis is made unreachable by pausing every client (the relay's commands
    time out and it counts Redis as down) rather than by stopping it, so that
    the test's subscription is in place before the relay can announce
    anything: after a restart the relay could reconnect and publish before a
    new subscription exists."""
    relay = start_relay(daemons, redis_server)
    lease(redis_server, STREAM, "ingest-1/7")
    pub = raw_publisher(relay, STREAM, "ingest-1/7")
    events = Events(redis_server)
    try:
        # A pause that ends by itself: under ALL, even CLIENT UNPAUSE would wait.
        # The relay notices within a PING interval plus a command timeout (4 s).
        redis_server.client().execute_command("CLIENT", "PAUSE", "9000", "ALL")
        wait_for(lambda: not relay.ready(), what="the relay to notice Redis is gone")
        pub.close()
        wait_for(lambda: stream_info(relay, STREAM)["state"] == "lost", what="the stream lost")
        pub = raw_publisher(relay, STREAM, "ingest-1/7")       # known here: accepted
        assert "Redis unreachable: accepting publisher ingest-1/7" in relay.log_text()
        wait_for(lambda: events.of("stream.start"), timeout=20, what="the missed stream.start")
        assert events.of("stream.start")[0]["publisher"] == "ingest-1/7"
    finally:
        events.close()
    pub.close()


def test_another_relays_record_is_left_alone(daemons, redis_server, events):
    """The stream moved to another relay (its record names that relay): the
    end of the stream here neither deletes that record nor says stream.stop."""
    relay = start_relay(daemons, redis_server, PUBLISHER_GRACE="500ms")
    r = redis_server.client()
    lease(redis_server, STREAM, "ingest-1/7")
    pub = raw_publisher(relay, STREAM, "ingest-1/7")
    wait_for(lambda: r.get(f"sluice:stream:{STREAM}"), what="the stream record")
    pub.close()                                            # lost here...
    wait_for(lambda: stream_info(relay, STREAM)["state"] == "lost", what="the stream lost")
    other = json.dumps({"name": STREAM, "relay": "10.0.0.9:7700", "relay_id": "relay-9"})
    r.set(f"sluice:stream:{STREAM}", other, px=30000)      # ...and live on relay-9
    wait_for(lambda: stream_info(relay, STREAM) is None, what="the grace to run out")
    time.sleep(0.3)
    assert r.get(f"sluice:stream:{STREAM}") == other
    assert events.of("stream.stop") == []
