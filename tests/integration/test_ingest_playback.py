"""Watching over SRT (m=request) through sluice-ingest, with real clients:
ffmpeg publishing and ffmpeg (or srtprobe) watching, the real api for keys,
sessions and passphrases, sluice-relay in between."""
import json
import os
import subprocess
import threading
import time

import pytest

from conftest import wait_for
from ingest_fixtures import (Relay, api, api_factory, cut, ffmpeg_publish, flowing,  # noqa: F401
                             ingest, relay, session, srtprobe, start_ingest)
from media import BIN, decode_errors, ffprobe, finish, fixture, slpcat


def ffmpeg_view(url, out, seconds=None):
    """ffmpeg watching <url> (an SRT caller in request mode), copying what it
    gets into <out>, for at most <seconds> of media if given."""
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", url]
    if seconds:
        args += ["-t", str(seconds)]
    return subprocess.Popen(args + ["-c", "copy", "-f", "mpegts", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def viewer_got_it(view, out, timeout=20, seconds=5, clean=True):
    """<view> (an ffmpeg_view) let go once the stream ended, and what it
    wrote to <out> has both tracks, over <seconds> of media (and decodes
    cleanly)."""
    _, err = view.communicate(timeout=timeout)
    codecs, duration = ffprobe(out)
    assert sorted(codecs) == ["aac", "h264"], err
    assert duration > seconds, duration
    if clean:
        assert decode_errors(out) == []


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
    viewer_got_it(view, out)                                # the stream ended: let go
    m = ingest.daemon.metrics()
    assert m.get('sluice_ingest_closed_total{reason="stream_ended"}') == 1
    assert 'sluice_ingest_stream_viewers{stream="cam1"}' not in m      # gone with the viewer
    assert m.get('sluice_ingest_viewer_dropped_bytes_total{stream="cam1"}') is None


def test_viewers_with_the_key_and_a_request_session(api, ingest, relay, tmp_path):
    """Two viewers at once, one with the key and one with a request session
    (ss_..., consumed by watching): the per-stream viewers gauge counts both;
    the session cannot be used again; both get both tracks."""
    key = api.create_stream("cam1")["key"]
    sid = session(api, "cam1", mode="request")
    pub = ffmpeg_publish(ingest.url("cam1", key), fixture("h264_aac_10s.ts"))
    wait_for(lambda: flowing(ingest, "cam1"), what="cam1 live")
    by_key, by_session = tmp_path / "key.ts", tmp_path / "session.ts"
    v1 = ffmpeg_view(ingest.url("cam1", key, mode="request"), by_key)
    v2 = ffmpeg_view(ingest.url("cam1", sid, mode="request"), by_session)
    wait_for(lambda: viewers(ingest, "cam1") == 2, what="two viewers")
    wait_for(lambda: ingest.metric('sluice_ingest_authorize_total{result="allow"}') >= 1,
             what="the session consumed")
    code, text = srtprobe("--hold", "2s", "--streamid", ingest.streamid("cam1", sid, "request"),
                          f"127.0.0.1:{ingest.srt_port}")
    assert code == 4 and text.startswith("accepted\nclosed by the listener"), text
    assert viewers(ingest, "cam1") == 2
    _, err = pub.communicate(timeout=40)
    assert pub.returncode == 0, err
    for v, out in ((v1, by_key), (v2, by_session)):
        viewer_got_it(v, out, clean=False)
    assert 'sluice_ingest_stream_viewers{stream="cam1"}' not in ingest.daemon.metrics()


def with_passphrase(url, passphrase):
    """<url> with the SRT passphrase ahead of the streamid (which ffmpeg
    reads to the end of the URL)."""
    return url.replace("?streamid=", f"?passphrase={passphrase}&streamid=", 1)


def test_encrypted_stream_needs_its_passphrase(api, ingest, relay, tmp_path):
    """A stream with a passphrase: publishing or watching without it (or with
    another) fails in the handshake; with it both work, and what the viewer
    decrypts has both tracks."""
    pw = "ten-to-79-chars"
    key = api.create_stream("cam1", passphrase=pw)["key"]
    src = cut("h264_aac_10s.ts", 2, tmp_path)
    r = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(src), "-c", "copy",
                        "-f", "mpegts", ingest.url("cam1", key)], capture_output=True, timeout=60)
    assert r.returncode != 0                                      # no passphrase
    r = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(src), "-c", "copy",
                        "-f", "mpegts", with_passphrase(ingest.url("cam1", key), "wrong-pass-123")],
                       capture_output=True, timeout=60)
    assert r.returncode != 0                                      # another one
    assert ingest.metric('sluice_ingest_stream_bytes_total{stream="cam1"}') == 0
    pub = ffmpeg_publish(with_passphrase(ingest.url("cam1", key), pw), fixture("h264_aac_10s.ts"))
    wait_for(lambda: flowing(ingest, "cam1"), what="cam1 live, encrypted")
    target = f"127.0.0.1:{ingest.srt_port}"
    code, text = srtprobe("--timeout", "1500ms", "--streamid",
                          ingest.streamid("cam1", key, "request"), target)
    assert code == 2 and int(text.split()[1]) < 1000, text       # libsrt's refusal
    out = tmp_path / "watched.ts"
    view = ffmpeg_view(with_passphrase(ingest.url("cam1", key, mode="request"), pw), out)
    wait_for(lambda: viewers(ingest, "cam1") == 1, what="the viewer with the passphrase")
    _, err = pub.communicate(timeout=40)
    assert pub.returncode == 0, err
    viewer_got_it(view, out)


