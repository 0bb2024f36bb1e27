"""Every documented command through the real CLI: history, rollback, apps, env,
status, the global flags (--json, -q, --env), exit codes by command family,
spinners, and what a broken network looks like.

One server per database serves the module; each test makes its own devices
and apps.
"""

import json
import shutil
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import PASSWORD, free_port
from fake_servers import HttpServer, RawServer, self_signed_certificate
from terminal import Terminal
from world import shared_world

SAMPLE = "# app\nDATABASE_URL=postgres://db/app\nAPI_KEY=k-123\n"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    yield from shared_world(request, tmp_path_factory, "commands")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def with_app(world, name="laptop", app=None, env_args=()):
    """A signed-in device that pushed SAMPLE as revision 1 of a new app."""
    device = world.device(name)
    app = app or unique("app")
    device.write(".env", SAMPLE)
    device.run("init", app, *env_args, check=0)
    return device, app


def api_get(device, path: str) -> dict:
    token = json.loads((device.home / "credentials.json").read_text())
    status, _, body = device.server.request(
        "GET",
        f"/api/v1{path}",
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert status == 200, body
    return body


def errors_of(result) -> list:
    return [line for line in result.stderr.splitlines() if line.startswith("dmage:")]


# -- history, rollback, apps ---------------------------------------------------


def test_history_shows_number_time_device_and_kind(world):
    laptop, app = with_app(world, "hist-laptop")
    laptop.write(".env", SAMPLE + "NEW=1\n")
    laptop.run("push", app, check=0)
    rolled = laptop.run("rollback", app, "--rev", "1", check=0)
    assert "it is now revision 3" in rolled.stderr
    laptop.run("env", "new", app, "prod", "--copy-from", "dev", check=0)

    page = laptop.run("history", app, "--json", check=0).json()
    kinds = [(r["number"], r["kind"], r["source_revision"]) for r in page["revisions"]]
    assert kinds == [(3, "rollback", 1), (2, "push", None), (1, "push", None)]
    assert {r["device"] for r in page["revisions"]} == {"hist-laptop"}

    lines = laptop.run("history", app, check=0).stdout.splitlines()
    assert lines[0].split() == ["REV", "TIME", "DEVICE", "KIND"]
    assert lines[1].split()[0] == "3" and lines[1].endswith("rollback of 1")
    assert "hist-laptop" in lines[1] and "UTC" in lines[1]

    copied = laptop.run("history", app, "--env", "prod", "--json", check=0).json()
    assert [
        (r["number"], r["kind"], r["source_revision"]) for r in copied["revisions"]
    ] == [(1, "copy", 3)]


def test_rollback_makes_old_content_the_latest(world):
    laptop, app = with_app(world, "rollbacker")
    laptop.write(".env", "CHANGED=yes\n")
    laptop.run("push", app, check=0)
    laptop.run("rollback", app, "--rev", "1", check=0)
    assert laptop.run("pull", app, "--stdout", check=0).stdout == SAMPLE

    missing = laptop.run("rollback", app, "--rev", "99", check=1)
    assert "has no revision 99" in missing.stderr


def test_a_local_file_from_before_a_rollback_cannot_undo_it(world):
    laptop, app = with_app(world, "stale-after-rollback")
    laptop.write(".env", "CHANGED=yes\n")
    laptop.run("push", app, check=0)
    laptop.run("rollback", app, "--rev", "1", check=0)
    laptop.write(".env", "CHANGED=yes\nMORE=1\n")
    assert "pull first" in laptop.run("push", app, check=4).stderr


def test_apps_lists_folders_with_env_counts(world):
    laptop = world.device("apps")
    folder = unique("team")
    laptop.write(".env", SAMPLE)
    for name in (f"{folder}/api", f"{folder}/web"):
        laptop.run("init", name, check=0)
    laptop.run("env", "new", f"{folder}/web", "prod", check=0)

    lines = laptop.run("apps", check=0).stdout.splitlines()
    at = lines.index(f"  {folder}/")
    assert lines[at + 1].split()[:3] == ["api", "1", "envs"]
    assert lines[at + 2].split()[:3] == ["web", "2", "envs"]
    listed = {a["name"]: a["envs"] for a in laptop.run("apps", "--json").json()["apps"]}
    assert listed[f"{folder}/web"] == 2


# -- env -----------------------------------------------------------------------


def test_env_shows_and_sets_the_active_env_and_overrides_win(world):
    laptop = world.device("env-user")
    assert laptop.run("env", check=0).stdout == "Active env: dev (from default)\n"
    assert "Active env is now 'staging'" in laptop.run("env", "use", "staging").stderr
    shown = laptop.run("env", check=0).stdout
    assert shown == "Active env: staging (from dmage env use)\n"
    from_variable = laptop.run("env", env={"DOTMAGE_ENV": "qa"}, check=0)
    assert from_variable.stdout == "Active env: qa (from DOTMAGE_ENV)\n"
    overridden = laptop.run("env", "--env", "prod", env={"DOTMAGE_ENV": "qa"})
    assert overridden.stdout == "Active env: prod (from --env)\n"
    document = laptop.run("env", "--json", check=0).json()
    assert document == {"env": "staging", "source": "dmage env use"}
    assert "env name" in laptop.run("env", "use", "../x", check=2).stderr


def test_env_list_and_new(world):
    laptop, app = with_app(world, "env-lister")
    created = laptop.run("env", "new", app, "staging", check=0)
    assert f"Created env 'staging' of {app}." in created.stderr
    names = [e["name"] for e in laptop.run("env", "list", app, "--json").json()["envs"]]
    assert names == ["dev", "staging"]
    lines = laptop.run("env", "list", app, check=0).stdout.splitlines()
    assert lines[0].split()[:3] == ["dev", "rev", "1"]
    assert lines[1].split()[:3] == ["staging", "rev", "0"]


def test_env_copy_is_reencrypted_under_its_own_key(world):
    laptop, app = with_app(world, "copier")
    laptop.run("env", "new", app, "prod", "--copy-from", "dev", check=0)
    assert laptop.run("pull", app, "--env", "prod", "--stdout").stdout == SAMPLE

    dev = api_get(laptop, f"/apps/{app}/-/envs/dev")
    prod = api_get(laptop, f"/apps/{app}/-/envs/prod")
    assert dev["sealed_key"] != prod["sealed_key"]
    dev_blob = api_get(laptop, f"/apps/{app}/-/envs/dev/revisions/1")["blob"]
    prod_blob = api_get(laptop, f"/apps/{app}/-/envs/prod/revisions/1")["blob"]
    assert dev_blob != prod_blob

    # Each blob opens only under its own env: swapping them is caught.
    laptop.run("env", "new", app, "qa", "--copy-from", "nope", check=1)


def test_env_rm_needs_yes_without_a_terminal(world):
    laptop, app = with_app(world, "remover")
    laptop.run("env", "new", app, "staging", check=0)
    refused = laptop.run("env", "rm", app, "staging", check=1)
    assert "--yes" in refused.stderr
    laptop.run("env", "rm", app, "staging", "--yes", check=0)
    names = [e["name"] for e in laptop.run("env", "list", app, "--json").json()["envs"]]
    assert names == ["dev"]


@pytest.mark.parametrize(("answer", "kept"), [(b"n", True), (b"y", False)])
def test_env_rm_asks_at_a_terminal(world, answer, kept):
    laptop, app = with_app(world, "asker")
    laptop.run("env", "new", app, "staging", check=0)
    argv = [sys.executable, "-m", "dotmage", "env", "rm", app, "staging"]
    terminal = Terminal(argv, laptop.cwd, laptop.environment)
    terminal.read_until(b"and all its revisions? [y/N] ")
    terminal.type(answer + b"\n")
    assert terminal.wait() == (1 if kept else 0)
    names = [e["name"] for e in laptop.run("env", "list", app, "--json").json()["envs"]]
    assert ("staging" in names) == kept


# -- status --------------------------------------------------------------------


def status_of(device, app) -> dict:
    rows = device.run("status", "--json", check=0).json()["envs"]
    return {row["env"]: row for row in rows if row["app"] == app}


def test_status_follows_another_devices_pushes_and_local_edits(world):
    laptop, app = with_app(world, "status-laptop")
    desktop = world.device("status-desktop")
    assert status_of(desktop, app) == {}
    desktop.run("pull", app, check=0)
    assert status_of(desktop, app)["dev"]["state"] == "up to date"

    laptop.write(".env", SAMPLE + "NEW=1\n")
    laptop.run("push", app, check=0)
    row = status_of(desktop, app)["dev"]
    assert (row["local"], row["server"], row["state"]) == (1, 2, "outdated")
    line = desktop.run("status", check=0).stdout
    assert app in line and "outdated" in line

    desktop.write(".env", SAMPLE + "MINE=1\n")
    assert status_of(desktop, app)["dev"]["state"] == "diverged"
    desktop.run("pull", app, "--force", check=0)
    assert status_of(desktop, app)["dev"]["state"] == "up to date"
    desktop.write(".env", SAMPLE + "NEW=1\nMINE=1\n")
    assert status_of(desktop, app)["dev"]["state"] == "ahead"
    desktop.run("push", app, check=0)
    assert status_of(desktop, app)["dev"]["state"] == "up to date"


def test_status_warns_when_the_server_forgets_revisions_it_had(world):
    laptop, app = with_app(world, "rollback-laptop")
    desktop = world.device("rollback-desktop")
    desktop.run("pull", app, check=0)
    laptop.write(".env", SAMPLE + "NEW=1\n")
    laptop.run("push", app, check=0)
    assert status_of(desktop, app)["dev"]["seen"] == 2  # status saw revision 2

    # The env is replaced behind the desktop's back: revision 2 is gone.
    laptop.run("env", "rm", app, "dev", "--yes", check=0)
    laptop.run("env", "new", app, "dev", check=0)
    laptop.run("push", app, check=0)

    result = desktop.run("status", check=0)
    assert "server rolled back" in result.stdout
    assert "warning:" in result.stderr and "saw revision 2" in result.stderr
    refused = desktop.run("pull", app, "--force", check=1)
    assert f"dmage status --forget {app}" in refused.stderr

    desktop.run("status", "--forget", app, check=0)
    assert status_of(desktop, app) == {}
    desktop.run("pull", app, "--force", check=0)


def test_status_with_env_shows_only_that_env(world):
    laptop, app = with_app(world, "status-env")
    laptop.run("env", "new", app, "prod", "--copy-from", "dev", check=0)
    laptop.run("pull", app, "--env", "prod", "--output", "prod.env", check=0)
    assert set(status_of(laptop, app)) == {"dev", "prod"}
    rows = laptop.run("status", "--env", "prod", "--json", check=0).json()["envs"]
    assert {row["env"] for row in rows} == {"prod"}


def test_parallel_pulls_of_several_envs_are_all_remembered(world):
    laptop, app = with_app(world, "parallel-status")
    envs = ["dev", "qa", "stage", "prod"]
    for env in envs[1:]:
        laptop.run("env", "new", app, env, "--copy-from", "dev", check=0)
    with ThreadPoolExecutor(len(envs)) as pool:
        runs = list(
            pool.map(
                lambda env: laptop.run("pull", app, "--env", env, "--output", env),
                envs,
            )
        )
    assert [run.code for run in runs] == [0] * len(envs)
    assert sorted(status_of(laptop, app)) == sorted(envs)


# -- --json: one document from every command -----------------------------------


@pytest.fixture(scope="module")
def regular(world):
    """A device and an app shared by the tests that change neither for others."""
    return with_app(world, "regular")


def _fresh_app(world, device, app):
    device.write(".env", SAMPLE)
    fresh = unique("app")
    device.run("init", fresh, check=0)
    return fresh


def _victim_id(world):
    victim = world.device("json-victim")
    return json.loads((victim.home / "config.json").read_text())["device_id"]


def _token_id(device):
    return device.run("gen-token", "--json", check=0).json()["id"]


# Each entry: (needs a device of its own, needs an app of its own, argv maker).
JSON_COMMANDS = {
    "auth": (True, False, lambda w, d, app: ["auth"]),
    "init": (False, False, lambda w, d, app: ["init", unique("json-init")]),
    "push": (False, False, lambda w, d, app: ["push", app]),
    "pull": (False, False, lambda w, d, app: ["pull", app, "--force"]),
    "pull --stdout": (False, False, lambda w, d, app: ["pull", app, "--stdout"]),
    "diff": (False, False, lambda w, d, app: ["diff", app]),
    "set": (False, True, lambda w, d, app: ["set", app, "X=1"]),
    "unset": (False, True, lambda w, d, app: ["unset", app, "API_KEY"]),
    "get": (False, False, lambda w, d, app: ["get", app, "API_KEY"]),
    "history": (False, False, lambda w, d, app: ["history", app]),
    "rollback": (False, False, lambda w, d, app: ["rollback", app, "--rev", "1"]),
    "apps": (False, False, lambda w, d, app: ["apps"]),
    "env": (False, False, lambda w, d, app: ["env"]),
    "env use": (False, False, lambda w, d, app: ["env", "use", "dev"]),
    "env list": (False, False, lambda w, d, app: ["env", "list", app]),
    "env new": (False, True, lambda w, d, app: ["env", "new", app, "staging"]),
    "env new --copy-from": (
        False,
        True,
        lambda w, d, app: ["env", "new", app, "prod", "--copy-from", "dev"],
    ),
    "env rm": (False, True, lambda w, d, app: ["env", "rm", app, "dev", "--yes"]),
    "status": (False, False, lambda w, d, app: ["status"]),
    "status --forget": (True, False, lambda w, d, app: ["status", "--forget", app]),
    "gen-token": (False, False, lambda w, d, app: ["gen-token"]),
    "token": (False, False, lambda w, d, app: ["token"]),
    "gen-ci-token": (
        False,
        False,
        lambda w, d, app: ["gen-ci-token", "--app", app, "--env", "dev"],
    ),
    "tokens": (False, False, lambda w, d, app: ["tokens"]),
    "tokens revoke": (
        False,
        False,
        lambda w, d, app: ["tokens", "revoke", _token_id(d)],
    ),
    "devices": (False, False, lambda w, d, app: ["devices"]),
    "devices revoke": (
        False,
        False,
        lambda w, d, app: ["devices", "revoke", _victim_id(w)],
    ),
    "audit": (False, False, lambda w, d, app: ["audit", "--limit", "3"]),
    "passwd": (False, False, lambda w, d, app: ["passwd"]),
    "lock": (True, False, lambda w, d, app: ["lock"]),
    "logout": (True, False, lambda w, d, app: ["logout"]),
    "clean": (True, False, lambda w, d, app: ["clean"]),
    "version": (False, False, lambda w, d, app: ["version"]),
}


@pytest.mark.parametrize("command", sorted(JSON_COMMANDS))
def test_json_prints_exactly_one_document(world, regular, command):
    own_device, own_app, make_argv = JSON_COMMANDS[command]
    device, app = with_app(world, "json") if own_device else regular
    if own_app:
        app = _fresh_app(world, device, app)
    # passwd re-wraps under the same password, so the shared account is kept.
    result = device.run(
        *make_argv(world, device, app),
        "--json",
        env={"DOTMAGE_NEW_MASTER_PASSWORD": PASSWORD},
        check=0,
    )
    document = json.loads(result.stdout)  # raises on a second document or noise
    assert isinstance(document, dict) and document


def test_json_errors_are_one_document_too(regular):
    device, _ = regular
    result = device.run("pull", "no-such-app", "--json", check=1)
    assert result.json()["error"]["exit_code"] == 1
    assert "no app 'no-such-app'" in result.json()["error"]["message"]


# -- -q: nothing but errors (and what was asked for) ---------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["push", "{app}"],
        ["pull", "{app}", "--force"],
        ["history", "{app}"],
        ["apps"],
        ["env", "list", "{app}"],
        ["status"],
        ["devices"],
    ],
    ids=lambda argv: " ".join(argv).replace("{app}", "APP"),
)
def test_quiet_prints_nothing_on_success(world, regular, argv):
    device, app = regular
    if argv[0] == "push":  # other tests moved the shared app on
        app = _fresh_app(world, device, app)
    result = device.run(*[a.format(app=app) for a in argv], "-q", check=0)
    assert (result.stdout, result.stderr) == ("", "")


