"""The origin directory contract end to end, without hls: files written as hls
writes them, served by a plain static file server named in origin.json,
advertised by sluice-discovery, served to viewers by sluice-edge. When the
playlist stops changing, the stream disappears from the edge by itself (after
the edge's route-vanish-grace, since the playlist never ended)."""
import functools
import http.server
import json
import threading
import time

import pytest

from conftest import free_port, wait_for
from httporigin import atomic_write, segment, sha
from test_edge import assert_json_error, start_edge


@pytest.fixture
def static_origin(tmp_path):
    root = tmp_path / "hls"
    root.mkdir()
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def test_directory_to_viewer(daemons, redis_server, static_origin):
    root, url = static_origin
    atomic_write(str(root / "origin.json"), json.dumps({"url": url, "node": "hls-test"}))
    (root / "live" / "demo").mkdir(parents=True)
    seg = segment(300_000, seed=5)
    atomic_write(str(root / "live" / "demo" / "e1-0.ts"), seg)

    def playlist(seq):
        atomic_write(str(root / "live" / "demo" / "index.m3u8"),
                     f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n"
                     f"#EXT-X-MEDIA-SEQUENCE:{seq}\n#EXTINF:1.0,\ne1-0.ts\n")

    daemons("discovery", {"SLUICE_REDIS_URL": redis_server.url, "SLUICE_DIR": str(root),
                          "SLUICE_TTL": "2s"})
    # no route grace: on a loaded machine a Redis command timeout makes the
    # edge reconnect, and the grace after a reconnect (made for a Redis that
    # restarted empty) would rightly keep the route past this test's wait
    edge = start_edge(daemons, redis_server, route_grace="0", route_vanish_grace="2s")
    playlist(0)
    wait_for(lambda: edge.get("/live/demo/index.m3u8").status_code == 200, timeout=5,
             what="stream at the edge")
    for seq in range(1, 5):
        time.sleep(0.4)
        playlist(seq)
        r = edge.get("/live/demo/index.m3u8")
        assert r.status_code == 200
    assert sha(edge.get("/live/demo/e1-0.ts").content) == sha(seg)
    # hls stops writing a live playlist (no EXT-X-ENDLIST): the key expires 2 s
    # after the last write; the edge holds the route for route-vanish-grace
    # (2 s, as during an origin failover: docs/edge.md), still serving, and
    # only then says 404
    stopped = time.monotonic()
    statuses = []
    while not statuses or statuses[-1] != 404:
        assert time.monotonic() - stopped < 15, statuses
        statuses.append(edge.get("/live/demo/index.m3u8").status_code)
        time.sleep(0.1)
    gone = time.monotonic() - stopped
    assert set(statuses[:-1]) == {200}, statuses
    assert gone >= 2 + 2 - 0.5, gone
    assert edge.metric("sluice_edge_route_lookups_total", result="held") >= 1
    assert_json_error(edge.get("/live/demo/index.m3u8"), 404, "not_found")
