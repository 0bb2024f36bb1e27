"""The server against bad settings, bad input, brute force and a stolen database.

Real `dmage serve` processes on loopback, the real CLI, raw HTTP where a
browser or an attacker would send what the CLI never does.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest
from conftest import BOOTSTRAP, PASSWORD, Device, base_environment, start_server
from test_tokens import credentials, made, parse_enrollment_token, redeem, sql
from world import shared_world

from dotmage import crypto
from dotmage.client.vault import parse_ci_token

# -- settings -----------------------------------------------------------------------

MALFORMED = [
    ("DOTMAGE_DB_URL", "mysql://db/dotmage"),
    ("DOTMAGE_BOOTSTRAP_SECRET", "short"),
    ("DOTMAGE_TOKEN_TTL", "24 hours"),
    ("DOTMAGE_REFRESH_TTL", "0d"),
    ("DOTMAGE_RATE_LIMIT", "ten per minute"),
    ("DOTMAGE_LOG_LEVEL", "loud"),
    ("DOTMAGE_STATIC_DIR", "no/such/folder"),
    ("DOTMAGE_TRUSTED_PROXIES", "10.0.0.0/8, the-proxy"),
    ("DOTMAGE_MAX_BODY", "1k"),
]


@pytest.mark.parametrize("variable, value", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_setting_stops_the_server_naming_the_variable(
    tmp_path, variable, value
):
    environment = base_environment(
        DOTMAGE_DB_URL=f"sqlite:///{tmp_path / 'server.db'}",
        DOTMAGE_BOOTSTRAP_SECRET=BOOTSTRAP,
        HOME=tmp_path,
    )
    environment[variable] = value

    result = subprocess.run(
        [sys.executable, "-m", "dotmage", "serve", "--port", "9"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 1
    assert variable in result.stderr
    assert "Traceback" not in result.stderr


def register(server, name="device") -> dict:
    """A device registered over raw HTTP with the test password's KDF."""
    status, _, found = server.request(
        "POST", "/api/v1/auth/prelogin", {"bootstrap_secret": BOOTSTRAP}
    )
    if status == 404:
        return create_account(server)
    kdf = found["kdf"]
    _, auth_key = derive(kdf)
    status, _, issued = server.request(
        "POST",
        "/api/v1/devices",
        {
            "bootstrap_secret": BOOTSTRAP,
            "auth_key": crypto.b64encode(auth_key),
            "device_name": name,
        },
    )
    assert status == 201, issued
    return issued


def derive(kdf: dict) -> tuple[bytes, bytes]:
    params = crypto.KdfParams(kdf["time_cost"], kdf["memory_kib"], kdf["parallelism"])
    master = crypto.derive_master_key(PASSWORD, crypto.b64decode(kdf["salt"]), params)
    return crypto.split_master_key(master)


def create_account(server) -> dict:
    kdf = {
        "time_cost": 1,
        "memory_kib": 1024,
        "parallelism": 1,
        "salt": crypto.b64encode(os.urandom(16)),
    }
    kek, auth_key = derive(kdf)
    status, _, issued = server.request(
        "POST",
        "/api/v1/account",
        {
            "bootstrap_secret": BOOTSTRAP,
            "kdf": kdf,
            "auth_key": crypto.b64encode(auth_key),
            "sealed_account_key": crypto.seal(
                kek, crypto.new_key(), crypto.aad_account_key()
            ),
            "device_name": "first",
        },
    )
    assert status == 201, issued
    return issued


def test_a_made_bootstrap_secret_is_shown_once_kept_as_a_hash_and_survives(
    tmp_path, db_url
):
    first = start_server(tmp_path, db_url, bootstrap=None)
    first.stop()
    secret = re.search(r"dmage_boot_[A-Za-z0-9_-]+", first.log()).group(0)
    again = start_server(tmp_path, db_url, bootstrap=None)
    try:
        status = again.request(
            "POST", "/api/v1/auth/prelogin", {"bootstrap_secret": secret}
        )[0]
        stored = sql(again, "SELECT value FROM setting WHERE key = 'bootstrap_hash'")
    finally:
        again.stop()

    assert status == 404  # the secret is right; there is just no account yet
    assert secret not in again.log()
    assert stored == [(crypto.sha256_hex(secret.encode()),)]


