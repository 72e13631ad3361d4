"""Who sluice-ingest lets in, where the happy paths of test_ingest.py do not
reach:
- a session id whose authorization fails because the api is stalled
  (SIGSTOP: the request goes unanswered until authorize-timeout) or gone
  (killed: the connection is refused): the connection is closed within a
  second or so and nothing it sent goes anywhere;
- the authorization table reloaded whole after every (re)subscription to
  sluice:events, and periodically (authtable-refresh), catching a change
  whose event was lost (here: made in PostgreSQL directly, with no event);
- the connection cap (srt-max-connections): beyond it, 1402.
"""
import os
import signal
import subprocess
import time

import psycopg2

from conftest import wait_for
from ingest_fixtures import (api, api_factory, cut, flowing, ingest, lease,  # noqa: F401
                             relay, session, srtprobe, start_ingest, subscribe)
from media import BIN, finish, fixture


def probe(ingest, streamid, *args):
    """srtprobe holding a connection in the background (see its --help)."""
    return subprocess.Popen([str(BIN / "srtprobe")] + [str(a) for a in args] +
                            ["--streamid", streamid, f"127.0.0.1:{ingest.srt_port}"],
                            stdout=subprocess.PIPE, text=True)


def closed_after(text):
    """srtprobe's "closed by the listener after 0.85 s": the seconds."""
    assert text.startswith("accepted\nclosed by the listener"), text
    return float(text.split()[-2])


def nothing_forwarded(ingest, relay, redis_server, stream):
    code, got, err = finish(subscribe(relay, stream, "-", wait=1))
    assert code == 3 and got == b"" and "not_found" in err, err
    m = ingest.daemon.metrics()
    assert f'sluice_ingest_stream_bytes_total{{stream="{stream}"}}' not in m
    assert lease(redis_server, stream) is None


# --------------------------------------------------------------------------
# A session id the api cannot authorize

def session_streamid(api):
    api.create_stream("cam1")
    return f"#!::r=cam1,s={session(api, 'cam1')},m=publish"


def publish(ingest, streamid):
    """A publisher sending for up to 3 s (its authorization fails meanwhile)."""
    return probe(ingest, streamid, "--hold", "3s", "--send", fixture("h264_aac_10s.ts"),
                 "--rate", "3000000")


def handshakes(ingest):
    return ingest.metric('srt_connections_current{mode="handshake"}')


def test_session_closed_when_the_api_stalls(api, ingest, relay, redis_server):
    """The api is stopped (SIGSTOP): ingest's authorize call connects but is
    never answered. The connection waits as a "handshake", what it sends
    held, until authorize-timeout (800 ms) ends it."""
    streamid = session_streamid(api)
    os.kill(api.daemon.proc.pid, signal.SIGSTOP)
    try:
        proc = publish(ingest, streamid)
        wait_for(lambda: handshakes(ingest) == 1, timeout=5, interval=0.02,
                 what="the session waiting for its authorization")
        text, _ = proc.communicate(timeout=15)
        assert proc.returncode == 4, text
        assert closed_after(text) < 2.0, text
        assert handshakes(ingest) == 0
    finally:
        os.kill(api.daemon.proc.pid, signal.SIGCONT)
    m = ingest.daemon.metrics()
    assert m.get('sluice_ingest_authorize_total{result="error"}') == 1
    assert m.get('sluice_ingest_closed_total{reason="unauthorized"}') == 1
    assert 'sluice_ingest_authorize_total{result="allow"}' not in m
    assert "cannot authorize the session: timeout" in ingest.daemon.log_text()
    nothing_forwarded(ingest, relay, redis_server, "cam1")


def test_session_closed_when_the_api_is_gone(api, ingest, relay, redis_server):
    """The api is killed: the authorize call is refused at once, and the
    connection closed as soon as it may be (200 ms after accept)."""
    streamid = session_streamid(api)
    api.daemon.kill()
    proc = publish(ingest, streamid)
    text, _ = proc.communicate(timeout=15)
    assert proc.returncode == 4, text
    assert closed_after(text) < 2.0, text
    m = ingest.daemon.metrics()
    assert m.get('sluice_ingest_authorize_total{result="error"}') == 1
    assert m.get('sluice_ingest_closed_total{reason="unauthorized"}') == 1
    assert m.get('srt_connections_current{mode="handshake"}', 0) == 0
    assert "cannot authorize the session: " in ingest.daemon.log_text()
    nothing_forwarded(ingest, relay, redis_server, "cam1")
    assert ingest.daemon.healthy()


# --------------------------------------------------------------------------
# The authorization table reloaded whole