def test_quiet_still_prints_errors_and_the_token_it_made(regular):
    device, app = regular
    token = device.run("gen-token", "-q", check=0)
    assert token.stderr == "" and token.stdout.startswith("dmage_etok_")
    assert token.stdout.count("\n") == 1
    assert device.run("get", app, "API_KEY", "-q", check=0).stdout == "k-123\n"
    failed = device.run("pull", "no-such-app", "-q", check=1)
    assert len(errors_of(failed)) == 1


# -- --env on every env-aware command ------------------------------------------


@pytest.fixture(scope="module")
def staging_only(world):
    """A device and an app with a staging env and no dev."""
    return with_app(world, "env-flag", env_args=("--env", "staging"))


ENV_AWARE = {
    "push": ["push", "{app}"],
    "pull": ["pull", "{app}", "--stdout"],
    "exec": ["exec", "{app}", "--env", "staging", "--", "true"],
    "diff": ["diff", "{app}"],
    "set": ["set", "{app}", "X=1"],
    "unset": ["unset", "{app}", "X"],
    "get": ["get", "{app}", "API_KEY"],
    "history": ["history", "{app}"],
    "rollback": ["rollback", "{app}", "--rev", "1"],
}


@pytest.mark.parametrize("command", sorted(ENV_AWARE))
def test_env_flag_reaches_every_env_aware_command(staging_only, command):
    device, app = staging_only
    argv = [a.format(app=app) for a in ENV_AWARE[command]]
    without = [a for a in argv if a not in ("--env", "staging")]
    missing = device.run(*without)
    assert missing.code == 1 and "has no env 'dev'" in missing.stderr, missing
    if "--env" not in argv:
        argv += ["--env", "staging"]
    device.run(*argv, check=0)


