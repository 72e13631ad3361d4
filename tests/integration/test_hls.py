"""sluice-hls end to end: ffmpeg publishing over SRT through the real ingest
(authorized by the real api) and relay, every playlist a viewer would see
checked by hlscheck, the segments read back with ffprobe. The packager's
special cases (HEVC, audio only, the PTS wrap, a long GOP) are published with
slpcat straight into the relay, so that the input reaches hls untouched.
Failover, publisher loss and Redis outages are in test_hls_failover.py; HTTP
and directory details in test_hls_http.py."""
import json
import subprocess

import pytest

from api_fixtures import api_factory  # noqa: F401 (a fixture)
from conftest import wait_for
from hlsrun import Publisher, SrtPublisher, Watcher, start_hls, start_ingest, start_relay
from media import ffprobe, fixture

TARGET = 2.0


def probe_frames(path_or_url, entries="frame=key_frame,pict_type", stream="v:0", count=1):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", stream, "-read_intervals", f"%+#{count}",
         "-show_entries", entries, "-of", "json", str(path_or_url)],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out).get("frames", [])


def test_twenty_seconds_packaged(daemons, redis_server, api_factory, tmp_path):  # noqa: F811
    start_relay(daemons, redis_server)
    stack = start_ingest(daemons, api_factory, redis_server)
    origin = start_hls(daemons, redis_server, tmp_path)
    with Watcher([origin], "demo") as watch:
        pub = SrtPublisher(stack, "demo", fixture("h264_aac_20s.ts"))
        # the first playlist, with both tracks, while the stream is live
        watch.wait_for(lambda pl: len(pl.segments) >= 2, 20, "two segments")
        codecs, _ = ffprobe(f"{origin.url}/live/demo/index.m3u8")   # live: no duration
        assert sorted(codecs) == ["aac", "h264"]
        rc, err = pub.wait(timeout=40)
        assert rc == 0, err
        watch.wait_for(lambda pl: pl.ended, 20, "EXT-X-ENDLIST after the grace")
    pl = watch.last()
    segs = [watch.checker.segments[s] for s in sorted(watch.checker.segments)]
    # every segment of the 20 s was listed at some point, 2 s each, in order
    assert len(segs) == 10, [s.uri for s in segs]
    assert [s.seq for s in segs] == list(range(segs[0].seq, segs[0].seq + 10))
    # the last one ended with the input: its length is estimated from its frames
    assert all(abs(s.duration - TARGET) < 0.01 for s in segs[:-1]), [s.duration for s in segs]
    assert abs(segs[-1].duration - TARGET) < 0.1, segs[-1].duration
    assert not any(s.discontinuity for s in segs)
    assert pl.target == 2 and pl.version == 3 and len(pl.segments) == 6
    assert pl.ended and watch.checker.playlists >= 10
    # each segment begins with PAT, then PMT, then a keyframe
    for seg in pl.segments:
        r = origin.get(f"/live/demo/{seg.uri}")
        assert r.status_code == 200 and r.headers["Content-Type"] == "video/mp2t"
        body = r.content
        assert len(body) % 188 == 0 and body[0] == 0x47
        assert (body[1] & 0x1f) << 8 | body[2] == 0, "PAT first"
        path = tmp_path / seg.uri
        path.write_bytes(body)
        assert sorted(ffprobe(path)[0]) == ["aac", "h264"]
        first = probe_frames(path)
        assert first and first[0]["key_frame"] == 1 and first[0]["pict_type"] == "I"
        # the directory holds the same bytes
        assert (origin.dir / "live" / "demo" / seg.uri).read_bytes() == body
    assert (origin.dir / "live" / "demo" / "index.m3u8").read_text() == pl.text
    # the whole ended playlist plays: 12 s of the last six segments
    codecs, duration = ffprobe(f"{origin.url}/live/demo/index.m3u8")
    assert sorted(codecs) == ["aac", "h264"] and abs(duration - 12.0) < 0.3
    # what was recorded for a next owner
    state = json.loads(redis_server.client().get("sluice:hls:demo"))
    assert state["media_sequence"] == pl.last and state["ended"] is True
    assert state["target_duration"] == 2 and state["epoch"] == 1
    m = origin.daemon.metrics()
    assert m['sluice_hls_segments_total{cut="keyframe"}'] == 9
    assert m['sluice_hls_segments_total{cut="flush"}'] == 1
    assert m["sluice_hls_playlist_latency_seconds_count"] == 10
    assert m["sluice_hls_playlist_latency_seconds_sum"] / 10 < 0.5
    assert m['sluice_hls_segment_duration_seconds_bucket{le="2"}'] == 10
    assert m["sluice_hls_clamped_durations_total"] == 0
    assert m["sluice_hls_endlists_total"] == 1
    assert m['sluice_hls_bytes_served_total{kind="segment"}'] > 0


