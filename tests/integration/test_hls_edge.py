"""The viewer's path end to end: relay -> sluice-hls -> its directory ->
sluice-discovery -> Redis -> sluice-edge -> viewer. Every playlist the edge
serves goes through hlscheck; when the owner origin dies, the edge follows
the new owner (through its node's discovery) and the viewer's playlist stays
legal across the switch.

ffmpeg publishes over SRT through the real ingest."""
import time

import requests

from api_fixtures import api_factory  # noqa: F401 (a fixture)
from hlsrun import SrtPublisher, Watcher, start_hls, start_ingest, start_relay
from media import ffprobe, fixture
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
    """An origin node: sluice-hls and the discovery that watches its directory."""
    origin = start_hls(daemons, redis_server, tmp_path, name, **env)
    daemons("discovery", {"SLUICE_REDIS_URL": redis_server.url, "SLUICE_DIR": str(origin.dir),
                          "SLUICE_TTL": "4s"})
    return origin


def test_viewer_through_the_edge(daemons, redis_server, api_factory, tmp_path):  # noqa: F811
    start_relay(daemons, redis_server)
    stack = start_ingest(daemons, api_factory, redis_server)
    node(daemons, redis_server, tmp_path, "a", SLUICE_END_GRACE="2s")
    edge = start_edge(daemons, redis_server)
    with Watcher([Viewer(edge)], "demo") as watch:
        pub = SrtPublisher(stack, "demo", fixture("h264_aac_10s.ts"))
        watch.wait_for(lambda pl: len(pl.segments) >= 2, 20, "two segments at the edge")
        codecs, _ = ffprobe(edge.url("/live/demo/index.m3u8"))
        assert sorted(codecs) == ["aac", "h264"]
        assert pub.wait(timeout=30)[0] == 0
        watch.wait_for(lambda pl: pl.ended, 15, "EXT-X-ENDLIST at the edge")
    codecs, duration = ffprobe(edge.url("/live/demo/index.m3u8"))
    assert sorted(codecs) == ["aac", "h264"] and abs(duration - 10.0) < 0.3
    seg = watch.last().segments[-1]
    r = edge.get(f"/live/demo/{seg.uri}")
    assert r.status_code == 200 and r.headers["Cache-Control"].endswith("immutable")


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
