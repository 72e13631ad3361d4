"""The viewer's path end to end: relay -> sluice-hls -> its directory ->
sluice-discovery -> Redis -> sluice-edge -> viewer. Every playlist the edge
serves goes through hlscheck; when the owner origin dies, the edge follows
the new owner (through its node's discovery) and the viewer's playlist stays
legal across the switch.

ffmpeg publishes over SRT through the real ingest."""
import subprocess
import time

import requests

from api_fixtures import api_factory  # noqa: F401 (a fixture)
from hlsrun import SrtPublisher, Watcher, start_hls, start_ingest, start_relay
from media import decode_errors, ffprobe, fixture
from test_edge import start_edge

TTL, TARGET = 3.0, 2.0


class Viewer:
    """The edge, as hlsrun.Watcher polls an origin."""

    name = "edge"

    def __init__(self, edge):
        self.edge = edge

    def playlist(self, stream):
        try:
            r = self.edge.get(f"/live/{stream}/index.m3u8", timeout=2)
        except requests.RequestException:
            return None
        return r.text if r.status_code == 200 else None


def node(daemons, redis_server, tmp_path, name, **env):
    """An origin node: sluice-hls and the discovery that watches its directory
    (.discovery)."""
    origin = start_hls(daemons, redis_server, tmp_path, name, **env)
    origin.discovery = daemons("discovery", {"SLUICE_REDIS_URL": redis_server.url,
                                             "SLUICE_DIR": str(origin.dir), "SLUICE_TTL": "4s"})
    return origin


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


def test_edge_follows_the_new_owner(daemons, redis_server, api_factory,  # noqa: F811
                                    tmp_path):
    start_relay(daemons, redis_server)
    stack = start_ingest(daemons, api_factory, redis_server)
    a = node(daemons, redis_server, tmp_path, "a")
    b = node(daemons, redis_server, tmp_path, "b")
    edge = start_edge(daemons, redis_server)
    pub = SrtPublisher(stack, "demo", fixture("h264_aac_10s.ts"), loop=True)
    with Watcher([Viewer(edge)], "demo", interval=0.1) as watch:
        watch.wait_for(lambda pl: len(pl.segments) >= 3, 30, "three segments at the edge")
        owner = a if a.owns() else b
        other = b if owner is a else a
        before = watch.last().last
        owner.daemon.kill()
        killed = time.monotonic()
        # the new owner's first segment reaches the viewer
        watch.wait_for(lambda pl: pl.last > before and pl.segments[-1].uri.startswith("2-"),
                       TTL + 2 * TARGET + 10, "the new owner's segments at the edge")
        first_new = min(s for s, seg in watch.checker.segments.items() if seg.uri.startswith("2-"))
        took = watch.seen[first_new][0] - killed
        print(f"viewer at the edge: new owner's first segment {took:.2f} s after kill -9")
        assert took <= TTL + 2 * TARGET + 2.0
        assert watch.checker.segments[first_new].discontinuity
        watch.wait_for(lambda pl: pl.last >= first_new + 2, 10, "more segments at the edge")
        assert other.owns() == 1
        r = edge.get(f"/live/demo/{watch.last().segments[-1].uri}")
        assert r.status_code == 200
    pub.stop()
