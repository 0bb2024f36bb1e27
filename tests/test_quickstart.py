"""The README's quick start through the real CLI against a real server."""

import os
import stat
from pathlib import Path

import pytest

SAMPLE = (
    "# database\n"
    "DATABASE_URL=postgres://app:s3cret@db:5432/app\n"
    'GREETING="hello world" # shown on the home page\n'
    "export PORT=8000\n"
    "\n"
    "EMPTY=\n"
)


def test_first_auth_creates_the_account(make_device):
    laptop = make_device("laptop")
    result = laptop.auth()
    assert "Account created. Device registered. Key cached (expires in 7d)." in (
        result.stderr
    )
    assert (laptop.home / "credentials.json").exists()
    assert stat.S_IMODE(os.stat(laptop.home / "credentials.json").st_mode) == 0o600


def test_init_pushes_revision_one_and_pull_is_byte_for_byte(device):
    device.write(".env", SAMPLE)
    result = device.run("init", "myapp", check=0)
    assert "Created app 'myapp'. Pushed revision 1 from .env (4 keys)." in (
        result.stderr
    )

    pulled = device.run("pull", "myapp", "--stdout", check=0)
    assert pulled.stdout_bytes == SAMPLE.encode()


def test_pull_writes_a_new_file_with_mode_0600(device):
    device.write(".env", SAMPLE)
    device.run("init", "myapp", check=0)
    device.run("pull", "myapp", "--output", "fresh.env", check=0)

    written = device.cwd / "fresh.env"
    assert written.read_bytes() == SAMPLE.encode()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_pull_refuses_to_replace_a_changed_file_without_force(device):
    device.write(".env", SAMPLE)
    device.run("init", "myapp", check=0)
    device.write(".env", "LOCAL_EDIT=1\n")

    refused = device.run("pull", "myapp", check=1)
    assert "use --force" in refused.stderr
    assert (device.cwd / ".env").read_text() == "LOCAL_EDIT=1\n"

    device.run("pull", "myapp", "--force", check=0)
    assert (device.cwd / ".env").read_text() == SAMPLE


def test_exec_injects_values_and_returns_the_child_exit_code(device):
    device.write(".env", SAMPLE)
    device.run("init", "myapp", check=0)
    result = device.run(
        "exec", "myapp", "--", "sh", "-c", 'printf "%s|%s" "$GREETING" "$PORT"; exit 7'
    )
    assert result.code == 7
    assert result.stdout == "hello world|8000"


def test_a_stale_push_is_a_conflict_with_exit_code_4(make_device):
    laptop = make_device("laptop", signed_in=True)
    desktop = make_device("desktop", signed_in=True)
    laptop.write(".env", SAMPLE)
    laptop.run("init", "myapp", check=0)
    desktop.run("pull", "myapp", check=0)

    laptop.write(".env", SAMPLE + "NEW=1\n")
    laptop.run("push", "myapp", check=0)
    desktop.write(".env", SAMPLE + "OTHER=2\n")
    stale = desktop.run("push", "myapp", check=4)
    assert "moved on to revision 2" in stale.stderr
    assert "pull first" in stale.stderr


def test_apps_are_grouped_by_folder(device):
    device.write(".env", SAMPLE)
    for name in ("work/myapp", "work/backend", "personal/blog", "solo"):
        device.run("init", name, check=0)
    device.run("env", "new", "work/myapp", "prod", check=0)

    lines = device.run("apps", check=0).stdout.splitlines()
    assert lines[0].split()[:3] == ["solo", "1", "envs"]
    assert "  personal/" in lines
    assert "  work/" in lines
    work = lines.index("  work/")
    assert lines[work + 1].split()[:3] == ["backend", "1", "envs"]
    assert lines[work + 2].split()[:3] == ["myapp", "2", "envs"]


def test_without_auth_commands_exit_3_and_say_run_dmage_auth(make_device):
    stranger = make_device("stranger")
    result = stranger.run("pull", "myapp", check=3)
    assert "run dmage auth" in result.stderr
    assert "Traceback" not in result.stderr


def test_json_flag_prints_one_document(device):
    device.write(".env", SAMPLE)
    result = device.run("init", "myapp", "--json", check=0)
    assert result.json() == {"app": "myapp", "env": "dev", "revision": 1, "keys": 4}


def test_the_database_never_holds_a_secret_in_the_clear(device, server):
    if not server.db_url.startswith("sqlite"):
        pytest.skip("reads the SQLite file itself; there is no such file here")
    device.write(".env", SAMPLE)
    device.run("init", "myapp", check=0)
    device.run("set", "myapp", "API_TOKEN=tok_live_unique_4242", check=0)

    database = server.db_url.removeprefix("sqlite:///")
    everything = b"".join(
        Path(path).read_bytes()
        for path in (database, database + "-wal")
        if os.path.exists(path)
    )
    for secret in ("s3cret", "hello world", "tok_live_unique_4242", "correct horse"):
        assert secret.encode() not in everything
    key_file = (device.home / "account-key.json").read_text()
    assert "account_key" in key_file
