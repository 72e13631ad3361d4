"""The viewer's path end to end: relay -> sluice-hls -> its directory ->
sluice-discovery -> Redis -> sluice-edge -> viewer. Every playlist the edge
serves goes through hlscheck; when the owner origin dies, the edge follows
the new owner (through its node's discovery) and the viewer's playlist stays
legal across the switch.

ffmpeg publishes over SRT through the real ingest."""
import subprocess
import time

import pytest
import requests

from api_fixtures import api_factory  # noqa: F401 (a fixture)
from conftest import wait_for
from hlsrun import SrtPublisher, Watcher, start_hls, start_ingest, start_relay
from media import decode_errors, ffprobe, fixture
from test_edge import start_edge

TTL, TARGET = 3.0, 2.0          # hlsrun.HLS_FAST: lease TTL, target duration
# discovery's TTL by the rule of docs/discovery.md ("How long the TTL must
# be"): above the failover bound (TTL + 2 x TARGET) plus one more target
# duration and a second, or the old owner's origin key expires first and the
# edge finds the stream gone
RULE_TTL = TTL + 3 * TARGET + 2.0
# the edge adds to what the origin shows: a playlist stays fresh in its cache
# for 25 % of the target duration (docs/edge.md, "Latency")
EDGE_EXTRA = 0.25 * TARGET


class Viewer:
    """The edge, as hlsrun.Watcher polls an origin. Every answer is recorded in
    .statuses, (monotonic time, status or None when the request failed), so
    that a test sees the 404s and 5xx that playlist() turns into None. With
    <segments>, each new playlist's newest segment is fetched too (recorded
    the same way), as a player would."""

    name = "edge"

    def __init__(self, edge, segments=False):
        self.edge = edge
        self.segments = segments
        self.statuses = []
        self._last = None

    def _get(self, path):
        try:
            r = self.edge.get(path, timeout=2)
        except requests.RequestException:
            self.statuses.append((time.monotonic(), None, path))
            return None
        self.statuses.append((time.monotonic(), r.status_code, path))
        return r

    def playlist(self, stream):
        r = self._get(f"/live/{stream}/index.m3u8")
        if r is None or r.status_code != 200:
            return None
        if self.segments and r.text != self._last:
            uris = [line for line in r.text.splitlines() if line and not line.startswith("#")]
            if uris:
                self._get(f"/live/{stream}/{uris[-1]}")
        self._last = r.text
        return r.text

    def failures_since(self, t):
        return [(round(at - t, 2), status, path) for at, status, path in self.statuses
                if at >= t and status != 200]


def node(daemons, redis_server, tmp_path, name, discovery_ttl="4s", **env):
    """An origin node: sluice-hls and the discovery that watches its directory
    (.discovery). The short default TTL suits one origin (no failover: a key
    gone 4 s after hls stopped writing is soon seen); with two, pass RULE_TTL."""
    origin = start_hls(daemons, redis_server, tmp_path, name, **env)
    origin.discovery = daemons("discovery", {"SLUICE_REDIS_URL": redis_server.url,
                                             "SLUICE_DIR": str(origin.dir),
                                             "SLUICE_TTL": discovery_ttl})
    return origin


def kill_after_renewal(owner, redis_server, stream):
    """kill -9 <owner> just after it renewed its lease (more than 95 % of the
    TTL left): the worst case, the lease lives a whole TTL after the death.
    Returns the monotonic time of the kill."""
    r = redis_server.client()
    wait_for(lambda: r.pttl(f"sluice:lease:hls:{stream}") > 0.95 * TTL * 1000,
             timeout=2 * TTL, interval=0.005, what="a lease renewal")
    owner.daemon.kill()
    return time.monotonic()


def test_viewer_through_the_edge(daemons, redis_server, api_factory, tmp_path):  # noqa: F811
    """ffmpeg publishes 20 s over SRT; ffprobe reads the live stream from the
    edge, and ffmpeg, joining at the first segment, reads it to the end (both
    tracks, decoded, the whole 20 s); every playlist the edge served passes
    hlscheck; the edge's metrics count what happened."""
    start_relay(daemons, redis_server)
    stack = start_ingest(daemons, api_factory, redis_server)
    node(daemons, redis_server, tmp_path, "a", SLUICE_END_GRACE="2s")
    edge = start_edge(daemons, redis_server)
    url = edge.url("/live/demo/index.m3u8")
    copy = tmp_path / "viewer.ts"
    with Watcher([Viewer(edge)], "demo") as watch:
        pub = SrtPublisher(stack, "demo", fixture("h264_aac_20s.ts"))
        watch.wait_for(lambda pl: len(pl.segments) >= 1, 20, "the first segment at the edge")
        # a viewer that reads from the first segment to EXT-X-ENDLIST, decoding
        # everything (-f null) and keeping a copy of what it read
        viewer = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "error", "-live_start_index", "0", "-i", url,
             "-map", "0", "-c", "copy", "-f", "mpegts", str(copy), "-map", "0", "-f", "null", "-"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        watch.wait_for(lambda pl: len(pl.segments) >= 2, 20, "two segments at the edge")
        codecs, _ = ffprobe(url)
        assert sorted(codecs) == ["aac", "h264"]
        # ffprobe and ffmpeg (one User-Agent, Lavf) and the watcher (requests)
        assert edge.metric("sluice_edge_viewers", stream="demo") == 2
        rc, err = pub.wait(timeout=40)
        assert rc == 0, err
        watch.wait_for(lambda pl: pl.ended, 15, "EXT-X-ENDLIST at the edge")
        ended = time.monotonic()
        _, err = viewer.communicate(timeout=30)
        assert viewer.returncode == 0 and err.decode().strip() == "", err.decode()[-3000:]
    # what the viewer read: both tracks, the whole 20 s, decodable
    codecs, duration = ffprobe(copy)
    assert sorted(codecs) == ["aac", "h264"] and abs(duration - 20.0) < 0.5, duration
    assert decode_errors(copy) == []
    # every segment was listed, once, in order; the ended playlist keeps the last six
    segs = sorted(watch.checker.segments)
    assert len(segs) == 10 and segs == list(range(segs[0], segs[0] + 10))
    # a viewer who comes after the end, later than discovery's TTL (4 s), still
    # plays the ended playlist from the edge: hls serves it for its linger and
    # keeps it advertised meanwhile (docs/hls.md)
    time.sleep(max(0.0, ended + 4.0 + 2.0 - time.monotonic()))
    codecs, duration = ffprobe(url)
    assert sorted(codecs) == ["aac", "h264"] and abs(duration - 12.0) < 0.3
    seg = watch.last().segments[-1]
    r = edge.get(f"/live/demo/{seg.uri}")
    assert r.status_code == 200 and r.headers["Cache-Control"].endswith("immutable")
    # the metrics of the issue, as the viewers made them
    m = edge.daemon.metrics()
    ok = m['sluice_http_requests_total{server="edge",route="live",status="200"}']
    assert ok >= watch.checker.playlists + 10
    assert m['sluice_edge_cache_requests_total{result="hit"}'] >= 10      # segments read twice
    fetched = m['sluice_edge_origin_fetches_total{result="ok"}']
    assert fetched >= 10 + 1 and m['sluice_edge_cache_requests_total{result="miss"}'] >= fetched
    assert m["sluice_edge_origin_fetch_seconds_count"] == sum(
        v for k, v in m.items() if k.startswith("sluice_edge_origin_fetches_total{"))
    assert m['sluice_edge_bytes_out_total{kind="live"}'] >= copy.stat().st_size