def test_env_may_come_first_or_from_the_environment(staging_only):
    device, app = staging_only
    assert device.run("--env", "staging", "get", app, "API_KEY").stdout == "k-123\n"
    from_variable = device.run("get", app, "API_KEY", env={"DOTMAGE_ENV": "staging"})
    assert from_variable.stdout == "k-123\n"
    device.run("env", "use", "staging", check=0)
    try:
        assert device.run("get", app, "API_KEY", check=0).stdout == "k-123\n"
    finally:
        device.run("env", "use", "dev", check=0)


def test_gen_ci_token_needs_an_explicit_env(staging_only):
    device, app = staging_only
    refused = device.run("gen-ci-token", "--app", app, env={"DOTMAGE_ENV": "staging"})
    assert refused.code == 1 and "needs --env" in refused.stderr
    made = device.run("gen-ci-token", "--app", app, "--env", "staging", "--json")
    assert made.json()["token"].startswith("dmage_ci_")


# -- exit codes, one family at a time ------------------------------------------


def test_secret_commands_exit_0_1_3_4(world):
    laptop, app = with_app(world, "codes-secrets")
    other = world.device("codes-other")
    other.run("pull", app, check=0)
    laptop.write(".env", SAMPLE + "NEW=1\n")
    laptop.run("push", app, check=0)
    other.write(".env", SAMPLE + "OTHER=1\n")
    assert "dmage init" in laptop.run("pull", "nope/none", check=1).stderr
    assert "run dmage auth" in world.device("x", False).run("pull", app, check=3).stderr
    assert "pull first" in other.run("push", app, check=4).stderr
    assert "dmage push" in laptop.run("init", app, check=4).stderr


