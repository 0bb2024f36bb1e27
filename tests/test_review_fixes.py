"""The client-side findings of the black-box security review, one test (or a
few) each: every one failed before its fix.

One server per database serves the module; each test makes its own devices
and apps.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import Device, start_server
from fake_servers import HttpServer
from world import shared_world

SAMPLE = "# app\nDATABASE_URL=postgres://db/app\nAPI_KEY=k-123\n"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    yield from shared_world(request, tmp_path_factory, "review")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def with_app(world, name: str):
    device = world.device(name)
    app = unique("app")
    device.write(".env", SAMPLE)
    device.run("init", app, check=0)
    return device, app


def working_copy(device: Device, folder: str) -> Device:
    """Another working directory on the same device (same DOTMAGE_HOME)."""
    other = Device(device.home, device.cwd.parent / folder, device.server)
    other.environment = dict(device.environment)
    return other


def latest_revision(device: Device, app: str, env: str = "dev") -> int:
    page = device.run("history", app, "--env", env, "--json", check=0).json()
    return page["revisions"][0]["number"] if page["revisions"] else 0


def error_lines(result) -> list:
    return [line for line in result.stderr.splitlines() if line.startswith("dmage:")]


# -- 1. a push is based on its own file's revision ---------------------------------


def test_a_second_working_copy_on_one_device_cannot_overwrite_the_first(world):
    first, app = with_app(world, "copies")
    second = working_copy(first, "second-copy")
    second.run("pull", app, check=0)

    first.write(".env", SAMPLE + "FIRST=1\n")
    first.run("push", app, check=0)
    second.write(".env", SAMPLE + "SECOND=1\n")
    refused = second.run("push", app, check=4)
    assert "has moved on to revision 2" in refused.stderr
    assert "--output .env" in refused.stderr
    assert latest_revision(first, app) == 2

    # The same for any other file of the same working copy.
    first.run("pull", app, "--output", "other.env", check=0)
    first.write(".env", SAMPLE + "FIRST=2\n")
    first.run("push", app, check=0)
    first.write("other.env", SAMPLE + "OTHER=1\n")
    first.run("push", app, "--file", "other.env", check=4)
    assert latest_revision(first, app) == 3


def test_a_file_never_pulled_is_refused_unless_forced(world):
    laptop, app = with_app(world, "never-pulled")
    desktop = world.device("never-pulled-desktop")
    desktop.write(".env", "MINE=1\n")
    refused = desktop.run("push", app, check=4)
    assert f"pull it first (dmage pull {app} --env dev --output .env)" in (
        refused.stderr
    )
    assert "push with --force to replace revision 1" in refused.stderr
    assert latest_revision(laptop, app) == 1

    desktop.run("push", app, "--force", check=0)
    assert latest_revision(laptop, app) == 2
    assert laptop.run("pull", app, "--stdout", check=0).stdout == "MINE=1\n"


def test_parallel_pushes_of_copies_of_one_revision_let_exactly_one_through(world):
    laptop, app = with_app(world, "racers")
    copies = [working_copy(laptop, f"racer-{n}") for n in range(6)]
    for number, copy in enumerate(copies):
        copy.run("pull", app, check=0)
        copy.write(".env", SAMPLE + f"RACER={number}\n")
    with ThreadPoolExecutor(len(copies)) as pool:
        codes = sorted(pool.map(lambda copy: copy.run("push", app).code, copies))
    assert codes == [0] + [4] * (len(copies) - 1)
    assert latest_revision(laptop, app) == 2


def test_parallel_pushes_to_separate_envs_from_one_device_never_conflict(world):
    laptop, app = with_app(world, "envs-in-parallel")
    envs = ["dev", "qa", "stage", "prod"]
    for env in envs[1:]:
        laptop.run("env", "new", app, env, "--copy-from", "dev", check=0)
    copies = {env: working_copy(laptop, f"parallel-{env}") for env in envs}
    for env, copy in copies.items():
        copy.run("pull", app, "--env", env, check=0)

    def push_several(env: str) -> list:
        codes = []
        for number in range(4):
            copies[env].write(".env", SAMPLE + f"STEP={number}\n")
            codes.append(copies[env].run("push", app, "--env", env).code)
        return codes

    with ThreadPoolExecutor(len(envs)) as pool:
        results = list(pool.map(push_several, envs))
    assert results == [[0] * 4] * len(envs)
    assert [latest_revision(laptop, app, env) for env in envs] == [5, 5, 5, 5]


def test_pushing_a_file_identical_to_the_latest_revision_makes_none(world):
    laptop, app = with_app(world, "identical")
    result = laptop.run("push", app, "--json", check=0)
    assert result.json()["pushed"] is False and result.json()["revision"] == 1
    said = laptop.run("push", app, check=0).stderr
    assert "Nothing to push: .env matches revision 1." in said
    assert latest_revision(laptop, app) == 1

    # A copy based on an older revision whose text is the latest's anyway:
    # nothing to push, and it now counts as based on the latest.
    stale = working_copy(laptop, "identical-stale")
    stale.run("pull", app, check=0)
    laptop.write(".env", SAMPLE + "NEW=1\n")
    laptop.run("push", app, check=0)
    stale.write(".env", SAMPLE + "NEW=1\n")
    assert "matches revision 2" in stale.run("push", app, check=0).stderr
    stale.write(".env", SAMPLE + "NEW=1\nMORE=2\n")
    stale.run("push", app, check=0)
    assert latest_revision(laptop, app) == 3


def test_status_shows_each_local_file_of_an_env(world):
    laptop, app = with_app(world, "status-files")
    laptop.run("pull", app, "--output", "old.env", check=0)
    laptop.write(".env", SAMPLE + "NEW=1\n")
    laptop.run("push", app, check=0)

    rows = laptop.run("status", "--json", check=0).json()["envs"]
    mine = {os.path.basename(r["file"]): r for r in rows if r["app"] == app}
    assert mine[".env"]["state"] == "up to date" and mine[".env"]["local"] == 2
    assert mine["old.env"]["state"] == "outdated" and mine["old.env"]["local"] == 1
    (laptop.cwd / "old.env").unlink()
    rows = laptop.run("status", "--json", check=0).json()["envs"]
    states = {os.path.basename(r["file"]): r["state"] for r in rows if r["app"] == app}
    assert states == {".env": "up to date", "old.env": "file missing"}


def test_set_and_rollback_leave_a_local_file_stale(world):
    laptop, app = with_app(world, "edits")
    laptop.run("set", app, "ADDED=1", check=0)
    laptop.write(".env", SAMPLE + "LOCAL=1\n")
    assert "has moved on to revision 2" in laptop.run("push", app, check=4).stderr
    laptop.run("pull", app, "--force", check=0)
    laptop.run("rollback", app, "--rev", "1", check=0)
    laptop.write(".env", SAMPLE + "ADDED=1\nLOCAL=1\n")
    laptop.run("push", app, check=4)


# -- 2. exec keeps dmage's own credentials from the command -----------------------


PRINT_ENVIRONMENT = "import json, os; print(json.dumps(dict(os.environ)))"


def test_exec_hands_the_command_no_dmage_credentials(world):
    laptop, app = with_app(world, "exec-credentials")
    ci_token = laptop.run(
        "gen-ci-token", "--app", app, "--env", "dev", "--json", check=0
    ).json()["token"]
    extra = {
        "DOTMAGE_NEW_MASTER_PASSWORD": "new secret pw",
        "DOTMAGE_CI_TOKEN": ci_token,
    }
    result = laptop.run(
        "exec", app, "--", sys.executable, "-c", PRINT_ENVIRONMENT, env=extra, check=0
    )
    seen = json.loads(result.stdout)
    for name in (
        "DOTMAGE_MASTER_PASSWORD",
        "DOTMAGE_NEW_MASTER_PASSWORD",
        "DOTMAGE_BOOTSTRAP_SECRET",
        "DOTMAGE_CI_TOKEN",
    ):
        assert name not in seen, name
    assert seen["DOTMAGE_HOME"] == str(laptop.home) and seen["API_KEY"] == "k-123"

    # A stored secret of that name is the env's own: it is passed.
    laptop.run("set", app, "DOTMAGE_BOOTSTRAP_SECRET=stored", check=0)
    result = laptop.run(
        "exec", app, "--", sys.executable, "-c", PRINT_ENVIRONMENT, check=0
    )
    assert json.loads(result.stdout)["DOTMAGE_BOOTSTRAP_SECRET"] == "stored"


# -- 3. a state folder that cannot be written -------------------------------------


@contextlib.contextmanager
def frozen(folder):
    """The folder cannot be written: immutable for root, read-only otherwise."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    if not shutil.which("chattr"):
        pytest.skip("as root, a read-only folder needs chattr +i")
    if subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
        pytest.skip("this file system does not take chattr +i")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_an_unwritable_state_folder_stops_a_push_before_it_lands(world):
    laptop, app = with_app(world, "frozen")
    laptop.write(".env", SAMPLE + "NEW=1\n")
    laptop.run("lock", check=0)  # the password unlocks it, nothing caches it
    with frozen(laptop.home):
        refused = laptop.run("push", app, check=1)
        assert error_lines(refused) == [error_lines(refused)[0]]
        assert str(laptop.home) in refused.stderr
        assert "cannot be written" in refused.stderr
        assert "Traceback" not in refused.stderr
        laptop.run("set", app, "X=1", check=1)
        laptop.run("rollback", app, "--rev", "1", check=1)

        # Reading still works; only the record (revision 2 was seen) is
        # skipped, with a warning.
        world.device("frozen-other").run("set", app, "OTHER=1", check=0)
        got = laptop.run("get", app, "API_KEY", check=0)
        assert got.stdout == "k-123\n" and "sync state not recorded" in got.stderr
        assert "the account key is not cached" in got.stderr
        pulled = laptop.run("pull", app, "--stdout", check=0)
        assert pulled.stdout == SAMPLE + "OTHER=1\n"
        laptop.run("pull", app, "--output", "copy.env", check=0)
    assert latest_revision(laptop, app) == 2