@pytest.mark.parametrize("how", ["rule", "hold"])
def test_edge_follows_the_new_owner(daemons, redis_server, api_factory,  # noqa: F811
                                    tmp_path, how):
    """The owner origin is killed just after renewing its lease (the slowest
    takeover). A viewer at the edge gets 200 for every playlist and segment
    throughout, and the new owner's first segment within the failover bound
    plus what the edge's playlist cache adds.

    rule: discovery's TTL kept by the rule, the edge's route-vanish-grace off:
    the old owner's key outlives the failover, the edge serves its stale
    playlist (the dead origin failing) until the new owner's key appears.
    hold: the rule broken (discovery's TTL shorter than the failover): the
    old key expires first, and the edge's route-vanish-grace bridges the gap
    (docs/edge.md, "Routes")."""
    start_relay(daemons, redis_server)
    stack = start_ingest(daemons, api_factory, redis_server)
    if how == "rule":
        assert RULE_TTL > TTL + 2 * TARGET + TARGET + 1.0
        discovery_ttl, vanish_grace = f"{RULE_TTL:g}s", "0"
    else:
        discovery_ttl, vanish_grace = "4s", "15s"
    a = node(daemons, redis_server, tmp_path, "a", discovery_ttl=discovery_ttl)
    b = node(daemons, redis_server, tmp_path, "b", discovery_ttl=discovery_ttl)
    edge = start_edge(daemons, redis_server, route_vanish_grace=vanish_grace)
    viewer = Viewer(edge, segments=True)
    pub = SrtPublisher(stack, "demo", fixture("h264_aac_10s.ts"), loop=True)
    with Watcher([viewer], "demo", interval=0.1) as watch:
        watch.wait_for(lambda pl: len(pl.segments) >= 3, 30, "three segments at the edge")
        owner = a if a.owns() else b
        other = b if owner is a else a
        before = watch.last().last
        killed = kill_after_renewal(owner, redis_server, "demo")
        # the new owner's first segment reaches the viewer
        watch.wait_for(lambda pl: pl.last > before and pl.segments[-1].uri.startswith("2-"),
                       TTL + 2 * TARGET + 10, "the new owner's segments at the edge")
        first_new = min(s for s, seg in watch.checker.segments.items() if seg.uri.startswith("2-"))
        took = watch.seen[first_new][0] - killed
        print(f"{how}: viewer at the edge: new owner's first segment {took:.2f} s after "
              f"kill -9 (bound {TTL + 2 * TARGET + EDGE_EXTRA + 0.5:.2f} s)")
        # the failover bound (docs/hls.md), the edge's playlist cache, and
        # 0.5 s for this machine: the watcher's 0.1 s polls, the edge's route
        # TTL here (200 ms) before it asks Redis for the new owner, ASan, and
        # the other tests running beside this one
        assert took <= TTL + 2 * TARGET + EDGE_EXTRA + 0.5
        assert watch.checker.segments[first_new].discontinuity
        watch.wait_for(lambda pl: pl.last >= first_new + 2, 10, "more segments at the edge")
        assert other.owns() == 1
        r = edge.get(f"/live/demo/{watch.last().segments[-1].uri}")
        assert r.status_code == 200
    # not one error for the viewer from the kill on: no 404 (stream gone),
    # no 5xx, no request failed
    assert viewer.failures_since(killed) == []
    # ... and it did ask all along (at least twice a second), the gap included
    window = TTL + 2 * TARGET
    assert len([s for s in viewer.statuses if killed <= s[0] <= killed + window]) >= 2 * window
    held = edge.metric("sluice_edge_route_lookups_total", result="held")
    if how == "rule":
        assert held == 0      # the key never vanished
    else:
        assert held >= 1
    pub.stop()