def exit_times(procs):
    """Threads that note when each of <procs> exits (time.monotonic())."""
    times = [None] * len(procs)

    def watch(i):
        procs[i].wait()
        times[i] = time.monotonic()
    threads = [threading.Thread(target=watch, args=(i,), daemon=True) for i in range(len(procs))]
    for t in threads:
        t.start()
    return times, threads


@pytest.mark.parametrize("change", ["key.rotated", "stream.deleted"])
def test_auth_change_disconnects_publisher_and_viewers_within_a_second(api, ingest, relay,
                                                                       change):
    """Rotating the key or deleting the stream ends its live publisher and
    its viewers within a second. Measured twice. Inside ingest, from the
    event's arrival on sluice:events to the SRT close of each connection
    (sluice_ingest_revoke_seconds): under a second for every one, the
    issue's bound. At the clients, from just before the api call (the api
    publishes the event before it replies) to each client's exit; srtprobe
    notices a closed socket within a few ms (it polls its state every 2 ms).
    That bound allows 1.5 s: the issue's second plus slack for the api call,
    Redis and the clients on an ASan build on a shared two-core machine. The
    figures are printed."""
    key = api.create_stream("cam1")["key"]
    pub = hold(ingest, ingest.streamid("cam1", key), 20, "--send",
               str(fixture("h264_aac_20s.ts")))
    wait_for(lambda: flowing(ingest, "cam1"), what="cam1 live")
    views = [hold(ingest, ingest.streamid("cam1", key, "request"), 20) for _ in range(2)]
    wait_for(lambda: ingest.metric('sluice_ingest_viewers{state="live"}') == 2,
             what="two viewers live")
    times, threads = exit_times([pub] + views)
    t0 = time.monotonic()
    if change == "key.rotated":
        r = api.call("POST", "/v1/streams/cam1/key", token=api.admin)
    else:
        r = api.call("DELETE", "/v1/streams/cam1", token=api.admin)
    assert r.status_code in (200, 204), r.text
    for t in threads:
        t.join(timeout=10)
    elapsed = [round(t - t0, 3) for t in times]
    print(f"{change}: publisher and viewers disconnected after {elapsed} s")
    for p in [pub] + views:
        out = p.stdout.read()
        assert p.returncode == 4 and "closed by the listener" in out, out
    assert max(elapsed) < 1.5, elapsed
    wait_for(lambda: ingest.metric('srt_connections_current{mode="request"}') == 0 and
             ingest.metric('srt_connections_current{mode="publish"}') == 0, what="all gone")
    m = wait_for(lambda: (m := ingest.daemon.metrics()).get(
        'sluice_ingest_revoke_seconds_count{mode="request"}') == 2 and m,
        what="the viewers' closes timed")
    inside = [line.rsplit(" closed ", 1)[1] for line in ingest.daemon.log_text().splitlines()
              if "after the revocation reached ingest" in line]
    print(f"{change}: inside ingest, from the event to each SRT close: {inside}")
    for mode, count in (("publish", 1), ("request", 2)):
        assert m[f'sluice_ingest_revoke_seconds_count{{mode="{mode}"}}'] == count, inside
        assert m[f'sluice_ingest_revoke_seconds_bucket{{mode="{mode}",le="1"}}'] == count, \
            inside                                   # every close within the second