def test_token_and_refresh_lifetimes_come_from_the_settings(tmp_path, db_url):
    server = start_server(
        tmp_path, db_url, DOTMAGE_TOKEN_TTL="90s", DOTMAGE_REFRESH_TTL="2h"
    )
    try:
        issued = register(server)
        refresh_id = issued["refresh_token"][4:].partition(".")[0]
        (expires_at,) = sql(
            server, "SELECT expires_at FROM token WHERE id = ?", refresh_id
        )[0]
    finally:
        server.stop()

    assert issued["expires_in"] == 90
    assert expires_at - time.time() == pytest.approx(7200, abs=60)


def test_log_level_warning_drops_the_access_log(tmp_path, db_url):
    quiet = start_server(tmp_path, db_url, DOTMAGE_LOG_LEVEL="warning")
    quiet.request("GET", "/api/v1/health")
    quiet.stop()
    chatty = start_server(tmp_path, db_url, DOTMAGE_LOG_LEVEL="debug")
    chatty.request("GET", "/api/v1/health")
    chatty.stop()

    assert "GET /api/v1/health 200" not in quiet.log()
    assert "GET /api/v1/health 200" in chatty.log()


def test_the_static_dir_serves_the_web_admin_under_a_strict_csp(tmp_path, db_url):
    static = tmp_path / "admin"
    static.mkdir()
    (static / "index.html").write_text("<h1>custom admin</h1>")
    server = start_server(tmp_path, db_url, DOTMAGE_STATIC_DIR=static)
    try:
        status, headers, page = server.request("GET", "/")
    finally:
        server.stop()

    assert status == 200
    assert page == "<h1>custom admin</h1>"
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_bodies_above_max_body_get_413(tmp_path, db_url):
    server = start_server(tmp_path, db_url, DOTMAGE_MAX_BODY="2048")
    try:
        big = {"bootstrap_secret": "x" * 3000}
        status, _, reply = server.request("POST", "/api/v1/auth/prelogin", big)
        small = server.request("POST", "/api/v1/auth/prelogin", {"x": "y"})[0]
    finally:
        server.stop()

    assert status == 413
    assert reply["error"]["code"] == "too_large"
    assert small == 400


# -- rate limiting and the client address -------------------------------------------


def wrong_bootstrap(server, headers=None) -> tuple[int, dict, dict]:
    body = {"bootstrap_secret": "not-the-bootstrap-secret"}
    return server.request("POST", "/api/v1/auth/prelogin", body, headers=headers)


def test_the_eleventh_failed_auth_in_a_minute_gets_429_across_processes(
    tmp_path, db_url
):
    # Empty means unset: the default 10/min. Two processes share the database.
    first = start_server(tmp_path, db_url, DOTMAGE_RATE_LIMIT="")
    second = start_server(tmp_path, db_url, DOTMAGE_RATE_LIMIT="")
    try:
        statuses = [wrong_bootstrap(first)[0] for _ in range(5)]
        statuses += [wrong_bootstrap(second)[0] for _ in range(5)]
        status, headers, reply = wrong_bootstrap(first)
        right = first.request(
            "POST", "/api/v1/auth/prelogin", {"bootstrap_secret": BOOTSTRAP}
        )[0]
    finally:
        first.stop()
        second.stop()

    assert statuses == [401] * 10
    assert status == 429
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert reply["error"]["code"] == "rate_limited"
    assert right == 429  # even the right secret waits: no guessing past it