# -- 4. a file too large for the server -------------------------------------------


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """A signed-in device on a server that takes bodies of 1024 bytes at most."""
    root = tmp_path_factory.mktemp("small")
    server = start_server(root, f"sqlite:///{root / 'small.db'}", DOTMAGE_MAX_BODY=1024)
    device = Device(root / "home", root / "work", server)
    device.run("auth", "--server", server.url, check=0)
    yield device
    server.stop()


def test_a_file_too_large_for_the_server_creates_nothing(small_server):
    device = small_server
    device.write(".env", "BIG=" + "x" * 2000 + "\n")
    refused = device.run("init", "big", check=1)
    assert ".env is too large: " in refused.stderr
    assert "this server takes at most 1024 (DOTMAGE_MAX_BODY)" in refused.stderr
    assert device.run("apps", "--json", check=0).json()["apps"] == []

    device.write(".env", "SMALL=1\n")
    device.run("init", "big", check=0)
    device.write(".env", "BIG=" + "x" * 2000 + "\n")
    assert "is too large" in device.run("push", "big", check=1).stderr
    too_big = device.run("set", "big", "BIG=" + "y" * 2000, check=1)
    assert "big (dev) is too large" in too_big.stderr
    assert latest_revision(device, "big") == 1


# -- 5 and 7. usage mistakes exit 2 -----------------------------------------------


