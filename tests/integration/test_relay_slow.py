"""Slow subscribers: one that reads nothing for 30 s must not hurt a fast
one, nor grow the relay's queue beyond max-queue, nor its memory (RSS, on
the plain build) by 64 MB; one that stays behind past slow-timeout is cut
off with ERROR too_slow, the stream's framing intact up to it."""
import os
import pathlib
import socket
import time

import pytest

import slpwire as w
from conftest import ROOT, Daemon, free_port, wait_for
from media import finish, fixture
from relay_fixtures import (Client, lease, metric, publish, start_relay, stream_info, subscribe,
                            codecs_and_duration)

STREAM = "cam1"
MAX_QUEUE = 2 * 1024 * 1024
STALL_SECONDS = 30
RELEASE_RELAY = ROOT / "build" / "release" / "bin" / "sluice-relay"


def rss_kb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def staller(relay, rcvbuf=16384):
    """A subscriber that completes the handshake and then reads nothing
    (it still PINGs, as the spec asks of a quiet peer)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    host, port = relay.slp.rsplit(":", 1)
    s.connect((host, int(port)))
    s.sendall(w.hello(w.ROLE_SUBSCRIBER, "staller") + w.subscribe(STREAM, w.START_KEYFRAME, 10000))
    return s


class Setup:
    """One relay with a publisher at 4 Mbps, a fast slpcat reader and a
    staller."""

    def __init__(self, relay, redis_server, tmp_path, tag):
        self.relay = relay
        lease(redis_server, STREAM, "ingest-1/7")
        self.out = tmp_path / f"fast-{tag}.ts"
        self.fast = subscribe(relay, STREAM, self.out, "--wait", "10")
        wait_for(lambda: (stream_info(relay, STREAM) or {}).get("subscriber_count") == 1,
                 what="the fast reader")
        self.pub = publish(relay, STREAM, "ingest-1/7", fixture("h264_aac_20s.ts"),
                           "--rate", "4000000", "--loop")
        wait_for(lambda: (stream_info(relay, STREAM) or {}).get("state") == "live",
                 what="the stream live")
        self.stall = staller(relay)
        self.peak = 0

    def sample(self):
        q = metric(self.relay, "sluice_relay_queued_bytes_max", stream=STREAM)
        self.peak = max(self.peak, q)
        assert q <= MAX_QUEUE, f"queue {q} over its bound"
        return q

    def subscribers(self):
        subs = stream_info(self.relay, STREAM)["subscribers"]
        fast = next(s for s in subs if s["node"] == "test-sub")
        slow = next(s for s in subs if s["node"] == "staller")
        return fast, slow

    def finish(self):
        info = stream_info(self.relay, STREAM)
        fast, slow = self.subscribers()
        self.pub.terminate()
        assert finish(self.pub)[0] == 0
        code, _, err = finish(self.fast)
        assert code == 0, err
        self.stall.close()
        return info, fast, slow


def test_a_reader_that_reads_nothing_for_30s(daemons, redis_server, tmp_path):
    settings = dict(MAX_QUEUE=str(MAX_QUEUE), GOP_CACHE_MAX="1M", SLOW_TIMEOUT="60s")
    setups = [Setup(start_relay(daemons, redis_server, name="asan", **settings), redis_server,
                    tmp_path, "asan")]
    plain = None
    if RELEASE_RELAY.exists():
        # the same again beside it on the plain build, whose RSS means something
        port = free_port()
        plain = Daemon("relay", {"SLUICE_LISTEN": f"127.0.0.1:{port}",
                                 "SLUICE_REDIS_URL": redis_server.url,
                                 "SLUICE_NODE_ID": "plain", "SLUICE_HEARTBEAT": "500ms",
                                 **{f"SLUICE_{k}": v for k, v in settings.items()}}, tmp_path)
        plain.binary = RELEASE_RELAY
        plain.start()
        plain.slp = f"127.0.0.1:{port}"
        stream2 = Setup(plain, redis_server, tmp_path, "plain")
        setups.append(stream2)
    else:
        print(f"\n*** {RELEASE_RELAY} is missing: the RSS check is SKIPPED (make build) ***")
    try:
        time.sleep(1)
        rss0 = rss_kb(plain.proc.pid) if plain else 0
        rss_peak = rss0
        t0 = time.monotonic()
        while time.monotonic() - t0 < STALL_SECONDS:
            time.sleep(0.5)
            for s in setups:
                s.sample()
                s.stall.sendall(w.ping(int(time.monotonic() * 1e6)))   # alive, not reading
            if plain:
                rss_peak = max(rss_peak, rss_kb(plain.proc.pid))
        for s in setups:
            info, fast, slow = s.finish()
            # the staller fell behind: its queue filled to the bound, frames were dropped
            assert s.peak > MAX_QUEUE / 2, s.peak
            assert slow["drops"] > 0 and slow["gaps"] >= 1
            assert slow["queued_bytes"] <= MAX_QUEUE
            # the fast reader got every frame from the first keyframe on
            assert fast["drops"] == 0 and fast["gaps"] == 0, fast
            assert info["frames_in"] - fast["frames"] <= 1, (info["frames_in"], fast["frames"])
            assert fast["frames"] > 30 * STALL_SECONDS
            assert codecs_and_duration(s.out)[0] == ["aac", "h264"]
            assert s.out.stat().st_size > 0.9 * 4e6 / 8 * STALL_SECONDS   # 4 Mbps, all of it
        if plain:
            grown = (rss_peak - rss0) / 1024
            print(f"\nrelay RSS {rss0 / 1024:.1f} MB -> peak {rss_peak / 1024:.1f} MB "
                  f"(+{grown:.1f} MB) with a {MAX_QUEUE >> 20} MiB queue bound")
            assert grown < 64
    finally:
        if plain:
            plain.stop()


def test_a_reader_behind_for_too_long_is_cut_off(daemons, redis_server, tmp_path):
    relay = start_relay(daemons, redis_server, MAX_QUEUE="1M", GOP_CACHE_MAX="256k",
                        SLOW_TIMEOUT="1s")
    lease(redis_server, STREAM, "ingest-1/7")
    out = tmp_path / "fast.ts"
    fast = subscribe(relay, STREAM, out, "--wait", "10")
    wait_for(lambda: (stream_info(relay, STREAM) or {}).get("subscriber_count") == 1,
             what="the fast reader")
    pub = publish(relay, STREAM, "ingest-1/7", fixture("h264_aac_20s.ts"), "--rate", "24000000",
                  "--loop")
    wait_for(lambda: (stream_info(relay, STREAM) or {}).get("state") == "live", what="live")
    s = staller(relay)
    wait_for(lambda: metric(relay, "sluice_relay_cutoffs_total", reason="too_slow") == 1,
             timeout=20, interval=0.02, what="the cut-off")
    # now read all it was sent: whole frames, then ERROR too_slow, then the close
    s.settimeout(5)
    conn = w.Conn(s)
    frames = []
    while (f := conn.recv()) is not None:
        frames.append(f)
    assert frames[0].type == w.HELLO and frames[1].type == w.ACCEPT
    assert frames[-1].type == w.ERROR and w.ERRORS[frames[-1].code] == "too_slow"
    assert frames[-1].text.startswith(b"queue not emptied for ")
    assert all(f.type in (w.PUBLISH, w.MEDIA, w.PONG) for f in frames[2:-1])
    conn.close()
    assert metric(relay, "sluice_relay_errors_sent_total", code="too_slow") == 1
    fast_info = next(x for x in stream_info(relay, STREAM)["subscribers"])
    assert fast_info["node"] == "test-sub" and fast_info["drops"] == 0
    pub.terminate()
    assert finish(pub)[0] == 0
    code, _, err = finish(fast)
    assert code == 0, err


def test_sigterm_with_a_stalled_reader_exits_in_time(daemons, redis_server):
    """A reader that does not read cannot hold the relay past its drain bound."""
    relay = start_relay(daemons, redis_server, MAX_QUEUE="1M", GOP_CACHE_MAX="256k",
                        SLOW_TIMEOUT="60s", SHUTDOWN_TIMEOUT="2s")
    lease(redis_server, STREAM, "ingest-1/7")
    pub = publish(relay, STREAM, "ingest-1/7", fixture("h264_aac_20s.ts"), "--rate", "24000000",
                  "--loop")
    wait_for(lambda: (stream_info(relay, STREAM) or {}).get("state") == "live", what="live")
    s = staller(relay)
    wait_for(lambda: metric(relay, "sluice_relay_gaps_total", stream=STREAM) >= 1, timeout=20,
             what="the staller's queue to overflow")
    t0 = time.monotonic()
    relay.stop()                               # SIGTERM: clean exit, sanitizers quiet
    assert time.monotonic() - t0 < 4
    assert finish(pub)[0] in (0, 2, 3)         # told going_away, or saw the relay go
    s.close()