def test_the_cli_says_when_it_is_rate_limited(tmp_path, db_url):
    server = start_server(tmp_path, db_url, DOTMAGE_RATE_LIMIT="2/min")
    try:
        stranger = Device(tmp_path / "home", tmp_path / "work", server)
        stranger.environment["DOTMAGE_BOOTSTRAP_SECRET"] = "a-wrong-bootstrap-secret"
        for _ in range(2):
            stranger.run("auth", "--server", server.url, check=1)
        limited = stranger.run("auth", "--server", server.url, check=1)
    finally:
        server.stop()

    assert "too many failed attempts" in limited.stderr
    assert re.search(r"try again in \d+s", limited.stderr)
    assert "Traceback" not in limited.stderr


def test_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path, db_url):
    proxied = start_server(
        tmp_path,
        db_url,
        DOTMAGE_RATE_LIMIT="3/min",
        DOTMAGE_TRUSTED_PROXIES="127.0.0.1/32, ::1",
    )
    try:
        attacker = {"X-Forwarded-For": "198.51.100.7"}
        bystander = {"X-Forwarded-For": "203.0.113.9, 198.51.100.8"}
        seen = [wrong_bootstrap(proxied, attacker)[0] for _ in range(4)]
        other = wrong_bootstrap(proxied, bystander)[0]
        addresses = {row[0] for row in sql(proxied, "SELECT address FROM audit")}
    finally:
        proxied.stop()

    assert seen == [401, 401, 401, 429]
    assert other == 401  # another client behind the same proxy is not blocked
    assert addresses == {"198.51.100.7", "198.51.100.8"}


def test_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path, db_url):
    direct = start_server(tmp_path, db_url, DOTMAGE_RATE_LIMIT="3/min")
    try:
        seen = [
            wrong_bootstrap(direct, {"X-Forwarded-For": f"198.51.100.{n}"})[0]
            for n in range(4)
        ]
        addresses = {row[0] for row in sql(direct, "SELECT address FROM audit")}
    finally:
        direct.stop()

    assert seen == [401, 401, 401, 429]  # rotating the header dodges nothing
    assert addresses == {"127.0.0.1"}


def test_the_session_cookie_is_secure_behind_a_trusted_https_proxy(
    tmp_path, db_url, make_device
):
    laptop = make_device("laptop", signed_in=True)
    first = made(laptop, "token")["token"]
    second = made(laptop, "token")["token"]
    https = {"X-Forwarded-Proto": "https"}
    laptop.server.stop()

    behind = start_server(tmp_path, db_url, DOTMAGE_TRUSTED_PROXIES="127.0.0.1")
    trusted = redeem_with(behind, first, https)
    behind.stop()
    exposed = start_server(tmp_path, db_url)
    spoofed = redeem_with(exposed, second, https)
    exposed.stop()

    assert "Secure" in [a.strip() for a in trusted.split(";")]
    assert "Secure" not in [a.strip() for a in spoofed.split(";")]


def redeem_with(server, code: str, headers: dict) -> str:
    token_id, secret = parse_enrollment_token(code)
    _, proof = crypto.enrollment_keys(secret)
    body = {"token_id": token_id, "proof": crypto.b64encode(proof)}
    status, reply_headers, _ = server.request(
        "POST", "/api/v1/auth/enroll", body, headers=headers
    )
    assert status == 201
    return reply_headers["Set-Cookie"]


# -- one shared server: headers, bad input, the API description, the audit log ------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    yield from shared_world(request, tmp_path_factory, "security")


@pytest.fixture(scope="module")
def laptop(world):
    device = world.device("laptop")
    device.write(".env", "API_KEY=one\n")
    device.run("init", "myapp", check=0)
    return device


@pytest.fixture(scope="module")
def bearer(laptop) -> dict:
    return {"Authorization": f"Bearer {credentials(laptop)['access_token']}"}