def test_env_commands_exit_0_1_3_4(world):
    laptop, app = with_app(world, "codes-envs")
    laptop.run("env", "list", app, check=0)
    assert "no app" in laptop.run("env", "list", "nope/none", check=1).stderr
    stranger = world.device("codes-stranger", signed_in=False)
    assert "run dmage auth" in stranger.run("history", app, check=3).stderr
    assert "already has an env" in laptop.run("env", "new", app, "dev", check=4).stderr


def test_account_commands_exit_0_1_3(world):
    # No account command can conflict (4): each acts on this device alone.
    laptop = world.device("codes-account")
    laptop.run("devices", check=0)
    laptop.run("devices", "revoke", "0123456789abcdef", check=1)
    laptop.run("logout", check=0)
    assert "run dmage auth" in laptop.run("devices", check=3).stderr
    assert "run dmage auth" in laptop.run("passwd", check=3).stderr


# -- spinners and broken networks ----------------------------------------------


def signed_in_against(world, url: str):
    """A signed-in device whose remembered server is now `url`."""
    device = world.device("elsewhere")
    config = json.loads((device.home / "config.json").read_text())
    config["server"] = url
    (device.home / "config.json").write_text(json.dumps(config))
    return device


def test_a_slow_server_shows_a_spinner_on_a_terminal_only(world):
    slow = HttpServer({"devices": []}, delay=1.0)
    try:
        device = signed_in_against(world, slow.url)
        argv = [sys.executable, "-m", "dotmage", "devices"]
        terminal = Terminal(argv, device.cwd, device.environment)
        assert terminal.wait() == 0
        assert f"Waiting for {slow.url}".encode() in terminal.output

        piped = device.run("devices", check=0)
        assert "Waiting" not in piped.stderr and "\r" not in piped.stderr
    finally:
        slow.close()


