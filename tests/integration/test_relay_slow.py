"""Slow subscribers: one that reads nothing for 30 s must not hurt a fast
one, nor grow the relay's queue beyond max-queue, nor its memory (RSS, on
the plain build) by 64 MB; one that stays behind past slow-timeout is cut
off with ERROR too_slow, the stream's framing intact up to it."""
import pathlib
import socket
import time

import pytest

import slpwire as w
from conftest import ROOT, Daemon, free_port, wait_for
from media import finish, fixture
from relay_fixtures import (lease, metric, publish, start_relay, stream_info, subscribe,
                            codecs_and_duration)

STREAM = "cam1"
STALL_SECONDS = 30
# The ASan relay: a 4 Mbps stream, a fast reader and a staller; a 2 MiB
# queue, so that the staller overflows it several times over in 30 s.
ASAN_MAX_QUEUE = 2 * 1024 * 1024
ASAN_RATE = 4_000_000
# The plain relay, for RSS: the default max-queue (16 MiB) and gop-cache-max,
# and a stream fast enough that 120 MB go by while the staller reads nothing:
# a relay that did not bound the queue would grow by about that much.
PLAIN_RATE = 32_000_000
RSS_GROWTH_MAX_MB = 64
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
    """One relay with a publisher at <rate> bits/s, a fast slpcat reader
    (unless <fast> is false) and a staller."""

    def __init__(self, relay, redis_server, tmp_path, tag, rate, fast=True):
        self.relay = relay
        lease(redis_server, STREAM, "ingest-1/7")
        self.out = tmp_path / f"fast-{tag}.ts"
        self.fast = None
        if fast:
            self.fast = subscribe(relay, STREAM, self.out, "--wait", "10")
            wait_for(lambda: (stream_info(relay, STREAM) or {}).get("subscriber_count") == 1,
                     what="the fast reader")
        self.pub = publish(relay, STREAM, "ingest-1/7", fixture("h264_aac_20s.ts"),
                           "--rate", str(rate), "--loop")
        wait_for(lambda: (stream_info(relay, STREAM) or {}).get("state") == "live",
                 what="the stream live")
        self.stall = staller(relay)
        self.limit = metric(relay, "sluice_relay_queue_limit_bytes")
        self.peak = 0

    def sample(self):
        q = metric(self.relay, "sluice_relay_queued_bytes_max", stream=STREAM)
        self.peak = max(self.peak, q)
        assert q <= self.limit, f"queue {q} over its bound {self.limit}"
        self.stall.sendall(w.ping(int(time.monotonic() * 1e6)))   # alive, not reading
        return q

    def subscribers(self):
        subs = stream_info(self.relay, STREAM)["subscribers"]
        fast = next((s for s in subs if s["node"] == "test-sub"), None)
        slow = next(s for s in subs if s["node"] == "staller")
        return fast, slow

    def finish(self):
        info = stream_info(self.relay, STREAM)
        fast, slow = self.subscribers()
        self.pub.terminate()
        assert finish(self.pub)[0] == 0
        if self.fast:
            code, _, err = finish(self.fast)
            assert code == 0, err
        self.stall.close()
        # the staller fell behind: its queue filled to the bound, frames were dropped
        assert self.peak > self.limit / 2, (self.peak, self.limit)
        assert slow["drops"] > 0 and slow["gaps"] >= 1
        assert slow["queued_bytes"] <= self.limit
        return info, fast


def start_plain_relay(redis_server, tmp_path):
    """The plain build of the relay, whose RSS means something (ASan's
    shadow memory and quarantine would swamp it); default queue bounds."""
    port = free_port()
    plain = Daemon("relay", {"SLUICE_LISTEN": f"127.0.0.1:{port}",
                             "SLUICE_REDIS_URL": redis_server.url,
                             "SLUICE_NODE_ID": "plain", "SLUICE_HEARTBEAT": "500ms",
                             "SLUICE_SLOW_TIMEOUT": "60s"}, tmp_path)
    plain.binary = RELEASE_RELAY
    plain.start()
    plain.slp = f"127.0.0.1:{port}"
    return plain


def test_a_reader_that_reads_nothing_for_30s(daemons, redis_server, tmp_path):
    relay = start_relay(daemons, redis_server, name="asan", MAX_QUEUE=str(ASAN_MAX_QUEUE),
                        GOP_CACHE_MAX="1M", SLOW_TIMEOUT="60s")
    asan = Setup(relay, redis_server, tmp_path, "asan", ASAN_RATE)
    plain = rss = None
    if RELEASE_RELAY.exists():
        plain = start_plain_relay(redis_server, tmp_path)
    try:
        if plain:
            rss0 = rss_kb(plain.proc.pid)               # before it has any stream
            rss = Setup(plain, redis_server, tmp_path, "plain", PLAIN_RATE, fast=False)
            rss_peak = rss0
        setups = [asan] + ([rss] if rss else [])
        t0 = time.monotonic()
        while time.monotonic() - t0 < STALL_SECONDS:
            time.sleep(0.5)
            for s in setups:
                s.sample()
            if plain:
                rss_peak = max(rss_peak, rss_kb(plain.proc.pid))
        if rss:
            info, _ = rss.finish()
            passed_mb = info["bytes_in"] / 1e6
        info, fast = asan.finish()
        # the fast reader got every frame from the first keyframe on
        assert fast["drops"] == 0 and fast["gaps"] == 0, fast
        assert info["frames_in"] - fast["frames"] <= 1, (info["frames_in"], fast["frames"])
        assert fast["frames"] > 30 * STALL_SECONDS
        assert codecs_and_duration(asan.out)[0] == ["aac", "h264"]
        assert asan.out.stat().st_size > 0.9 * ASAN_RATE / 8 * STALL_SECONDS   # all of it
        if plain:
            grown = (rss_peak - rss0) / 1024
            bound = min(RSS_GROWTH_MAX_MB, 2 * rss.limit / 2**20 + 16)
            print(f"\nplain relay RSS {rss0 / 1024:.1f} MB -> peak {rss_peak / 1024:.1f} MB "
                  f"(+{grown:.1f} MB, bound {bound:.0f} MB) with a {rss.limit / 2**20:.0f} MiB "
                  f"queue bound, {passed_mb:.0f} MB through while the staller read nothing")
            # an unbounded queue would have held most of what went by
            assert passed_mb > 1.5 * RSS_GROWTH_MAX_MB, passed_mb
            assert grown < bound, f"RSS grew by {grown:.1f} MB (bound {bound:.0f} MB)"
    finally:
        if plain:
            plain.stop()
    if not plain:
        pytest.skip(f"RSS check not run: {RELEASE_RELAY} is missing (make builds it); "
                    "the ASan relay's checks passed")


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
