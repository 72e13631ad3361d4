"""Watching over SRT (m=request) through sluice-ingest, with real clients:
ffmpeg publishing and ffmpeg (or srtprobe) watching, the real api for keys,
sessions and passphrases, sluice-relay in between."""
import subprocess
import time

from conftest import wait_for
from ingest_fixtures import (api, api_factory, cut, ffmpeg_publish, flowing, ingest,  # noqa: F401
                             relay, session, srtprobe, start_ingest)
from media import BIN, decode_errors, ffprobe, fixture


def ffmpeg_view(url, out, seconds=None):
    """ffmpeg watching <url> (an SRT caller in request mode), copying what it
    gets into <out>, for at most <seconds> of media if given."""
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", url]
    if seconds:
        args += ["-t", str(seconds)]
    return subprocess.Popen(args + ["-c", "copy", "-f", "mpegts", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def hold(ingest, streamid, seconds, *extra):
    """srtprobe connected with <streamid> for <seconds>: exits 4 and says
    after how long if ingest closes it first."""
    return subprocess.Popen([str(BIN / "srtprobe"), "--hold", f"{seconds}s", *extra,
                             "--streamid", streamid, f"127.0.0.1:{ingest.srt_port}"],
                            stdout=subprocess.PIPE, text=True)


def viewers(ingest, stream):
    return ingest.metric(f'sluice_ingest_stream_viewers{{stream="{stream}"}}')


def test_ffmpeg_watches_a_live_stream(api, ingest, relay, tmp_path):
    """ffmpeg publishes the 10 s fixture; ffmpeg watching with m=request and
    the key gets it from the relay's GOP cache on, both tracks, decodable,
    and is let go when the stream ends."""
    key = api.create_stream("cam1")["key"]
    pub = ffmpeg_publish(ingest.url("cam1", key), fixture("h264_aac_10s.ts"))
    wait_for(lambda: flowing(ingest, "cam1"), what="cam1 live")
    out = tmp_path / "watched.ts"
    view = ffmpeg_view(ingest.url("cam1", key, mode="request"), out)
    wait_for(lambda: viewers(ingest, "cam1") == 1, what="one viewer")
    m = wait_for(lambda: (m := ingest.daemon.metrics()).get(
        'sluice_ingest_viewer_bytes_total{stream="cam1"}', 0) > 200_000 and m, what="media out")
    assert m['srt_connections_current{mode="request"}'] == 1
    assert m['sluice_ingest_viewers{state="live"}'] == 1
    _, err = pub.communicate(timeout=40)
    assert pub.returncode == 0, err
    _, err = view.communicate(timeout=20)                   # the stream ended: let go
    codecs, duration = ffprobe(out)
    assert sorted(codecs) == ["aac", "h264"], err
    assert duration > 5, duration
    assert decode_errors(out) == []
    m = ingest.daemon.metrics()
    assert m.get('sluice_ingest_closed_total{reason="stream_ended"}') == 1
    assert 'sluice_ingest_stream_viewers{stream="cam1"}' not in m      # gone with the viewer
    assert m.get('sluice_ingest_viewer_dropped_bytes_total{stream="cam1"}') is None