def broken_servers(tmp_path):
    """(label, server, message) for every way a server can fail to be one."""
    html = HttpServer(b"<html>login</html>", content_type="text/html")
    tls = HttpServer({"status": "ok"}, tls=self_signed_certificate(tmp_path))
    return [
        ("refused", None, "refused the connection"),
        ("timeout", RawServer(None), "within 1s"),
        ("garbage", RawServer(b"\x00\x01SSH-2.0 not http\r\n\r\n"), "in HTTP"),
        ("html", html, "text/html, not dotMage JSON"),
        ("tls to plain http", html, "TLS handshake"),
        ("untrusted tls", tls, "certificate this machine does not trust"),
    ]


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")
def test_network_failures_are_one_line_and_exit_1(world, tmp_path):
    stranger = world.device("network", signed_in=False)
    cases = broken_servers(tmp_path)
    try:
        for label, server, message in cases:
            url = server.url if server else f"http://127.0.0.1:{free_port()}"
            if label == "tls to plain http":
                url = url.replace("http://", "https://")
            result = stranger.run(
                "auth", "--server", url, env={"DOTMAGE_TIMEOUT": "1"}, timeout=30
            )
            lines = errors_of(result)
            assert result.code == 1, (label, result.stderr)
            assert len(lines) == 1 and message in lines[0], (label, result.stderr)
            assert "Traceback" not in result.stderr
    finally:
        for _, server, _ in cases:
            if server is not None:
                server.close()
