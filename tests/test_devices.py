"""A device's whole life through the real CLI: auth on a second machine, lock,
the key cache and keychains, token refresh, devices and revoke, passwd,
logout and clean.

Most tests share one server per database (module scope), each with devices
of its own; passwd and short token lifetimes get servers of their own.
"""

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import BOOTSTRAP, PASSWORD, REPO, Device, free_port
from terminal import Terminal
from world import make_world, shared_world

SAMPLE = "# shared\nDATABASE_URL=postgres://db/app\nAPI_KEY=k-123\n"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    yield from shared_world(request, tmp_path_factory, "devices")


def device_list(device: Device) -> dict:
    return {
        d["name"]: d for d in device.run("devices", "--json", check=0).json()["devices"]
    }


def without_password(**extra) -> dict:
    return {"DOTMAGE_MASTER_PASSWORD": None, **extra}


# -- auth on a second machine --------------------------------------------------


def test_a_second_machine_registers_and_pulls_byte_for_byte(world):
    laptop = world.device("laptop")
    laptop.write(".env", SAMPLE)
    laptop.run("init", "second/app", check=0)

    desktop = world.device("desktop", signed_in=False)
    result = desktop.run("auth", "--server", world.server.url, check=0)
    assert "Device registered. Key cached (expires in 7d)." in result.stderr
    assert "Account created" not in result.stderr
    desktop.run("pull", "second/app", check=0)
    assert (desktop.cwd / ".env").read_text() == SAMPLE


def test_the_server_is_remembered_and_auth_again_replaces_the_old_device(world):
    desktop = world.device("remembering")
    first_id = json.loads((desktop.home / "config.json").read_text())["device_id"]

    again = desktop.run("auth", check=0)
    assert "Device registered." in again.stderr
    assert f"replaces this machine's earlier device {first_id}" in again.stderr
    config = json.loads((desktop.home / "config.json").read_text())
    assert config["server"] == world.server.url
    assert config["device_id"] != first_id

    listing = desktop.run("devices", "--json", check=0).json()["devices"]
    old = next(d for d in listing if d["id"] == first_id)
    assert old["revoked_at"] is not None


def test_at_a_terminal_auth_asks_for_both_secrets_and_shows_a_spinner(world):
    desktop = world.device("typing", signed_in=False)
    environment = {
        k: v
        for k, v in desktop.environment.items()
        if k not in ("DOTMAGE_MASTER_PASSWORD", "DOTMAGE_BOOTSTRAP_SECRET")
    }
    argv = [sys.executable, "-m", "dotmage", "auth", "--server", world.server.url]
    terminal = Terminal(argv, desktop.cwd, environment)
    terminal.read_until(b"New device: register with the bootstrap secret")
    terminal.read_until(b"Bootstrap secret: ")
    terminal.type(BOOTSTRAP.encode() + b"\n")
    terminal.read_until(b"Master password: ")
    terminal.type(PASSWORD.encode() + b"\n")
    assert terminal.wait() == 0

    shown = terminal.output.decode()
    assert "Device registered. Key cached (expires in 7d)." in shown
    assert "Deriving keys" in shown  # the spinner, drawn while Argon2id runs
    assert BOOTSTRAP not in shown and PASSWORD not in shown


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DOTMAGE_MASTER_PASSWORD", "not the password", "wrong master password"),
        ("DOTMAGE_BOOTSTRAP_SECRET", "not the secret", "wrong bootstrap secret"),
    ],
)
def test_a_wrong_secret_is_one_clear_line_and_exit_1(world, variable, value, message):
    stranger = world.device("stranger", signed_in=False)
    result = stranger.run(
        "auth", "--server", world.server.url, env={variable: value}, check=1
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("dmage:")]
    assert len(errors) == 1 and message in errors[0]
    assert "dmage auth" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (stranger.home / "credentials.json").exists()


