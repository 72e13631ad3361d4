"""Fixtures for integration tests: real redis-server, real PostgreSQL, and the
daemons themselves, each on free loopback ports so that tests can run side by
side. Run with the system interpreter (/usr/bin/python3 -m pytest), which has
Debian's python3-redis, python3-psycopg2 and python3-requests.

The daemons come from $SLUICE_BIN (the ASan+UBSan build under `make test`).
A daemon fixture stops its process with SIGTERM at teardown and fails the test
if it did not exit cleanly within the drain bound, or if a sanitizer reported
anything (leaks included).
"""
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("SLUICE_BIN", ROOT / "build" / "asan" / "bin"))
FIXTURES = ROOT / "tests" / "fixtures"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ERROR: UndefinedBehaviorSanitizer")


def free_port(kind=socket.SOCK_STREAM):
    """A port free for TCP (or UDP) on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reserved_port():
    """A TCP port on 127.0.0.1 held for the caller until the returned socket
    is closed: bound with SO_REUSEADDR and not listening, so no free_port()
    (in this process or another xdist worker) and no bind to port 0 gets it
    meanwhile, while a server that sets SO_REUSEADDR itself (every daemon,
    Redis, PostgreSQL) still binds and listens on it. For a test that starts
    and stops servers on the same ports for a while (free_port's port is free
    only at the moment it is returned). Returns (port, socket)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1], s


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Polls <predicate> until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# Redis

class RedisServer:
    """A private redis-server, no persistence. Can be stopped and restarted on
    the same port to test outages."""

    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = workdir
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), what="redis-server")
        return self

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def client(self):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


# --------------------------------------------------------------------------
# PostgreSQL

def pg_bindir():
    """Debian keeps initdb and pg_ctl out of PATH, next to pg_config's bindir
    under /usr/lib/postgresql/<version>/bin."""
    versions = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        pytest.fail("PostgreSQL server binaries not found (run `make deps`)")
    return versions[-1].parent


class PostgresCluster:
    """A private cluster on a free port in a mkdtemp directory. PostgreSQL
    refuses to run as root, so as root the directory belongs to `postgres` and
    every server command runs through runuser."""

    def __init__(self):
        self.port = free_port()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sluice-pg-"))
        self.data = self.dir / "data"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.bindir = pg_bindir()
        self._db_counter = 0

    def _run(self, *args, **kw):
        cmd = [str(a) for a in args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, **kw)

    def init(self):
        self._run(self.bindir / "initdb", "-D", self.data, "-A", "trust",
                  "-U", "postgres", "--no-sync", "-E", "UTF8")
        return self

    def start(self):
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-l", self.dir / "log",
                  "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                  "start")
        return self

    def stop(self, mode="fast"):
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def destroy(self):
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def dsn(self, dbname="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self):
        """A fresh database, so that each test starts from an empty schema."""
        import psycopg2
        self._db_counter += 1
        name = f"t{os.getpid()}_{self._db_counter}"
        conn = psycopg2.connect(self.dsn())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.dsn(name)


@pytest.fixture(scope="session")
def postgres_cluster():
    cluster = PostgresCluster().init().start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def postgres_db(postgres_cluster):
    """The DSN of a new, empty database on the shared cluster."""
    return postgres_cluster.create_database()


@pytest.fixture
def private_postgres():
    """A cluster of the test's own, for tests that stop and restart it."""
    cluster = PostgresCluster().init().start()
    yield cluster
    cluster.destroy()


# --------------------------------------------------------------------------
# Daemons

class Daemon:
    """One sluice daemon started from $SLUICE_BIN with an environment of
    SLUICE_* settings. Its stderr goes to a file the test can read."""

    def __init__(self, name, env, workdir, admin_port=None, args=()):
        self.name = name
        self.binary = BIN / f"sluice-{name}"
        self.env = dict(env)
        self.args = list(args)
        self.admin_port = admin_port or free_port()
        self.env.setdefault("SLUICE_ADMIN_LISTEN", f"127.0.0.1:{self.admin_port}")
        self.env.setdefault("SLUICE_SHUTDOWN_TIMEOUT", "3s")
        self.log_path = pathlib.Path(workdir) / f"{name}-{self.admin_port}.log"
        self.proc = None

    def start(self, wait_healthy=True):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update({k: str(v) for k, v in self.env.items()})
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        lsan = ROOT / "tests" / "lsan.supp"
        if lsan.exists():
            env.setdefault("LSAN_OPTIONS", f"suppressions={lsan}")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.binary)] + self.args, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        if wait_healthy:
            wait_for(self.healthy, timeout=15, what=f"{self.name} /healthz")
        return self

    def admin_url(self, path):
        return f"http://127.0.0.1:{self.admin_port}{path}"

    def healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n"
                                 + self.log_text()[-3000:])
        try:
            return requests.get(self.admin_url("/healthz"), timeout=0.5).status_code == 200
        except requests.RequestException:
            return False

    def ready(self):
        try:
            return requests.get(self.admin_url("/readyz"), timeout=0.5).status_code == 200
        except requests.RequestException:
            return False

    def metrics(self):
        """The admin port's metrics as {"name{labels}": value}."""
        text = requests.get(self.admin_url("/metrics"), timeout=2).text
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def kill(self):
        """kill -9: no cleanup, as when a node dies."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def stop(self, timeout=12):
        """SIGTERM, then checks for a clean exit and a clean sanitizer report."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close()
                raise AssertionError(f"{self.name} did not exit within {timeout}s of SIGTERM")
        code = self.proc.returncode
        self._close()
        log = self.log_text()
        for mark in SANITIZER_MARKS:
            assert mark not in log, f"{self.name}: sanitizer report:\n{log[-6000:]}"
        assert code == 0, f"{self.name} exited with {code}:\n{log[-3000:]}"

    def _close(self):
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None
        self.proc = None


@pytest.fixture
def daemons(tmp_path):
    """A factory: daemons("relay", {"SLUICE_...": ...}) starts one; all are
    stopped (and checked) at teardown, last started first."""
    started = []

    def start(name, env, wait_healthy=True, **kw):
        d = Daemon(name, env, tmp_path, **kw)
        started.append(d)
        return d.start(wait_healthy=wait_healthy)

    yield start
    errors = []
    for d in reversed(started):
        try:
            d.stop()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors))