@pytest.mark.parametrize("name, codecs, key_every", [
    ("hevc_aac_6s.ts", ["aac", "hevc"], 1.0),
    ("aac_10s.ts", ["aac"], 1.0),
])
def test_hevc_and_audio_only(daemons, redis_server, tmp_path, name, codecs, key_every):
    relay = start_relay(daemons, redis_server)
    origin = start_hls(daemons, redis_server, tmp_path, SLUICE_END_GRACE="1s")
    with Watcher([origin], "radio") as watch:
        pub = Publisher(relay, redis_server, "radio", fixture(name))
        assert pub.wait(timeout=30)[0] == 0
        watch.wait_for(lambda pl: pl.ended, 20, "EXT-X-ENDLIST")
    pl = watch.last()
    assert sorted(ffprobe(f"{origin.url}/live/radio/index.m3u8")[0]) == codecs
    assert pl.target == 2
    assert all(s.duration <= 2.5 for s in pl.segments)
    assert all(abs(s.duration - 2.0) < 0.1 for s in pl.segments[:-1]), pl.text


def test_pts_wrap(daemons, redis_server, tmp_path):
    """Timestamps that pass 2^33 (26.5 hours in) go on without a discontinuity."""
    src = tmp_path / "wrap.ts"
    # PTS start 3.5 s before the wrap
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i",
                    str(fixture("h264_aac_10s.ts")), "-c", "copy", "-output_ts_offset",
                    str(2 ** 33 / 90000 - 3.5), "-f", "mpegts", str(src)], check=True)
    relay = start_relay(daemons, redis_server)
    origin = start_hls(daemons, redis_server, tmp_path, SLUICE_END_GRACE="1s")
    with Watcher([origin], "wrap") as watch:
        assert Publisher(relay, redis_server, "wrap", src).wait(timeout=30)[0] == 0
        watch.wait_for(lambda pl: pl.ended, 20, "EXT-X-ENDLIST")
    segs = [watch.checker.segments[s] for s in sorted(watch.checker.segments)]
    assert len(segs) == 5
    assert all(abs(s.duration - 2.0) < 0.01 for s in segs), [s.duration for s in segs]
    assert not any(s.discontinuity for s in segs)
    assert origin.daemon.metrics()['sluice_hls_segments_total{cut="jump"}'] == 0


def test_long_gop_raises_the_target_once(daemons, redis_server, tmp_path):
    """A 3 s GOP with a 2 s target: the target duration is 3 from the first
    playlist on, and never changes."""
    src = tmp_path / "gop3.ts"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=25", "-t", "12", "-c:v", "libx264", "-preset",
                    "ultrafast", "-g", "75", "-keyint_min", "75", "-sc_threshold", "0",
                    "-f", "mpegts", str(src)], check=True)
    relay = start_relay(daemons, redis_server)
    origin = start_hls(daemons, redis_server, tmp_path, SLUICE_END_GRACE="1s")
    with Watcher([origin], "gop") as watch:
        assert Publisher(relay, redis_server, "gop", src).wait(timeout=30)[0] == 0
        watch.wait_for(lambda pl: pl.ended, 20, "EXT-X-ENDLIST")
    segs = [watch.checker.segments[s] for s in sorted(watch.checker.segments)]
    assert watch.last().target == 3
    assert all(abs(s.duration - 3.0) < 0.01 for s in segs[:-1]), [s.duration for s in segs]
    wait_for(lambda: origin.metric("sluice_hls_clamped_durations_total") == 0, timeout=2)