def test_without_a_terminal_a_missing_secret_names_its_variable(world):
    stranger = world.device("headless", signed_in=False)
    result = stranger.run(
        "auth",
        "--server",
        world.server.url,
        env={"DOTMAGE_BOOTSTRAP_SECRET": None},
        check=1,
    )
    assert "set DOTMAGE_BOOTSTRAP_SECRET" in result.stderr


def test_the_first_auth_on_a_machine_needs_the_server(world):
    stranger = world.device("lost", signed_in=False)
    result = stranger.run("auth", check=1)
    assert "dmage auth --server" in result.stderr


# -- lock, and the key cache ---------------------------------------------------


def test_after_lock_the_next_command_needs_the_password(world):
    laptop = world.device("locking")
    laptop.write(".env", SAMPLE)
    laptop.run("init", "locked/app", check=0)

    assert "Locked" in laptop.run("lock", check=0).stderr
    assert not (laptop.home / "account-key.json").exists()
    assert (laptop.home / "credentials.json").exists()

    refused = laptop.run("pull", "locked/app", "--stdout", env=without_password())
    assert refused.code == 1
    assert "set DOTMAGE_MASTER_PASSWORD" in refused.stderr

    laptop.run("pull", "locked/app", "--stdout", check=0)  # reads the variable
    again = laptop.run("pull", "locked/app", "--stdout", env=without_password())
    assert again.stdout == SAMPLE  # unlocked and cached again


def test_after_lock_a_terminal_asks_for_the_password(world):
    laptop = world.device("terminal-lock")
    laptop.write(".env", SAMPLE)
    laptop.run("init", "locked/tty", check=0)
    laptop.run("lock", check=0)

    environment = dict(laptop.environment)
    del environment["DOTMAGE_MASTER_PASSWORD"]
    argv = [sys.executable, "-m", "dotmage", "get", "locked/tty", "API_KEY"]
    terminal = Terminal(argv, laptop.cwd, environment)
    terminal.read_until(b"Master password: ")
    terminal.type(PASSWORD.encode() + b"\n")
    assert terminal.wait() == 0
    assert b"k-123" in terminal.output


def test_the_cached_key_expires_after_its_ttl(world):
    laptop = world.device("short-ttl", ttl="2s")
    laptop.write(".env", SAMPLE)
    record = json.loads((laptop.home / "account-key.json").read_text())
    assert 0 < record["expires_at"] - time.time() <= 2

    time.sleep(max(0.0, record["expires_at"] - time.time()) + 0.1)
    refused = laptop.run("init", "ttl/app", env=without_password(), check=1)
    assert "set DOTMAGE_MASTER_PASSWORD" in refused.stderr
    assert not (laptop.home / "account-key.json").exists()

    laptop.run("init", "ttl/app", check=0)  # with the password: cached again
    assert (laptop.home / "account-key.json").exists()


def test_a_ttl_that_is_not_a_duration_is_a_usage_error(world):
    stranger = world.device("bad-ttl", signed_in=False)
    result = stranger.run(
        "auth", "--server", world.server.url, "--ttl", "soon", check=2
    )
    assert "--ttl" in result.stderr and "24h or 7d" in result.stderr


# -- keychains -----------------------------------------------------------------


def keychain_environment(backend: str, tmp_path: Path, **extra) -> dict:
    return {
        "DOTMAGE_KEYRING": None,  # let dmage look for a keychain
        "PYTHON_KEYRING_BACKEND": f"keychain_backends.{backend}",
        "PYTHONPATH": os.pathsep.join((str(REPO), str(REPO / "tests"))),
        "DMAGE_TEST_KEYCHAIN": str(tmp_path / "keychain.json"),
        **extra,
    }