USAGE_MISTAKES = [
    ["push", "myapp", "--env", ""],
    ["--env", "", "get", "myapp", "KEY"],
    ["gen-token", "--ttl", "5"],
    ["gen-token", "--ttl", "0"],
    ["gen-token", "--ttl", "1.5h"],
    ["gen-ci-token", "--app", "myapp", "--env", "dev", "--ttl", "99999d"],
    ["auth", "--ttl", "367d"],
    ["init", ""],
    ["pull", "../etc"],
    ["env", "new", "myapp", "no/slash"],
    ["exec", "myapp"],
    ["exec", "myapp", "--"],
    ["pull", "myapp", "--rev", "-1"],
    ["history", "myapp", "--limit", "0"],
    ["pull", "myapp", "--stdout", "--output", "x.env"],
    ["auth", "--name", ""],
]


@pytest.mark.parametrize("argv", USAGE_MISTAKES, ids=" ".join)
def test_usage_mistakes_exit_2(world, argv):
    stranger = world.device("usage", signed_in=False)
    result = stranger.run(*argv, check=2)
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "argv", [["bogus"], ["get", "myapp"], ["pull", "a", "--rev", "x"]]
)
def test_usage_errors_under_json_print_one_document(world, argv):
    stranger = world.device("usage-json", signed_in=False)
    result = stranger.run("--json", *argv, check=2)
    error = result.json()["error"]
    assert error["exit_code"] == 2 and "error:" in error["message"]


def test_long_ttls_are_capped_at_366_days(world):
    laptop = world.device("long-ttl")
    made = laptop.run("gen-token", "--ttl", "366d", "--json", check=0).json()
    assert made["token"].startswith("dmage_etok_")
    refused = laptop.run("gen-token", "--ttl", "53w", check=2)
    assert "366d" in refused.stderr and "2147483647" not in refused.stderr


# -- 6. damaged state files and servers -------------------------------------------


def test_a_config_with_wrong_types_names_the_file_and_the_way_out(world):
    laptop = world.device("bad-config")
    config = json.loads((laptop.home / "config.json").read_text())
    (laptop.home / "config.json").write_text(json.dumps({**config, "server": 5}))
    result = laptop.run("apps", check=1)
    [line] = error_lines(result)
    assert "config.json is damaged ('server' is not text)" in line
    assert "remove it or run dmage clean" in line

    (laptop.home / "config.json").write_text("[]")
    [line] = error_lines(laptop.run("logout", check=1))
    assert "config.json is damaged (not a JSON object)" in line
    assert " ID" not in line
    laptop.run("clean", check=0)


