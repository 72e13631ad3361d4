"""The servers a benchmark stands on, started for real as the integration
tests start them (tests/integration/conftest.py, api_fixtures.py): a private
PostgreSQL cluster, a private redis-server and sluice-api (the release build)
over them, each on a free loopback port. Used by bench_api and bench_ingest:

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import stack

    pg = stack.Postgres()
    redis = stack.Redis(workdir)
    api = stack.Api(workdir, pg.dsn, redis.url)
    try:
        pg.start(); redis.start(); api.start()
        token = api.login()
        key = api.create_stream(token, "cam1")
        ...
    finally:
        api.stop(); redis.stop(); pg.stop()

(made before started, so that the stops also take down a half-started stack;
stopping what never started does nothing).

Each takes cpu="<list>" to run under `taskset -c <list>`. A failure exits
with the bench's name (sys.argv[0]) and what went wrong, as the benches do.
Runs with the system interpreter and its standard library only.
"""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("SLUICE_BIN", ROOT / "build" / "release" / "bin"))
PROG = pathlib.Path(sys.argv[0]).name
JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123"
INTERNAL_TOKEN = "bench-internal-token-0123456789abcdef"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "bench-admin-password"


def free_port(kind=socket.SOCK_STREAM):
    """A port free for TCP (or UDP) on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, what, timeout=20):
    """Polls <pred> (an OSError counts as not yet) until it is true; exits
    the bench if it is not within <timeout> seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"{PROG}: timed out waiting for {what}")


def pinned(cpu, cmd):
    """<cmd> run on the cores <cpu> (taskset's list), or anywhere if None."""
    cmd = [str(a) for a in cmd]
    return cmd if cpu is None else ["taskset", "-c", str(cpu)] + cmd


def port_open(port):
    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True


def http(method, url, body=None, token=None):
    """One JSON call: (status, decoded body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


class Postgres:
    """A private cluster in a directory of its own (mkdtemp), on a free port,
    fsync off. PostgreSQL refuses to run as root: as root the directory
    belongs to postgres and every command goes through runuser."""

    def __init__(self, cpu=None):
        found = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not found:
            sys.exit(f"{PROG}: PostgreSQL server binaries not found (make deps)")
        self.bin = found[-1].parent
        self.cpu = cpu
        self.port = free_port()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sluice-bench-pg-"))
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")

    @property
    def dsn(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args):
        cmd = pinned(self.cpu, args)
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        try:
            self.run(self.bin / "initdb", "-D", self.dir / "data", "-A", "trust", "-U",
                     "postgres", "--no-sync", "-E", "UTF8")
            self.run(self.bin / "pg_ctl", "-D", self.dir / "data", "-l", self.dir / "log",
                     "-w", "-o", f"-p {self.port} -k {self.dir} "
                     "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
                     "start")
        except subprocess.CalledProcessError as e:
            self.stop()
            sys.exit(f"{PROG}: PostgreSQL did not start ({e.cmd[-1]} failed)")
        return self

    def stop(self):
        try:
            self.run(self.bin / "pg_ctl", "-D", self.dir / "data", "-m", "immediate", "-w",
                     "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    """A private redis-server, no persistence."""

    def __init__(self, workdir, cpu=None):
        self.cpu = cpu
        self.workdir = workdir
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def cli(self):
        """The redis-cli command line for this server, to append a command to."""
        return ["redis-cli", "-p", str(self.port)]

    def start(self):
        self.proc = subprocess.Popen(
            pinned(self.cpu, ["redis-server", "--port", self.port, "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", self.workdir,
                              "--loglevel", "warning"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), "redis-server")
        return self

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class Api:
    """sluice-api from $SLUICE_BIN on <dsn> and <redis_url>, with the bench's
    secrets and bootstrap admin, a cheap password hash and its log in
    <workdir>/api.log; <env> adds or overrides SLUICE_* settings."""

    def __init__(self, workdir, dsn, redis_url, cpu=None, env=None):
        self.cpu = cpu
        self.log_path = pathlib.Path(workdir) / "api.log"
        self.port, self.admin_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        self.env.update({"SLUICE_LISTEN": f"127.0.0.1:{self.port}",
                         "SLUICE_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
                         "SLUICE_DATABASE_URL": dsn, "SLUICE_REDIS_URL": redis_url,
                         "SLUICE_JWT_SECRET": JWT_SECRET,
                         "SLUICE_INTERNAL_TOKEN": INTERNAL_TOKEN,
                         "SLUICE_ADMIN_USER": ADMIN_USER,
                         "SLUICE_ADMIN_PASSWORD": ADMIN_PASSWORD,
                         "SLUICE_PASSWORD_COST": "10"})
        self.env.update(env or {})
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        """Starts the api and returns once it is ready and its admin can log in
        (the admin is inserted right after the database comes up)."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(pinned(self.cpu, [BIN / "sluice-api"]), env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.ready, "api /readyz")
        wait_for(lambda: self.call("POST", "/v1/auth/login", {
            "username": ADMIN_USER, "password": ADMIN_PASSWORD})[0] == 200, "the admin")
        return self

    def ready(self):
        if self.proc.poll() is not None:
            sys.exit(f"{PROG}: sluice-api exited with {self.proc.returncode}:\n"
                     + self.log_path.read_text(errors="replace")[-2000:])
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/readyz",
                                    timeout=1) as r:
            return r.status == 200

    def call(self, method, path, body=None, token=None):
        return http(method, self.base + path, body, token)

    def login(self):
        """The bootstrap admin's token."""
        status, body = self.call("POST", "/v1/auth/login",
                                 {"username": ADMIN_USER, "password": ADMIN_PASSWORD})
        if status != 200:
            sys.exit(f"{PROG}: login failed ({status})")
        return body["token"]

    def create_stream(self, token, name, **fields):
        """POST /v1/streams as <token>: the new stream's key."""
        status, body = self.call("POST", "/v1/streams", {"name": name, **fields}, token)
        if status != 201:
            sys.exit(f"{PROG}: creating a stream failed ({status})")
        return body["key"]

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