def test_a_working_keychain_holds_the_key_and_lock_removes_it(world, tmp_path):
    laptop = world.device("keychain", signed_in=False)
    laptop.environment.update(keychain_environment("FileKeychain", tmp_path))
    result = laptop.run("auth", "--server", world.server.url, check=0)
    assert "The key is kept in the system keychain." in result.stderr
    assert not (laptop.home / "account-key.json").exists()
    entries = json.loads((tmp_path / "keychain.json").read_text())
    assert [name.split("/")[0] for name in entries] == ["dotmage"]

    laptop.write(".env", SAMPLE)
    laptop.run("init", "keychain/app", env=without_password(), check=0)
    imports = laptop.run(
        "exec", "keychain/app", "--", "true", env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    assert "keyring" in imports.stderr  # the keychain store does import it

    laptop.run("lock", check=0)
    assert json.loads((tmp_path / "keychain.json").read_text()) == {}


@pytest.mark.parametrize("backend", ["FailingKeychain", "HangingKeychain"])
def test_a_broken_keychain_never_hangs_and_never_loses_the_token(
    world, tmp_path, backend
):
    laptop = world.device(backend.lower(), signed_in=False)
    laptop.environment.update(
        keychain_environment(backend, tmp_path, DOTMAGE_KEYCHAIN_TIMEOUT="1")
    )
    started = time.monotonic()
    result = laptop.run("auth", "--server", world.server.url, timeout=30, check=0)
    assert time.monotonic() - started < 15
    assert "(mode 0600; no keychain here)" in result.stderr
    assert (laptop.home / "credentials.json").exists()

    laptop.write(".env", SAMPLE)
    laptop.run("init", f"broken/{backend}", env=without_password(), check=0)


def test_a_home_that_cannot_be_read_falls_back_to_the_file(world, tmp_path):
    not_a_folder = tmp_path / "home-is-a-file"
    not_a_folder.write_text("")
    laptop = world.device("no-home", signed_in=False)
    laptop.environment.update(DOTMAGE_KEYRING=None, HOME=str(not_a_folder))
    result = laptop.run("auth", "--server", world.server.url, timeout=30, check=0)
    assert "(mode 0600; no keychain here)" in result.stderr
    laptop.run("devices", check=0)


# -- devices and revoke --------------------------------------------------------


def test_devices_lists_names_and_marks_this_one(world):
    laptop = world.device("lister")
    lines = laptop.run("devices", check=0).stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "CREATED", "LAST", "SEEN"]
    mine = [line for line in lines if "(this device)" in line]
    assert len(mine) == 1 and " lister " in mine[0]
    assert device_list(laptop)["lister"]["current"] is True


def test_revoke_cuts_a_device_off_at_once_with_exit_3(world):
    laptop = world.device("revoker")
    victim = world.device("victim")
    victim_id = json.loads((victim.home / "config.json").read_text())["device_id"]
    victim.run("devices", check=0)

    result = laptop.run("devices", "revoke", victim_id, check=0)
    assert f"Revoked device {victim_id}." in result.stderr
    cut = victim.run("devices", check=3)
    assert "run dmage auth" in cut.stderr
    assert device_list(laptop)["victim"]["revoked_at"] is not None


def test_revoke_refuses_this_device_and_an_unknown_one(world):
    laptop = world.device("careful")
    own_id = json.loads((laptop.home / "config.json").read_text())["device_id"]
    assert "dmage logout" in laptop.run("devices", "revoke", own_id, check=1).stderr
    unknown = laptop.run("devices", "revoke", "0123456789abcdef", check=1)
    assert "no device" in unknown.stderr


# -- logout and clean ----------------------------------------------------------


def test_logout_revokes_on_the_server_and_removes_everything_here(world):
    laptop = world.device("leaving")
    watcher = world.device("watcher")
    result = laptop.run("logout", check=0)
    assert "Logged out" in result.stderr
    assert not laptop.home.exists()
    assert device_list(watcher)["leaving"]["revoked_at"] is not None
    assert "run dmage auth" in laptop.run("devices", check=3).stderr