def test_api_answers_carry_no_store_and_nosniff(world, bearer):
    for path, headers in (("/api/v1/apps", bearer), ("/api/v1/nowhere", {})):
        _, reply_headers, _ = world.server.request("GET", path, headers=headers)
        assert reply_headers["Cache-Control"] == "no-store"
        assert reply_headers["X-Content-Type-Options"] == "nosniff"
        assert reply_headers["Content-Type"].startswith("application/json")


DEV = "/apps/myapp/-/envs/dev"
BAD_INPUT = [
    ("malformed JSON", "POST", "/apps", b'{"name": ', 400),
    ("a JSON array", "POST", "/apps", b"[1, 2]", 400),
    ("a number for a name", "POST", "/apps", {"name": 5}, 400),
    ("a missing field", "POST", "/apps", {}, 400),
    ("an invalid app name", "POST", "/apps", {"name": "../etc"}, 400),
    ("a NUL in a name", "POST", "/apps", {"name": "a\x00b"}, 400),
    ("a lone surrogate", "POST", "/apps", {"name": "a\ud800"}, 400),
    ("an unknown app", "GET", "/apps/nowhere/-/envs", None, 404),
    ("an unknown env", "GET", "/apps/myapp/-/envs/nope/revisions/latest", None, 404),
    ("an invalid env name", "GET", "/apps/myapp/-/envs/bad%20env/revisions", None, 400),
    ("a string revision", "POST", DEV + "/rollback", {"revision": "1"}, 400),
    ("a boolean revision", "POST", DEV + "/rollback", {"revision": True}, 400),
    ("a 64-bit revision", "GET", DEV + "/revisions/9223372036854775808", None, 400),
    ("a huge base", "POST", DEV + "/revisions", {"base_revision": 2**64}, 400),
    (
        "an unsealed blob",
        "POST",
        DEV + "/revisions",
        {"base_revision": 1, "blob": "hi"},
        400,
    ),
    ("a bad limit", "GET", "/audit?limit=ten", None, 400),
    ("an unknown endpoint", "GET", "/secrets", None, 404),
    ("an unknown path under an app", "GET", "/apps/myapp/-/nothing", None, 404),
    ("a wrong method", "PATCH", "/apps", None, 405),
]


