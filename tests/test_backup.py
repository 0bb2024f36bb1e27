"""The README's backups, restored into a fresh server, give back every revision."""

import os
import shutil
import sqlite3
import subprocess
import urllib.parse

import pytest
from conftest import (
    PG_VARIABLE,
    Device,
    create_pg_database,
    drop_pg_database,
    start_server,
)

APP = "work/api"
REVISIONS = ["A=1\n", "A=2\n# second\n", 'A=3\nB="two words"\n', "A=4\nexport C=\n"]


def _fill(device: Device) -> dict[tuple[str, int], bytes]:
    """Push REVISIONS to dev and one to prod; returns what each revision holds."""
    device.auth()
    pushed = {}
    for number, text in enumerate(REVISIONS, start=1):
        device.write(".env", text)
        device.run("init" if number == 1 else "push", APP, check=0)
        pushed["dev", number] = text.encode()
    device.run("env", "new", APP, "prod", check=0)
    device.write(".env", "PROD=1\n")
    device.run("push", APP, "--env", "prod", check=0)
    pushed["prod", 1] = b"PROD=1\n"
    return pushed


def _assert_every_revision_pulls_back(device, pushed) -> None:
    for (env, number), text in pushed.items():
        result = device.run(
            "pull", APP, "--env", env, "--rev", number, "--stdout", check=0
        )
        assert result.stdout_bytes == text, (env, number)


def _restore_and_check(tmp_path, server, device, pushed, restored_url) -> None:
    # The fresh server takes the old one's place on the same port, so the
    # device's stored server URL and tokens are tested as restored data too.
    port = urllib.parse.urlsplit(server.url).port
    server.stop()
    restored = start_server(tmp_path, restored_url, port=port)
    try:
        _assert_every_revision_pulls_back(device, pushed)
    finally:
        restored.stop()


def _sqlite3_cli_backup(source: str, target: str) -> None:
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 command is not installed (the API variant runs)")
    subprocess.run(["sqlite3", source, f".backup '{target}'"], check=True)


def _python_api_backup(source: str, target: str) -> None:
    with sqlite3.connect(source) as live, sqlite3.connect(target) as copy:
        live.backup(copy)
    live.close()
    copy.close()


@pytest.mark.parametrize(
    "backup", [_sqlite3_cli_backup, _python_api_backup], ids=["sqlite3", "python"]
)
def test_an_online_sqlite_backup_restores_every_revision(tmp_path, backup):
    live = tmp_path / "live.db"
    server = start_server(tmp_path, f"sqlite:///{live}")
    try:
        device = Device(tmp_path / "laptop-home", tmp_path / "laptop-work", server)
        pushed = _fill(device)
        backup(str(live), str(tmp_path / "backup.db"))  # the server keeps running
    except BaseException:
        server.stop()
        raise

    fresh = tmp_path / "restored" / "dotmage.db"
    fresh.parent.mkdir()
    shutil.copy(tmp_path / "backup.db", fresh)
    live.unlink()
    _restore_and_check(tmp_path, server, device, pushed, f"sqlite:///{fresh}")


def test_a_pg_dump_restores_every_revision(tmp_path):
    admin = os.environ.get(PG_VARIABLE)
    if not admin:
        pytest.skip(f"PostgreSQL tests need {PG_VARIABLE} (see README)")
    source, target = create_pg_database(admin), create_pg_database(admin)
    server = start_server(tmp_path, source)
    try:
        device = Device(tmp_path / "laptop-home", tmp_path / "laptop-work", server)
        pushed = _fill(device)
        dump = tmp_path / "dotmage.dump"
        subprocess.run(["pg_dump", "-Fc", "-f", str(dump), source], check=True)
        subprocess.run(
            ["pg_restore", "--no-owner", "-d", target, str(dump)], check=True
        )
        drop_pg_database(admin, source)
        _restore_and_check(tmp_path, server, device, pushed, target)
    finally:
        server.stop()
        drop_pg_database(admin, source)
        drop_pg_database(admin, target)