def test_clean_works_with_the_server_unreachable_and_a_damaged_config(world):
    laptop = world.device("offline")
    config = json.loads((laptop.home / "config.json").read_text())
    config["server"] = f"http://127.0.0.1:{free_port()}"
    (laptop.home / "config.json").write_text(json.dumps(config))

    logout = laptop.run("logout", check=0)
    assert f"dmage devices revoke {config['device_id']}" in logout.stderr
    assert not laptop.home.exists()

    damaged = world.device("damaged")
    (damaged.home / "config.json").write_text("{not json")
    assert "Removed all dotMage data" in damaged.run("clean", check=0).stderr
    assert not damaged.home.exists()


# -- passwd: a server of its own -----------------------------------------------


def test_passwd_rewraps_the_key_and_other_devices_keep_working(tmp_path, db_url):
    world = make_world(tmp_path, db_url)
    try:
        laptop, desktop = world.device("laptop"), world.device("desktop")
        laptop.write(".env", SAMPLE)
        laptop.run("init", "pw/app", check=0)
        new = {"DOTMAGE_NEW_MASTER_PASSWORD": "a brand new password"}

        missing = laptop.run("passwd", check=1)
        assert "set DOTMAGE_NEW_MASTER_PASSWORD" in missing.stderr
        wrong = laptop.run(
            "passwd", env={**new, "DOTMAGE_MASTER_PASSWORD": "wrong one"}, check=1
        )
        assert "wrong current master password" in wrong.stderr
        assert "Master password changed." in laptop.run("passwd", env=new).stderr

        assert desktop.run("pull", "pw/app", "--stdout", check=0).stdout == SAMPLE
        desktop.run("lock", check=0)
        unlocked = desktop.run(
            "pull",
            "pw/app",
            "--stdout",
            env={"DOTMAGE_MASTER_PASSWORD": "a brand new password"},
        )
        assert unlocked.stdout == SAMPLE

        old = world.device("old-password", signed_in=False)
        refused = old.run("auth", "--server", world.server.url, check=1)
        assert "wrong master password" in refused.stderr
        fresh = world.device("new-password", signed_in=False)
        fresh.run(
            "auth",
            "--server",
            world.server.url,
            env={"DOTMAGE_MASTER_PASSWORD": "a brand new password"},
            check=0,
        )
    finally:
        world.server.stop()


# -- access tokens that expire: a server of its own ----------------------------


def test_expired_access_tokens_are_refreshed_even_by_parallel_commands(tmp_path):
    world = make_world(
        tmp_path, f"sqlite:///{tmp_path / 'server.db'}", DOTMAGE_TOKEN_TTL="2s"
    )
    try:
        laptop = world.device("laptop")
        laptop.write(".env", SAMPLE)
        laptop.run("init", "short/app", check=0)
        credentials = laptop.home / "credentials.json"

        # The client believes its access token is still good: the server's
        # 401 makes it refresh and retry.
        stored = json.loads(credentials.read_text())
        stored["access_expires_at"] = time.time() + 3600
        credentials.write_text(json.dumps(stored))
        time.sleep(2.2)
        assert laptop.run("pull", "short/app", "--stdout", check=0).stdout == SAMPLE
        assert (
            json.loads(credentials.read_text())["refresh_token"]
            != (stored["refresh_token"])
        )

        # Several commands at once after expiry: one refresh, shared by all,
        # so the server never sees a refresh token twice (which revokes).
        time.sleep(2.2)
        with ThreadPoolExecutor(4) as pool:
            runs = list(
                pool.map(lambda _: laptop.run("get", "short/app", "API_KEY"), range(4))
            )
        assert [run.code for run in runs] == [0] * 4, [run.stderr for run in runs]
        assert laptop.run("devices", check=0).code == 0
    finally:
        world.server.stop()


def test_a_revoked_refresh_token_means_exit_3(world):
    laptop = world.device("expired")
    credentials = laptop.home / "credentials.json"
    stored = json.loads(credentials.read_text())
    stored.update(access_expires_at=0, refresh_token="dmr_0123456789abcdef.nope")
    credentials.write_text(json.dumps(stored))
    result = laptop.run("devices", check=3)
    assert "run dmage auth" in result.stderr
