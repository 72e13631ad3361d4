"""`make run` as a newcomer uses it: the script starts Redis, PostgreSQL and
every built daemon, prints where things are, serves, and on Ctrl-C stops
everything and leaves no process behind. Ports and the data directory are
moved so that this runs beside anything else on the machine."""
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile

import requests

from conftest import ROOT, free_port, port_open, wait_for


def test_make_run_starts_and_ctrl_c_stops_everything():
    data = pathlib.Path(tempfile.mkdtemp(prefix="sluice-run-test-"))
    ports = {name: free_port() for name in
             ("REDIS", "PG", "API", "API_ADMIN", "RELAY", "RELAY_ADMIN", "INGEST_SRT",
              "INGEST_ADMIN", "HLS", "HLS_ADMIN", "DISCOVERY_ADMIN", "EDGE", "EDGE_ADMIN")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update({f"SLUICE_RUN_{k}_PORT": str(v) for k, v in ports.items()})
    env["SLUICE_RUN_DATA"] = str(data)
    log = data / "run.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(ROOT / "scripts" / "run.sh")], stdout=out,
                                stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        wait_for(lambda: "Sluice is running" in log.read_text(), timeout=60,
                 what="make run to come up")
        text = log.read_text()
        assert f"redis://127.0.0.1:{ports['REDIS']}" in text
        assert f"127.0.0.1:{ports['PG']}/sluice" in text
        if (ROOT / "build" / "release" / "bin" / "sluice-api").exists():
            # the printed login works
            password = (data / "secrets" / "admin_password").read_text()
            # the listing goes on after "Sluice is running", among daemon logs
            wait_for(lambda: password in log.read_text(), timeout=10, what="the login")
            url = f"http://127.0.0.1:{ports['API']}/v1/auth/login"
            r = wait_for(lambda: _login(url, password), timeout=20, what="api login")
            assert r.status_code == 200 and r.json()["token"]
        if (ROOT / "build" / "release" / "bin" / "sluice-relay").exists():
            # the relay is up on its printed port, and ready on the suite's Redis
            wait_for(lambda: f"slp://127.0.0.1:{ports['RELAY']}" in log.read_text(), timeout=10,
                     what="the relay's line")
            ready = f"http://127.0.0.1:{ports['RELAY_ADMIN']}/readyz"
            wait_for(lambda: (_get(ready) or requests.Response()).status_code == 200,
                     timeout=20, what="relay /readyz")
            assert port_open(ports["RELAY"])
        if (ROOT / "build" / "release" / "bin" / "sluice-edge").exists():
            # the edge answers viewers (no stream yet) and discovery watches .run/hls
            wait_for(lambda: f"127.0.0.1:{ports['EDGE']}/live/<stream>/index.m3u8"
                     in log.read_text(), timeout=10, what="the edge's line")
            edge = f"http://127.0.0.1:{ports['EDGE']}/live/demo/index.m3u8"
            wait_for(lambda: _get(edge) is not None, timeout=20, what="edge")
            r = _get(edge)
            assert r.status_code == 404 and r.json()["error"] == "not_found"
            assert (data / "hls").is_dir()
            assert _get(f"http://127.0.0.1:{ports['DISCOVERY_ADMIN']}/healthz").status_code == 200
        if (ROOT / "build" / "release" / "bin" / "sluice-ingest").exists():
            # ingest is up with the api's table; the printed publish command names its port
            wait_for(lambda: f"srt://127.0.0.1:{ports['INGEST_SRT']}?streamid=#!::r=cam1,s=<key>"
                     in log.read_text(), timeout=10, what="the ingest's line")
            ready = f"http://127.0.0.1:{ports['INGEST_ADMIN']}/readyz"
            wait_for(lambda: _get(ready) is not None, timeout=20, what="ingest")
            r = wait_for(lambda: (x := _get(ready)) is not None and
                         x.json()["checks"]["authtable"] == "ok" and x, timeout=20,
                         what="ingest's authorization table")
            assert r.json()["checks"]["redis"] == "ok"
        if (ROOT / "build" / "release" / "bin" / "sluice-hls").exists():
            # the origin writes the directory discovery watches, and names itself
            origin = data / "hls" / "origin.json"
            wait_for(origin.exists, timeout=20, what="origin.json in .run/hls")
            assert f"127.0.0.1:{ports['HLS']}" in origin.read_text()
            hls = f"http://127.0.0.1:{ports['HLS']}/live/demo/index.m3u8"
            wait_for(lambda: _get(hls) is not None, timeout=10, what="hls")
            assert _get(hls).status_code == 404
            assert _get(f"http://127.0.0.1:{ports['HLS_ADMIN']}/healthz").status_code == 200
        os.killpg(proc.pid, signal.SIGINT)          # what Ctrl-C does
        assert proc.wait(timeout=30) == 0, log.read_text()
        assert "sluice run: stopped" in log.read_text()
        for name, port in ports.items():
            assert not port_open(port), f"{name} still listening on {port}"
        leftover = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True)
        assert leftover.stdout == "", f"processes left: {leftover.stdout}"
    finally:
        if proc.poll() is None:
            # The daemons run in sessions of their own: only run.sh can stop
            # them, so ask it (its trap stops everything) before forcing.
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        pg_dir = pathlib.Path("/var/tmp") / f"sluice-run-{_cksum(str(data))}"
        shutil.rmtree(pg_dir, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)


def _login(url, password):
    try:
        r = requests.post(url, json={"username": "admin", "password": password}, timeout=5)
        return r if r.status_code != 503 else None
    except requests.RequestException:
        return None


def _get(url):
    try:
        return requests.get(url, timeout=5)
    except requests.RequestException:
        return None


def _cksum(text):
    """POSIX cksum of <text>, as run.sh computes the PostgreSQL directory."""
    out = subprocess.run(["cksum"], input=text.encode(), capture_output=True)
    return out.stdout.split()[0].decode()
