"""`make run` as a newcomer uses it: the script starts Redis, PostgreSQL and
every built daemon, makes sure the stream "demo" exists, prints what to paste
(the ffmpeg command that publishes a test pattern to demo over SRT, the edge
URL to watch, the admin login), serves, and on Ctrl-C stops everything and
leaves no process behind. The test pastes what it prints: it runs the printed
ffmpeg command and curl login, and ffprobes the printed edge URL. Ports and
the data directory are moved so that this runs beside anything else on the
machine."""
import json
import os
import pathlib
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import ROOT, port_open, reserved_port, wait_for
from media import ffprobe

RELEASE = ROOT / "build" / "release" / "bin"
PORTS = ("REDIS", "PG", "API", "API_ADMIN", "RELAY", "RELAY_ADMIN", "INGEST_SRT",
         "INGEST_ADMIN", "HLS", "HLS_ADMIN", "DISCOVERY_ADMIN", "EDGE", "EDGE_ADMIN")


def built(name):
    return (RELEASE / name).exists()


class Run:
    """One scripts/run.sh on <ports> with its data in <data>, its output in
    <data>/run-<n>.out."""

    def __init__(self, data, ports, n=1):
        self.data = data
        self.ports = ports
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update({f"SLUICE_RUN_{k}_PORT": str(v) for k, v in ports.items()})
        env["SLUICE_RUN_DATA"] = str(data)
        self.log = data / f"run-{n}.out"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([str(ROOT / "scripts" / "run.sh")], stdout=out,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

    def text(self):
        return self.log.read_text()

    def wait_up(self):
        """Until the listing is printed, and the first-minute block after it."""
        wait_for(lambda: "Sluice is running" in self.text(), timeout=90,
                 what="make run to come up")
        if built("sluice-api"):
            wait_for(lambda: "Watch something now." in self.text() or
                     "No demo stream" in self.text(), timeout=10, what="the first minute")
            assert "Watch something now." in self.text(), self.text()

    def line(self, command):
        """The printed command line that starts with <command>."""
        for line in self.text().splitlines():
            if line.strip().startswith(command + " "):
                return line.strip()
        raise AssertionError(f"no {command} command printed:\n{self.text()}")

    def printed(self, command):
        """That line, as a shell splits it when pasted."""
        return shlex.split(self.line(command))

    def key(self):
        return (self.data / "secrets" / "demo_key").read_text().strip()

    def ctrl_c(self):
        os.killpg(self.proc.pid, signal.SIGINT)          # what Ctrl-C does
        assert self.proc.wait(timeout=30) == 0, self.text()
        assert "sluice run: stopped" in self.text()
        for name, port in self.ports.items():
            assert not port_open(port), f"{name} still listening on {port}"
        leftover = subprocess.run(["pgrep", "-f", str(self.data)], capture_output=True,
                                  text=True)
        assert leftover.stdout == "", f"processes left: {leftover.stdout}"

    def cleanup(self):
        if self.proc.poll() is None:
            # The daemons run in sessions of their own: only run.sh can stop
            # them, so ask it (its trap stops everything) before forcing.
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def run_data():
    """A data directory, and ports held for the whole test: run.sh starts
    long after they are chosen, and the restarts test frees and takes them
    again three times, while tests on the other xdist workers ask for free
    ports all along (a daemon of theirs on one of these ports answered, or
    kept ours from listening). SRT's port is UDP; ctrl_c checks that no TCP
    listener is left on it either, so it is held on TCP like the others."""
    data = pathlib.Path(tempfile.mkdtemp(prefix="sluice-run-test-"))
    held = {name: reserved_port() for name in PORTS}
    yield data, {name: port for name, (port, _) in held.items()}
    for _, sock in held.values():
        sock.close()
    pg_dir = pathlib.Path("/var/tmp") / f"sluice-run-{_cksum(str(data))}"
    shutil.rmtree(pg_dir, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)


def test_make_run_first_minute_and_ctrl_c_stops_everything(run_data):
    data, ports = run_data
    run = Run(data, ports)
    try:
        run.wait_up()
        text = run.text()
        assert f"redis://127.0.0.1:{ports['REDIS']}" in text
        assert f"127.0.0.1:{ports['PG']}/sluice" in text
        if built("sluice-api"):
            _check_login(run, ports)
        if built("sluice-relay"):
            # the relay is up on its printed port, and ready on the suite's Redis
            assert f"slp://127.0.0.1:{ports['RELAY']}" in text
            ready = f"http://127.0.0.1:{ports['RELAY_ADMIN']}/readyz"
            wait_for(lambda: (_get(ready) or requests.Response()).status_code == 200,
                     timeout=20, what="relay /readyz")
            assert port_open(ports["RELAY"])
        if built("sluice-edge"):
            # the edge answers viewers (demo is not live yet); discovery watches .run/hls
            edge = f"http://127.0.0.1:{ports['EDGE']}/live/demo/index.m3u8"
            assert run.printed("ffplay") == ["ffplay", edge]
            wait_for(lambda: _get(edge) is not None, timeout=20, what="edge")
            r = _get(edge)
            assert r.status_code == 404 and r.json()["error"] == "not_found"
            assert (data / "hls").is_dir()
            assert _get(f"http://127.0.0.1:{ports['DISCOVERY_ADMIN']}/healthz").status_code == 200
        if built("sluice-hls"):
            # the origin writes the directory discovery watches, and names itself
            origin = data / "hls" / "origin.json"
            wait_for(origin.exists, timeout=20, what="origin.json in .run/hls")
            assert f"127.0.0.1:{ports['HLS']}" in origin.read_text()
            assert _get(f"http://127.0.0.1:{ports['HLS_ADMIN']}/healthz").status_code == 200
        if all(built(f"sluice-{d}") for d in ("ingest", "hls", "discovery", "edge")):
            _publish_and_watch(run, ports)
        run.ctrl_c()
    finally:
        run.cleanup()


def _check_login(run, ports):
    """The printed curl login, pasted, gives a token that drives the api."""
    argv = run.printed("curl")
    assert argv[-1] == f"http://127.0.0.1:{ports['API']}/v1/auth/login"
    # pasted into bash as printed (-s -f: quiet, and fail on an HTTP error)
    out = subprocess.run(["bash", "-c", run.line("curl") + " -s -f"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    token = json.loads(out.stdout)["token"]
    r = requests.get(f"http://127.0.0.1:{ports['API']}/v1/streams/demo", timeout=10,
                     headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["name"] == "demo"
    key = run.data / "secrets" / "demo_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert run.key().startswith("sk_")


def _publish_and_watch(run, ports):
    """The printed ffmpeg command, pasted, publishes demo; the printed edge URL
    plays it with both tracks."""
    argv = run.printed("ffmpeg")
    assert argv[-1] == (f"srt://127.0.0.1:{ports['INGEST_SRT']}?streamid="
                        f"#!::r=demo,s={run.key()},m=publish")
    # readiness: ingest knows the stream (its table is loaded from the api)
    ready = f"http://127.0.0.1:{ports['INGEST_ADMIN']}/readyz"
    wait_for(lambda: (x := _get(ready)) is not None and x.status_code == 200, timeout=20,
             what="ingest ready")
    edge = f"http://127.0.0.1:{ports['EDGE']}/live/demo/index.m3u8"
    err = open(run.data / "ffmpeg.err", "wb")
    # pasted into bash as printed (exec: the signal at the end reaches ffmpeg)
    ffmpeg = subprocess.Popen(["bash", "-c", "exec " + run.line("ffmpeg")],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    started = time.monotonic()
    try:
        def segments():
            assert ffmpeg.poll() is None, (run.data / "ffmpeg.err").read_text()[-2000:]
            r = _get(edge)
            return r is not None and r.status_code == 200 and r.text.count("#EXTINF") >= 3
        wait_for(segments, timeout=60, interval=0.5, what="three segments of demo at the edge")
        # the newcomer has watched for about ten seconds by now
        time.sleep(max(0.0, 10.0 - (time.monotonic() - started)))
        codecs, _ = ffprobe(edge)
        assert sorted(codecs) == ["aac", "h264"]
        assert ffmpeg.poll() is None, "the publisher was cut off"
    finally:
        if ffmpeg.poll() is None:
            ffmpeg.send_signal(signal.SIGINT)
        ffmpeg.wait(timeout=15)
        err.close()


def test_make_run_keeps_the_demo_key_across_restarts(run_data):
    """The key is shown once by the api, so run.sh keeps it; a lost key file
    is replaced by rotating the key (the old one stops working)."""
    if not built("sluice-api"):
        pytest.skip("sluice-api is not built")
    data, ports = run_data
    keys = []
    for n in (1, 2, 3):
        if n == 3:
            (data / "secrets" / "demo_key").unlink()
        run = Run(data, ports, n)
        try:
            run.wait_up()
            keys.append(run.key())
            assert f"s={keys[-1]},m=publish'" in run.text()
            if n == 3:
                assert "rotated it" in run.text()
                assert _authorize(data, ports, keys[0]) == "bad_key"
                assert _authorize(data, ports, keys[2]) is True
            run.ctrl_c()
        finally:
            run.cleanup()
    assert keys[0] == keys[1] != keys[2]
    assert "created the stream demo" in (data / "run-1.out").read_text()
    again = (data / "run-2.out").read_text()
    assert "sluice run: created" not in again and "rotated it" not in again


def _authorize(data, ports, key):
    """What the api tells ingest about publishing demo with <key>."""
    token = (data / "secrets" / "internal_token").read_text().strip()
    r = requests.post(f"http://127.0.0.1:{ports['API']}/internal/v1/authorize", timeout=10,
                      headers={"Authorization": f"Bearer {token}"},
                      json={"protocol": "srt", "action": "publish", "stream": "demo",
                            "key": key})
    body = r.json()
    return True if body["allow"] else body["reason"]


def _get(url):
    try:
        return requests.get(url, timeout=5)
    except requests.RequestException:
        return None


def _cksum(text):
    """POSIX cksum of <text>, as run.sh computes the PostgreSQL directory."""
    out = subprocess.run(["cksum"], input=text.encode(), capture_output=True)
    return out.stdout.split()[0].decode()
