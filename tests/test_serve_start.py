"""How `dmage serve` starts: private files, and no secret lost to a busy port."""

import json
import os
import socket
import stat
import subprocess
import sys

from tests.conftest import Device, base_environment, start_server


def test_the_sqlite_files_are_private_to_the_server_user(tmp_path):
    folder = tmp_path / "data"
    server = start_server(tmp_path, f"sqlite:///{folder / 'dotmage.db'}")
    try:
        status, _, body = server.request("GET", "/api/v1/health")
    finally:
        server.stop()
    assert status == 200
    assert body["max_body"] == 1024 * 1024
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path.name


def test_a_busy_port_fails_before_any_bootstrap_secret_is_made(tmp_path):
    database = tmp_path / "server.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        failed = subprocess.run(
            [sys.executable, "-m", "dotmage", "serve", "--port", str(port)],
            env=base_environment(
                DOTMAGE_DB_URL=f"sqlite:///{database}", HOME=tmp_path / "home"
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert failed.returncode == 1
    assert "cannot listen" in failed.stderr
    assert "Bootstrap secret" not in failed.stderr

    # The next start on a free port is the first to make, and show, a secret.
    server = start_server(tmp_path, f"sqlite:///{database}", bootstrap=None)
    try:
        assert "Bootstrap secret (shown once" in server.log()
    finally:
        server.stop()
    assert os.path.exists(database)


def test_deeply_nested_json_is_a_400_not_a_500(tmp_path):
    server = start_server(tmp_path, f"sqlite:///{tmp_path / 'server.db'}")
    nested = ('{"a":' + "[" * 5000 + "]" * 5000 + "}").encode()
    try:
        status, _, body = server.request("POST", "/api/v1/auth/prelogin", raw=nested)
    finally:
        server.stop()
    assert status == 400
    assert body["error"]["message"] == "the request body is nested too deeply"
    assert "Traceback" not in server.log()


def test_debug_logging_never_writes_queries_or_their_parameters(tmp_path):
    server = start_server(
        tmp_path, f"sqlite:///{tmp_path / 'server.db'}", DOTMAGE_LOG_LEVEL="debug"
    )
    device = Device(tmp_path / "home", tmp_path / "work", server)
    try:
        device.auth()
        device.write(".env", "API_KEY=debug-log-value\n")
        device.run("init", "logged", check=0)
    finally:
        server.stop()
    log = server.log()
    assert "GET /api/v1/health" in log
    for leak in ("INSERT INTO", "SELECT ", "secret_hash", "sealed_account_key"):
        assert leak not in log, leak


def test_a_page_size_out_of_range_is_a_400(tmp_path):
    server = start_server(tmp_path, f"sqlite:///{tmp_path / 'server.db'}")
    device = Device(tmp_path / "home", tmp_path / "work", server)
    try:
        device.auth()
        device.write(".env", "A=1\n")
        device.run("init", "paged", check=0)
        token = json.loads((device.home / "credentials.json").read_text())
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        for path in (
            "/api/v1/audit?limit=0",
            "/api/v1/audit?limit=1001",
            "/api/v1/apps/paged/-/envs/dev/revisions?limit=0",
        ):
            status, _, body = server.request("GET", path, headers=headers)
            assert status == 400, path
            assert "'limit' must be between 1 and 1000" in body["error"]["message"]
    finally:
        server.stop()
