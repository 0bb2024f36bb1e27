"""Shared fixtures: a real server on a free loopback port, and the real CLI.

Every server test runs on SQLite in a temp dir, and again on PostgreSQL when
DOTMAGE_TEST_PG_URL names a server (each test then gets a fresh database).
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BOOTSTRAP = "test-bootstrap-secret"
PASSWORD = "correct horse battery"
PG_VARIABLE = "DOTMAGE_TEST_PG_URL"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_environment(**extra) -> dict:
    """A clean environment for the CLI and server: no state leaks in."""
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR", "TERM")
    environment = {k: v for k, v in os.environ.items() if k in keep}
    environment.update(
        PYTHONPATH=str(REPO),
        PYTHONDONTWRITEBYTECODE="1",
        DOTMAGE_INSECURE_FAST_KDF="1",
        DOTMAGE_KEYRING="file",
    )
    environment.update({k: str(v) for k, v in extra.items()})
    return environment


# -- databases -------------------------------------------------------------------


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_VARIABLE) or None


def create_pg_database(admin_url: str) -> str:
    """A fresh database on the test PostgreSQL server; returns its URL."""
    import psycopg

    name = f"dotmage_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(admin_url: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database(kind: str, folder: Path):
    """A fresh database URL of that kind ("sqlite" or "postgresql").

    PostgreSQL gets a database of its own, dropped afterwards; without
    DOTMAGE_TEST_PG_URL the test is skipped with the reason.
    """
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'server.db'}"
        return
    admin = _pg_admin_url()
    if not admin:
        pytest.skip(f"PostgreSQL tests need {PG_VARIABLE} (see README)")
    url = create_pg_database(admin)
    try:
        yield url
    finally:
        drop_pg_database(admin, url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh database URL: SQLite always, PostgreSQL when configured."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


# -- the server --------------------------------------------------------------------


@dataclass
class Server:
    url: str
    db_url: str
    process: subprocess.Popen
    log_path: Path
    environment: dict = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method, path, body=None, headers=None, raw=None):
        """(status, headers, parsed JSON or text) for one request."""
        data = raw if raw is not None else None
        if body is not None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers=headers or {}
        )
        if data is not None and "Content-Type" not in (headers or {}):
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                status, head, payload = reply.status, reply.headers, reply.read()
        except urllib.error.HTTPError as reply:
            status, head, payload = reply.code, reply.headers, reply.read()
        try:
            return status, head, json.loads(payload)
        except ValueError:
            return status, head, payload.decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    tmp_path: Path, db_url: str, port=None, bootstrap=BOOTSTRAP, **settings
) -> Server:
    """Start `dmage serve`; bootstrap=None lets the server make its own secret."""
    port = port or free_port()
    # settings may override these defaults (e.g. a low DOTMAGE_RATE_LIMIT).
    defaults = {"DOTMAGE_RATE_LIMIT": "1000/min", "HOME": tmp_path / "server-home"}
    environment = base_environment(DOTMAGE_DB_URL=db_url, **{**defaults, **settings})
    if bootstrap is not None:
        environment["DOTMAGE_BOOTSTRAP_SECRET"] = bootstrap
    log_path = tmp_path / f"server-{port}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dotmage", "serve", "--port", str(port)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", db_url, process, log_path, environment)
    wait_until_healthy(server)
    return server


def wait_until_healthy(server: Server, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            urllib.request.urlopen(server.url + "/api/v1/health", timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"server did not become healthy:\n{server.log()}")


@pytest.fixture
def server(tmp_path, db_url):
    running = start_server(tmp_path, db_url)
    yield running
    running.stop()


# -- the CLI --------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes = b""

    def json(self):
        return json.loads(self.stdout)


class Device:
    """One machine running dmage: its own DOTMAGE_HOME and working directory."""

    def __init__(self, home: Path, cwd: Path, server: Server | None):
        self.home, self.cwd, self.server = home, cwd, server
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.environment = base_environment(
            DOTMAGE_HOME=home,
            DOTMAGE_MASTER_PASSWORD=PASSWORD,
            DOTMAGE_BOOTSTRAP_SECRET=BOOTSTRAP,
            HOME=home.parent / (home.name + "-userhome"),
        )

    def run(self, *args, input=None, env=None, timeout=60, check=None) -> Result:
        environment = {**self.environment, **(env or {})}
        environment = {k: v for k, v in environment.items() if v is not None}
        completed = subprocess.run(
            [sys.executable, "-m", "dotmage", *map(str, args)],
            cwd=self.cwd,
            env=environment,
            input=input if isinstance(input, bytes | type(None)) else input.encode(),
            capture_output=True,
            timeout=timeout,
        )
        result = Result(
            completed.returncode,
            completed.stdout.decode("utf-8", "replace"),
            completed.stderr.decode("utf-8", "replace"),
            completed.stdout,
        )
        if check is not None:
            assert result.code == check, (
                f"dmage {' '.join(map(str, args))} exited {result.code}, "
                f"wanted {check}\nstdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def auth(self, **env) -> Result:
        return self.run("auth", "--server", self.server.url, env=env, check=0)

    def write(self, name: str, content: bytes | str) -> Path:
        path = self.cwd / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path


@pytest.fixture
def make_device(tmp_path, server):
    """Factory: make_device('laptop') -> a Device with its own home, not signed in."""

    def make(name: str = "laptop", signed_in: bool = False) -> Device:
        device = Device(tmp_path / f"{name}-home", tmp_path / f"{name}-work", server)
        device.environment["DOTMAGE_DEVICE_NAME"] = name
        if signed_in:
            device.auth()
        return device

    return make


@pytest.fixture
def device(make_device):
    """The first device, signed in (it created the account)."""
    return make_device("laptop", signed_in=True)
