"""The edge's metrics that the issue asks for, counted exactly against a test
origin (httporigin.TestOrigin) after a known sequence of requests: requests
by status, cache hits and misses, origin fetches and their latency, bytes
out, and viewers per stream (distinct clients, an address and a User-Agent,
seen in the last viewers-window: 30 s by default, 1 s here)."""
import pytest

from conftest import wait_for
from httporigin import TestOrigin, media_playlist
from test_edge import start_edge

PLAYLIST = media_playlist(target=2, segments=["s0.ts"])
SEGMENT = b"\x47" + bytes(188 * 100 - 1)
DELAY = 0.3      # the origin's, before each answer


@pytest.fixture
def origin():
    o = TestOrigin().start()
    o.set("/live/demo/index.m3u8", PLAYLIST)
    o.set("/live/demo/s0.ts", SEGMENT)
    o.delay = DELAY
    yield o
    o.stop()


def test_counted_exactly(daemons, redis_server, origin):
    origin.register(redis_server.client(), "demo")
    edge = start_edge(daemons, redis_server, viewers_window="1s", playlist_ttl_min="30s")
    wait_for(edge.daemon.ready, what="edge ready")
    sent = 0
    for path, agent, status in [
            ("/live/demo/index.m3u8", "vlc", 200),      # miss, fetched
            ("/live/demo/s0.ts", "vlc", 200),           # miss, fetched
            ("/live/demo/s0.ts", "ffplay", 200),        # hit
            ("/live/demo/index.m3u8", "ffplay", 200),   # hit (still fresh)
            ("/live/demo/gone.ts", "vlc", 404),         # miss, fetched: the origin's 404
            ("/live/nobody/index.m3u8", "vlc", 404),    # miss, no route: not live
            ("/live/demo/..%2fx.ts", "vlc", 400)]:      # refused before the cache
        r = edge.get(path, headers={"User-Agent": agent})
        assert r.status_code == status, (path, r.text)
        if status == 200:
            sent += len(r.content)
    m = edge.daemon.metrics()

    def requests(route, status):
        return m.get(f'sluice_http_requests_total{{server="edge",route="{route}",'
                     f'status="{status}"}}', 0)
    assert (requests("live", 200), requests("live", 404), requests("unmatched", 400)) == (4, 2, 1)

    def cache(result):
        return m.get(f'sluice_edge_cache_requests_total{{result="{result}"}}', 0)
    assert (cache("hit"), cache("miss"), cache("coalesced"), cache("stale")) == (2, 4, 0, 0)

    def fetches(result):
        return m.get(f'sluice_edge_origin_fetches_total{{result="{result}"}}', 0)
    assert (fetches("ok"), fetches("not_found")) == (2, 1)
    assert origin.count("/live/demo/s0.ts") == 1 and origin.count("/live/demo/index.m3u8") == 1
    # the latency of each of the three fetches includes the origin's delay
    assert m["sluice_edge_origin_fetch_seconds_count"] == 3
    assert m['sluice_edge_origin_fetch_seconds_bucket{le="0.25"}'] == 0
    assert m["sluice_edge_origin_fetch_seconds_sum"] >= 3 * DELAY
    # bodies of the 200s (error bodies are not media)
    assert m['sluice_edge_bytes_out_total{kind="live"}'] == sent == \
        2 * len(PLAYLIST) + 2 * len(SEGMENT)
    # two clients of demo (vlc, ffplay) from one address; none for a stream not live
    assert m['sluice_edge_viewers{stream="demo"}'] == 2
    assert 'sluice_edge_viewers{stream="nobody"}' not in m
    # the window slides: a client quiet for longer is no longer counted
    wait_for(lambda: edge.metric("sluice_edge_viewers", stream="demo") == 0, timeout=10,
             interval=0.2, what="viewers forgotten after the window")
    edge.get("/live/demo/s0.ts", headers={"User-Agent": "vlc"})
    assert edge.metric("sluice_edge_viewers", stream="demo") == 1