def disable_without_event(dsn, stream):
    """What PATCH {"disabled": true} does in PostgreSQL (a new auth version),
    without the event that would tell ingest: as if the event were lost."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("WITH v AS (UPDATE auth_state SET version = version + 1 RETURNING version)"
                    " UPDATE streams SET disabled = true, updated_at = now(),"
                    " auth_version = v.version FROM v WHERE name = %s", (stream,))
        assert cur.rowcount == 1


def loads(ingest):
    return ingest.metric('sluice_ingest_authtable_loads_total{result="ok"}')


def settled(ingest):
    """The loads of the start are done: one at start, one after subscribing."""
    wait_for(lambda: loads(ingest) >= 2, what="the table loaded after subscribing")
    return loads(ingest)


def test_table_reloaded_after_resubscribing(api, ingest, postgres_db, redis_server):
    key = api.create_stream("cam1")["key"]
    streamid = ingest.streamid("cam1", key)
    target = f"127.0.0.1:{ingest.srt_port}"
    before = settled(ingest)
    assert srtprobe("--streamid", streamid, target) == (0, "accepted")
    disable_without_event(postgres_db, "cam1")
    assert srtprobe("--streamid", streamid, target) == (0, "accepted")   # not told
    assert loads(ingest) == before
    # drop every subscriber's connection: ingest subscribes again, and
    # since events may have been lost meanwhile, reloads the table
    killed = redis_server.client().execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    assert killed >= 1
    wait_for(lambda: loads(ingest) > before, timeout=10, what="the table reloaded")
    assert srtprobe("--streamid", streamid, target) == (2, "rejected 1403 forbidden")
    assert ingest.daemon.log_text().count("redis: subscribed to sluice:events") >= 2


def test_table_reloaded_periodically(daemons, api, postgres_db, redis_server, relay):
    """authtable-refresh at its lowest (1s), and no change to Redis at all:
    the change with no event is caught by the next periodic load."""
    ing = start_ingest(daemons, api.base, redis_server.url, SLUICE_AUTHTABLE_REFRESH="1s")
    key = api.create_stream("cam1")["key"]
    streamid = ing.streamid("cam1", key)
    target = f"127.0.0.1:{ing.srt_port}"
    assert srtprobe("--streamid", streamid, target) == (0, "accepted")
    t0 = time.monotonic()
    disable_without_event(postgres_db, "cam1")
    before = loads(ing)
    wait_for(lambda: loads(ing) >= before + 2, timeout=10, what="two periodic loads")
    assert srtprobe("--streamid", streamid, target) == (2, "rejected 1403 forbidden")
    assert time.monotonic() - t0 < 8
    assert ing.daemon.log_text().count("redis: subscribed to sluice:events") == 1


# --------------------------------------------------------------------------
# The connection cap

def test_connection_cap(daemons, api, relay, redis_server, tmp_path):
    """srt-max-connections=2: a third caller is refused with 1402 in the
    handshake, counted; the two go on undisturbed; once one has gone, a
    caller gets in again."""
    ing = start_ingest(daemons, api.base, redis_server.url, SLUICE_SRT_MAX_CONNECTIONS="2")
    wait_for(lambda: ing.metric("sluice_ingest_relays_known") >= 1, what="a relay known")
    keys = {name: api.create_stream(name)["key"] for name in ("cam1", "cam2", "cam3")}
    src = cut("h264_aac_10s.ts", 6, tmp_path)
    first = probe(ing, ing.streamid("cam1", keys["cam1"]), "--hold", "4s", "--send", src,
                  "--rate", "3000000")
    second = probe(ing, ing.streamid("cam2", keys["cam2"]), "--hold", "6s", "--send", src,
                   "--rate", "3000000")
    wait_for(lambda: flowing(ing, "cam1") and flowing(ing, "cam2"), timeout=10,
             what="both streams at the relay")
    third = ing.streamid("cam3", keys["cam3"])
    target = f"127.0.0.1:{ing.srt_port}"
    assert srtprobe("--streamid", third, target) == (2, "rejected 1402 overload")
    assert ing.metric('sluice_ingest_rejects_total{code="1402"}') == 1
    fed = {s: ing.metric(f'sluice_ingest_stream_bytes_total{{stream="{s}"}}')
           for s in ("cam1", "cam2")}
    wait_for(lambda: all(ing.metric(f'sluice_ingest_stream_bytes_total{{stream="{s}"}}')
                         > fed[s] for s in fed), what="both streams going on")
    out, _ = first.communicate(timeout=15)
    assert (first.returncode, out.strip()) == (0, "accepted")      # never disturbed
    wait_for(lambda: ing.metric('srt_connections_current{mode="publish"}') == 1,
             what="the first gone")
    assert srtprobe("--hold", "1s", "--send", src, "--streamid", third, target) == \
        (0, "accepted")
    out, _ = second.communicate(timeout=15)
    assert (second.returncode, out.strip()) == (0, "accepted")
    assert ing.metric('sluice_ingest_rejects_total{code="1402"}') == 1
    assert ing.metric("srt_connections_total") == 3