VIEWERS = 20              # srtload's viewers of one stream (issue 8: "N viewers")
VIEW_RATE = 2_500_000     # the publisher's bits per second, paced by srtprobe
VIEW_SECONDS = 5


def cpu_seconds(pid):
    """User and system CPU time <pid> has used, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def watch_peak(ingest, stream, proc):
    """The highest sluice_ingest_stream_viewers of <stream> seen while <proc>
    runs (scraped every 100 ms), and ingest's CPU meanwhile (% of a core)."""
    peak, pid = 0, ingest.daemon.proc.pid
    t0, c0 = time.monotonic(), cpu_seconds(pid)
    while proc.poll() is None:
        peak = max(peak, viewers(ingest, stream))
        time.sleep(0.1)
    return peak, 100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def test_srtload_viewers_watch_a_live_stream(api, ingest, relay, tmp_path):
    """tools/srtload's viewers (--view, --viewers) against the real ingest:
    VIEWERS callers in one process watch one stream published at VIEW_RATE
    for VIEW_SECONDS. Every one connects and stays; together they receive at
    least 70 % of VIEWERS x rate x duration (the rest is slack for the
    handshakes and subscriptions, on an ASan build beside other tests); and
    ingest's per-stream gauge counts all of them at once (scraped while
    they watch). 20 viewers at 2.5 Mbps cost the ASan build of ingest 13 to
    16 % of a core here (printed), light enough to run beside other tests
    under xdist."""
    key = api.create_stream("cam1")["key"]
    pub = hold(ingest, ingest.streamid("cam1", key), 30, "--send",
               str(fixture("h264_aac_20s.ts")), "--rate", str(VIEW_RATE))
    wait_for(lambda: flowing(ingest, "cam1"), what="cam1 live")
    sids = tmp_path / "views.txt"
    sids.write_text(ingest.streamid("cam1", key, "request") + "\n")
    load = subprocess.Popen([str(BIN / "srtload"), f"--target=127.0.0.1:{ingest.srt_port}",
                             f"--view={sids}", f"--viewers={VIEWERS}", "--spread=500ms",
                             f"--duration={VIEW_SECONDS}s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, cpu = watch_peak(ingest, "cam1", load)
    out, err = load.communicate(timeout=30)
    assert load.returncode == 0, err
    report = json.loads(out)["viewers"]
    want = VIEWERS * VIEW_RATE / 8 * VIEW_SECONDS
    print(f"srtload: {VIEWERS} viewers got {report['recv_bytes']} bytes "
          f"({report['recv_bytes'] / want:.0%} of {want:.0f}), "
          f"dropped {report['pkts_dropped']}, peak gauge {peak}, ingest CPU {cpu:.0f}%")
    assert (report["count"], report["connected"], report["broken"]) == (VIEWERS, VIEWERS, 0)
    assert report["recv_bytes"] >= 0.7 * want, report
    assert peak == VIEWERS
    assert pub.poll() is None                    # the publisher was not disturbed
    pub.kill()
    pub.wait()


def test_viewer_follows_the_stream_through_a_relay_restart(api, ingest, relay, tmp_path):
    """The relay is killed (SIGKILL) during a publish and started again: the
    publisher stays connected, the viewer stays connected too and gets the
    stream again from the restarted relay (a second subscription)."""
    key = api.create_stream("cam1")["key"]
    pub = ffmpeg_publish(ingest.url("cam1", key), fixture("h264_aac_20s.ts"))
    wait_for(lambda: flowing(ingest, "cam1"), what="cam1 live")
    out = tmp_path / "watched.ts"
    view = ffmpeg_view(ingest.url("cam1", key, mode="request"), out)
    sent = 'sluice_ingest_viewer_bytes_total{stream="cam1"}'
    wait_for(lambda: ingest.metric(sent) > 200_000, what="the viewer watching")
    relay.kill()
    wait_for(lambda: ingest.metric('sluice_ingest_relay_connects_total{result="lost"}') >= 1,
             what="the link lost")
    relay.start()
    before = ingest.metric(sent)
    wait_for(lambda: ingest.metric('sluice_ingest_relay_links{state="live"}') == 1,
             timeout=15, what="publishing again")
    wait_for(lambda: ingest.metric(sent) > before + 200_000, timeout=15,
             what="the viewer watching again")
    m = ingest.daemon.metrics()
    assert m['sluice_ingest_viewers{state="live"}'] == 1
    assert m['sluice_ingest_viewer_subscriptions_total{result="lost"}'] >= 1
    assert m['sluice_ingest_viewer_subscriptions_total{result="accepted"}'] >= 2
    assert pub.poll() is None and view.poll() is None             # neither was dropped
    _, err = pub.communicate(timeout=40)
    assert pub.returncode == 0, err
    viewer_got_it(view, out, timeout=30, seconds=10, clean=False)


def test_refused_handshakes_cost_a_live_stream_nothing(daemons, api, relay, redis_server):
    """200 refused handshakes (srtload, 50 at a time) while a stream is
    published with an SRT latency of 500 ms: libsrt's receive-drop counter of
    the publisher's connection at ingest stays 0, and the publisher stays."""
    ing = start_ingest(daemons, api.base, redis_server.url, SLUICE_SRT_LATENCY="500ms")
    wait_for(lambda: ing.metric("sluice_ingest_relays_known") >= 1, what="a relay known")
    key = api.create_stream("cam1")["key"]
    pub = hold(ing, ing.streamid("cam1", key), 12, "--latency", "500ms", "--send",
               str(fixture("h264_aac_10s.ts")), "--rate", "2500000")
    wait_for(lambda: flowing(ing, "cam1"), what="cam1 live")
    r = subprocess.run([str(BIN / "srtload"), f"--target=127.0.0.1:{ing.srt_port}",
                        "--refuse=#!::r=cam1,s=sk_not-the-key-0123456789abcdef,m=publish",
                        "--handshakes=200", "--parallel=50", "--duration=20s"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["handshakes"]["refused"] == {"1401": 200}, report["handshakes"]
    # libsrt's counters of the publisher's connection, read after the storm
    # (every 300 ms here; they go with the connection)
    recv = 'srt_connection_data_packets_recv{'
    seen = next(v for k, v in ing.daemon.metrics().items() if k.startswith(recv))
    m = wait_for(lambda: (m := ing.daemon.metrics()) and
                 next(v for k, v in m.items() if k.startswith(recv)) > seen and m,
                 what="fresh SRT statistics")
    dropped = [v for k, v in m.items() if k.startswith("srt_connection_data_packets_dropped{")]
    assert dropped == [0], dropped
    assert m['sluice_ingest_rejects_total{code="1401"}'] >= 200
    out, _ = pub.communicate(timeout=20)
    assert (pub.returncode, out.strip()) == (0, "accepted")


def test_a_stalled_viewer_drops_to_keyframes_alone(api, ingest, relay, tmp_path):
    """A viewer that reads nothing (srtprobe holding with a small libsrt
    receive buffer: its window closes, what ingest sent it stays
    unacknowledged) falls behind: its frames are dropped up to a keyframe
    (counted per stream, logged for it alone) while it stays connected; the
    publisher and an ffmpeg viewer of the same stream are not affected."""
    key = api.create_stream("cam1")["key"]
    pub = ffmpeg_publish(ingest.url("cam1", key), fixture("h264_aac_10s.ts"))
    wait_for(lambda: flowing(ingest, "cam1"), what="cam1 live")
    stalled = hold(ingest, ingest.streamid("cam1", key, "request"), 30, "--rcvbuf", "200000")
    wait_for(lambda: viewers(ingest, "cam1") == 1, what="the stalled viewer")
    out = tmp_path / "watched.ts"
    view = ffmpeg_view(ingest.url("cam1", key, mode="request"), out)
    wait_for(lambda: viewers(ingest, "cam1") == 2, what="two viewers")
    wait_for(lambda: ingest.metric('sluice_ingest_viewer_dropped_bytes_total{stream="cam1"}') > 0,
             timeout=15, what="the stalled viewer's frames dropped")
    assert stalled.poll() is None
    _, err = pub.communicate(timeout=40)
    assert pub.returncode == 0, err
    viewer_got_it(view, out)
    log = ingest.daemon.log_text().splitlines()
    ids = [line.split("view ")[1].split()[0] for line in log if "watching cam1 on relay" in line]
    dropping = {line.split("view ")[1].split()[0] for line in log
                if "dropping to the next keyframe" in line}
    assert len(ids) == 2 and dropping == {ids[0]}, (ids, dropping)
    stalled.kill()
    stalled.wait()


def test_publisher_and_viewer_move_to_another_relay(daemons, api, ingest, relay, redis_server,
                                                    tmp_path):
    """Two relays; the one carrying the stream is killed (SIGKILL): ingest
    publishes on the other without dropping the publisher, the first frame
    there flagged DISCONTINUITY (what a subscriber at the new relay sees),
    and the SRT viewer follows the stream to it (stream.start)."""
    other = Relay(daemons, redis_server).start()
    wait_for(lambda: ingest.metric("sluice_ingest_relays_known") == 2, what="two relays known")
    key = api.create_stream("cam1")["key"]
    pub = ffmpeg_publish(ingest.url("cam1", key), fixture("h264_aac_20s.ts"))
    wait_for(lambda: flowing(ingest, "cam1"), what="cam1 live")
    record = json.loads(redis_server.client().get("sluice:stream:cam1"))
    first, second = (relay, other) if record["relay"] == relay.addr else (other, relay)
    out = tmp_path / "watched.ts"
    view = ffmpeg_view(ingest.url("cam1", key, mode="request"), out)
    sent = 'sluice_ingest_viewer_bytes_total{stream="cam1"}'
    wait_for(lambda: ingest.metric(sent) > 200_000, what="the viewer watching")
    at_second = tmp_path / "second.ts"
    sub = slpcat("subscribe", "--relay", second.addr, "--stream", "cam1", "--wait", 20,
                 "--output", at_second, "--frames", 40)
    first.kill()
    before = ingest.metric(sent)
    code, _, err = finish(sub, timeout=30)
    assert code == 0, err
    assert "discontinuity at PTS" in err, err
    assert sorted(ffprobe(at_second)[0]) == ["aac", "h264"]
    wait_for(lambda: ingest.metric(sent) > before + 200_000, timeout=15,
             what="the viewer watching at the other relay")
    assert pub.poll() is None and view.poll() is None             # neither was dropped
    assert json.loads(redis_server.client().get("sluice:stream:cam1"))["relay"] == second.addr
    _, err = pub.communicate(timeout=40)
    assert pub.returncode == 0, err
    _, err = view.communicate(timeout=30)
    assert sorted(ffprobe(out)[0]) == ["aac", "h264"], err


def test_playback_off_refuses_viewers(daemons, api, relay, redis_server):
    """playback=false: viewers are refused with 1501, publishers are not."""
    ing = start_ingest(daemons, api.base, redis_server.url, SLUICE_PLAYBACK="false")
    key = api.create_stream("cam1")["key"]
    target = f"127.0.0.1:{ing.srt_port}"
    assert srtprobe("--streamid", ing.streamid("cam1", key, "request"), target) == \
        (2, "rejected 1501 unimplemented")
    assert srtprobe("--streamid", ing.streamid("cam1", key), target) == (0, "accepted")
    wait_for(lambda: ing.metric('sluice_ingest_rejects_total{code="1501"}') == 1,
             what="the refusal counted")          # by the loop, after the callback