@pytest.mark.parametrize(
    "method, path, body, expected",
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
def test_bad_input_gets_a_json_error_never_a_500(
    world, bearer, method, path, body, expected
):
    raw = body if isinstance(body, bytes) else None
    json_body = None if raw is not None else body
    headers = {**bearer, "Content-Type": "application/json"}

    status, _, reply = world.server.request(
        method, "/api/v1" + path, json_body, headers=headers, raw=raw
    )

    assert status == expected, reply
    assert set(reply["error"]) >= {"code", "message"}
    assert "Traceback" not in json.dumps(reply)


def test_openapi_describes_every_registered_endpoint(world):
    from dotmage.server import routes  # noqa: F401  (fills the registry)
    from dotmage.server.endpoints import API_PREFIX, ENDPOINTS, openapi_path

    status, _, document = world.server.request("GET", "/api/v1/openapi.json")

    assert status == 200
    assert document["openapi"].startswith("3.")
    described = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    registered = {(ep.method, openapi_path(API_PREFIX + ep.path)) for ep in ENDPOINTS}
    assert registered == described
    assert len(registered) >= 25


def test_the_audit_log_records_every_kind_of_change_and_refusal(world, laptop):
    laptop.write(".env", "API_KEY=two\n")
    laptop.run("push", "myapp", check=0)
    laptop.run("pull", "myapp", "--stdout", check=0)
    laptop.run("rollback", "myapp", "--rev", "1", check=0)
    laptop.run("env", "new", "myapp", "staging", check=0)
    laptop.run("env", "rm", "myapp", "staging", "--yes", check=0)
    created = made(laptop, "gen-ci-token", "--app", "myapp", "--env", "dev")
    laptop.run("tokens", "revoke", created["id"], check=0)
    ci = parse_ci_token(created["token"])
    world.server.request(
        "GET",
        "/api/v1/apps/myapp/-/envs/dev/revisions/latest",
        headers={"Authorization": f"Bearer {ci.bearer}"},
    )

    entries = made(laptop, "audit", "--app", "myapp", "--limit", "50")["entries"]

    outcomes = {(e["action"], e["outcome"]) for e in entries}
    for action in ("push", "pull", "rollback", "envs.create", "envs.delete"):
        assert (action, "ok") in outcomes
    assert ("tokens.create", "ok") in outcomes
    assert ("tokens.revoke", "ok") in outcomes
    assert ("pull", "refused:401") in outcomes
    assert {e["address"] for e in entries} == {"127.0.0.1"}
    assert all(e["actor"] and e["at"] for e in entries)
    everything = made(laptop, "audit", "--limit", "500")["entries"]
    assert {"auth.register", "auth.create_account"} & {e["action"] for e in everything}
    assert len(made(laptop, "audit", "--limit", "2")["entries"]) == 2
    assert "rollback" in laptop.run("audit", "--app", "myapp", check=0).stdout


# -- a stolen database --------------------------------------------------------------


def database_contents(server) -> bytes:
    """Every byte a thief of the database gets: the files, or every row."""
    if server.db_url.startswith("sqlite"):
        path = server.db_url.removeprefix("sqlite:///")
        return b"".join(
            open(name, "rb").read()
            for name in (path, path + "-wal", path + "-journal")
            if os.path.exists(name)
        )
    tables = sql(
        server,
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public'",
    )
    rows = [sql(server, f'SELECT * FROM "{name}"') for (name,) in tables]
    return repr(rows).encode()


def secret_part(bearer: str) -> str:
    return bearer.partition(".")[2]


def test_a_stolen_database_holds_no_secret(tmp_path, server, make_device):
    laptop = make_device("laptop", signed_in=True)
    values = ["s3cret-db-password-4411", "sk_live_stolen_db_9876", "hunter2-pw-5566"]
    laptop.write(".env", f"DB_PASSWORD={values[0]}\nSTRIPE={values[1]}\n")
    laptop.run("init", "myapp", check=0)
    laptop.run("set", "myapp", f"ADMIN_PASSWORD={values[2]}", check=0)
    secrets = [PASSWORD, BOOTSTRAP, *values]

    # An enrollment token, redeemed; a web login, redeemed; a CI token, used.
    enrollment = made(laptop, "gen-token")["token"]
    desktop = make_device("desktop")
    desktop.run("auth", "--server", server.url, "--enroll", enrollment, check=0)
    login = made(laptop, "token")["token"]
    _, headers, _, _ = redeem(server, login)
    ci_text = made(laptop, "gen-ci-token", "--app", "myapp", "--env", "dev")["token"]
    ci = parse_ci_token(ci_text)
    runner = make_device("runner")
    runner.run("pull", "myapp", "--stdout", env={"DOTMAGE_CI_TOKEN": ci_text}, check=0)

    # Device tokens before and after a refresh.
    before = credentials(desktop)
    status, _, after = server.request(
        "POST", "/api/v1/auth/refresh", {"refresh_token": before["refresh_token"]}
    )
    assert status == 200
    for code in (enrollment, login):
        _, secret = parse_enrollment_token(code)
        _, proof = crypto.enrollment_keys(secret)
        secrets += [code, crypto.b64encode(secret), crypto.b64encode(proof)]
    secrets += [ci_text, ci.secret, crypto.b64encode(ci.env_key)]
    secrets.append(secret_part(headers["Set-Cookie"].split(";")[0]))
    for issued in (before, after, credentials(laptop)):
        secrets += [secret_part(issued["access_token"])]
        secrets += [secret_part(issued["refresh_token"])]

    stolen = database_contents(server)

    # The dump is real: what the server must keep is there in the clear.
    assert b"myapp" in stolen
    assert ci.token_id.encode() in stolen
    leaked = [s for s in secrets if s.encode() in stolen]
    assert leaked == []