def test_a_damaged_key_cache_is_a_cache_miss(world):
    laptop, app = with_app(world, "bad-key-file")
    (laptop.home / "account-key.json").write_bytes(b"\xff\xfe\x00garbage")
    assert laptop.run("get", app, "API_KEY", check=0).stdout == "k-123\n"
    json.loads((laptop.home / "account-key.json").read_text())  # cached again

    (laptop.home / "account-key.json").write_bytes(b"\xff\xfe\x00garbage")
    locked_out = laptop.run(
        "get", app, "API_KEY", env={"DOTMAGE_MASTER_PASSWORD": None}, check=1
    )
    assert "set DOTMAGE_MASTER_PASSWORD" in locked_out.stderr


def test_a_server_answer_missing_a_field_is_one_clear_line(world):
    fake = HttpServer({"unexpected": True})
    try:
        device = world.device("wrong-answer")
        config = json.loads((device.home / "config.json").read_text())
        config["server"] = fake.url
        (device.home / "config.json").write_text(json.dumps(config))
        result = device.run("apps", check=1)
        [line] = error_lines(result)
        assert "the server's answer lacks 'apps'" in line
        assert "dotMage server of a matching version" in line
    finally:
        fake.close()


def test_a_garbage_sync_file_is_set_aside_not_a_blocker(world):
    laptop, app = with_app(world, "bad-sync")
    (laptop.home / "sync.json").write_bytes(b"{not json\xff")
    result = laptop.run("status", "--forget", app, check=0)
    assert "warning:" in result.stderr and "sync.json.bad" in result.stderr
    assert (laptop.home / "sync.json.bad").read_bytes() == b"{not json\xff"

    (laptop.home / "sync.json").write_text('{"x y z": {"files": 3}}')
    laptop.run("pull", app, "--force", check=0)
    rows = laptop.run("status", "--json", check=0).json()["envs"]
    assert [(row["app"], row["state"]) for row in rows] == [(app, "up to date")]


# -- 8. smaller findings -----------------------------------------------------------


def test_pull_refuses_an_output_folder_that_does_not_exist(world):
    laptop, app = with_app(world, "no-folder")
    refused = laptop.run("pull", app, "--output", "missing/x.env", check=1)
    assert "does not exist" in refused.stderr
    assert not (laptop.cwd / "missing").exists()


def test_revoking_twice_says_already_revoked(world):
    laptop = world.device("revoker")
    token_id = laptop.run("gen-token", "--json", check=0).json()["id"]
    assert "Revoked token" in laptop.run("tokens", "revoke", token_id).stderr
    again = laptop.run("tokens", "revoke", token_id, check=0)
    assert f"Token {token_id} was already revoked." in again.stderr

    victim = world.device("revoked-victim")
    victim_id = json.loads((victim.home / "config.json").read_text())["device_id"]
    laptop.run("devices", "revoke", victim_id, check=0)
    again = laptop.run("devices", "revoke", victim_id, "--json", check=0)
    assert again.json() == {"revoked": victim_id, "already": True}


def test_devices_can_be_named(world):
    laptop = world.device("namer")
    laptop.run("auth", "--name", "ci runner 7", check=0)
    token = laptop.run("gen-token", "--name", "work-pc", "-q", check=0).stdout.strip()
    newcomer = world.device("newcomer", signed_in=False)
    newcomer.run(
        "auth",
        "--server",
        world.server.url,
        "--enroll",
        token,
        env={"DOTMAGE_DEVICE_NAME": None},
        check=0,
    )
    names = {d["name"] for d in laptop.run("devices", "--json").json()["devices"]}
    assert {"ci runner 7", "work-pc"} <= names


def test_an_unknown_env_says_how_to_list_the_envs(world):
    laptop, app = with_app(world, "unknown-env")
    result = laptop.run("pull", app, "--env", "PROD", check=1)
    assert f"has no env 'PROD' (dmage env list {app})" in result.stderr


def test_an_unwritable_state_folder_never_spends_the_refresh_token(world):
    # Spending it and failing to save the new one would make the next
    # refresh look like theft, and the server would revoke this device.
    laptop, app = with_app(world, "frozen-refresh")
    path = laptop.home / "credentials.json"
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "access_expires_at": 1.0}))

    with frozen(laptop.home):
        refused = laptop.run("get", app, "API_KEY", check=1)
        assert "cannot be written" in refused.stderr

    laptop.run("get", app, "API_KEY", check=0)
    audit = laptop.run("audit", "--limit", "50", "--json", check=0).json()
    actor = f"device:{stored['device_id']}"
    mine = [
        e
        for e in audit["entries"]
        if e["actor"] == actor and e["action"].startswith("auth.refresh")
    ]
    assert [e["action"] for e in mine] == ["auth.refresh"]
