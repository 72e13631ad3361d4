"""Takeover across two ingests on one relay: a publisher on ingest B takes a
stream published on ingest A. The relay gives the stream to B's publisher and
tells A's link ERROR `replaced`; A must take that as the end of its publish
(close its SRT publisher with reason `replaced`), not as a relay outage to
reconnect through (`relay_connects_total{result="lost"}`, a retry refused
with `conflict`, a close counted as `lease`).

The takeover on one ingest is in test_ingest.py; a relay killed during a
publish, which must still be retried, in test_ingest.py and
test_ingest_playback.py.
"""
import subprocess
import time

from conftest import wait_for
from ingest_fixtures import (api, api_factory, cut, ffmpeg_publish, flowing,  # noqa: F401
                             ingest, lease, relay, start_ingest, subscribe)
from media import BIN, ffprobe, finish, fixture


def test_takeover_across_ingests(api, daemons, ingest, relay, redis_server, tmp_path):
    # A renews its lease every 10 s (lease-ttl 30s): within the few seconds
    # of this test only the relay's ERROR replaced can tell A it lost the
    # stream, not a renewal finding B's lease
    a = start_ingest(daemons, api.base, redis_server.url, SLUICE_NODE_ID="ingest-a",
                     SLUICE_LEASE_TTL="30s")
    b = ingest                                      # node ingest-test
    wait_for(lambda: a.metric("sluice_ingest_relays_known") >= 1, what="A knows the relay")
    key = api.create_stream("cam1")["key"]
    out = tmp_path / "out.ts"
    sub = subscribe(relay, "cam1", out)
    first = subprocess.Popen([str(BIN / "srtprobe"), "--hold", "20s", "--send",
                              str(fixture("h264_aac_20s.ts")), "--rate", "3000000",
                              "--streamid", a.streamid("cam1", key), f"127.0.0.1:{a.srt_port}"],
                             stdout=subprocess.PIPE, text=True)
    holder_a = wait_for(lambda: lease(redis_server, "cam1"), what="A's lease")
    assert holder_a.startswith("ingest-a/")
    wait_for(lambda: flowing(a, "cam1", 300_000), what="media from A at the relay")

    t0 = time.monotonic()
    second = ffmpeg_publish(b.url("cam1", key), cut("h264_aac_10s.ts", 4, tmp_path))
    text, _ = first.communicate(timeout=10)
    closed_after = time.monotonic() - t0
    assert first.returncode == 4, text               # closed by the listener (A)
    assert text.startswith("accepted\nclosed by the listener"), text
    assert closed_after < 3.0, closed_after          # ffmpeg's start included
    holder_b = lease(redis_server, "cam1")
    assert holder_b is not None and holder_b.startswith("ingest-test/"), holder_b

    _, ff_err = second.communicate(timeout=20)
    assert second.returncode == 0, ff_err
    code, _, err = finish(sub, timeout=20)
    assert code == 0, err
    # the subscriber went on from A's publisher to B's, told of the break
    assert err.index(f"publisher {holder_a} ") < err.index(f"publisher {holder_b} "), err
    assert "discontinuity at PTS" in err, err
    assert err.count("end of stream") == 1 and "end of stream: ended" in err, err
    assert sorted(ffprobe(out)[0]) == ["aac", "h264"]

    m = a.daemon.metrics()
    assert m.get('sluice_ingest_closed_total{reason="replaced"}') == 1
    assert 'sluice_ingest_closed_total{reason="lease"}' not in m
    assert m.get('sluice_ingest_relay_connects_total{result="replaced"}') == 1
    assert m.get('sluice_ingest_relay_connects_total{result="lost"}', 0) == 0
    assert m.get('sluice_ingest_relay_connects_total{result="conflict"}', 0) == 0
    assert m.get('sluice_ingest_relay_connects_total{result="accepted"}') == 1   # no retry
    log = a.daemon.log_text()
    assert "link lost" not in log, log[-3000:]
    assert f"passed to {holder_b}" in log, log[-3000:]    # the relay's words, in A's log
