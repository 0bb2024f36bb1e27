"""Enrollment tokens, web login codes, CI tokens and refresh rotation.

Every flow goes through the real CLI and a real server; raw HTTP stands in for
the browser (web login) and for a CI token trying what it must not. One server
per database for the module: each test makes its own devices and tokens.
"""

import contextlib
import json
import sqlite3
import time

import pytest
from world import shared_world

from dotmage import crypto
from dotmage.client.auth import parse_enrollment_token
from dotmage.client.vault import parse_ci_token

DEV_TEXT = "# dev\nAPI_KEY=dev-key-1\n"
PROD_TEXT = "# prod\nAPI_KEY=prod-key-1\nDB_URL=postgres://prod\n"
NO_SECRETS = {"DOTMAGE_MASTER_PASSWORD": None, "DOTMAGE_BOOTSTRAP_SECRET": None}


# -- the database, read and changed behind the server's back ------------------------


def sql(server, query: str, *params) -> list:
    """Run one statement on the server's database (? placeholders)."""
    if server.db_url.startswith("sqlite"):
        path = server.db_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as connection:
            rows = connection.execute(query, params).fetchall()
            connection.commit()
        return rows
    import psycopg

    with psycopg.connect(server.db_url, autocommit=True) as connection:
        cursor = connection.execute(query.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []


def expire_token(server, token_id: str) -> None:
    sql(
        server,
        "UPDATE token SET expires_at = ? WHERE id = ?",
        int(time.time()) - 1,
        token_id,
    )


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    yield from shared_world(request, tmp_path_factory, "tokens")


@pytest.fixture(scope="module")
def laptop(world):
    """A signed-in device with myapp (envs dev and prod) and otherapp."""
    device = world.device("laptop")
    device.write(".env", DEV_TEXT)
    device.run("init", "myapp", check=0)
    device.run("init", "otherapp", check=0)
    device.write("prod.env", PROD_TEXT)
    device.run("env", "new", "myapp", "prod", check=0)
    device.run("push", "myapp", "--env", "prod", "--file", "prod.env", check=0)
    return device


def made(device, *args) -> dict:
    """Run a token-making command with --json; its document."""
    return device.run(*args, "--json", check=0).json()


def enroll(world, name: str, token: str, check=None):
    """A fresh machine joins with a token: no password, no terminal."""
    device = world.device(name, signed_in=False)
    result = device.run(
        "auth",
        "--server",
        world.server.url,
        "--enroll",
        token,
        env=NO_SECRETS,
        input=b"",
        check=check,
    )
    return device, result


def token_row(server, token_id: str) -> dict:
    columns = ("kind", "secret_hash", "name", "used_at", "revoked_at", "expires_at")
    rows = sql(server, f"SELECT {', '.join(columns)} FROM token WHERE id = ?", token_id)
    assert len(rows) == 1
    return dict(zip(columns, rows[0], strict=True))


# -- enrollment tokens --------------------------------------------------------------


def test_an_enrollment_token_adds_a_device_without_password_or_terminal(world, laptop):
    created = made(laptop, "gen-token", "--name", "work-pc", "--ttl", "2h")
    assert created["token"].startswith("dmage_etok_")
    assert created["expires_at"] - time.time() == pytest.approx(7200, abs=60)

    desktop, result = enroll(world, "work-pc", created["token"], check=0)

    assert "Device registered" in result.stderr
    pulled = desktop.run("pull", "myapp", "--stdout", env=NO_SECRETS, check=0)
    assert pulled.stdout == DEV_TEXT


def test_the_server_keeps_only_a_hash_of_the_enrollment_proof(world, laptop):
    created = made(laptop, "gen-token")
    token_id, secret = parse_enrollment_token(created["token"])
    _, proof = crypto.enrollment_keys(secret)

    row = token_row(world.server, token_id)

    assert row["kind"] == "enroll"
    assert row["secret_hash"] == crypto.sha256_hex(proof)
    stored = json.dumps(sql(world.server, "SELECT * FROM token WHERE id = ?", token_id))
    for form in (crypto.b64encode(secret), crypto.b64encode(proof), proof.hex()):
        assert form not in stored


def test_used_and_revoked_tokens_keep_no_sealed_account_key(world, laptop):
    used = made(laptop, "gen-token")
    revoked = made(laptop, "gen-token")
    waiting = made(laptop, "gen-token")
    enroll(world, "joiner", used["token"], check=0)
    laptop.run("tokens", "revoke", revoked["id"], check=0)

    def sealed(token_id):
        query = "SELECT sealed_account_key FROM token WHERE id = ?"
        return sql(world.server, query, token_id)[0][0]

    assert sealed(used["id"]) is None
    assert sealed(revoked["id"]) is None
    assert sealed(waiting["id"]) is not None


def test_an_enrollment_token_works_once(world, laptop):
    token = made(laptop, "gen-token")["token"]
    enroll(world, "first", token, check=0)

    _, again = enroll(world, "second", token, check=1)

    assert "used" in again.stderr
    assert "Traceback" not in again.stderr


def test_an_expired_enrollment_token_is_refused(world, laptop):
    created = made(laptop, "gen-token", "--ttl", "1h")
    expire_token(world.server, created["id"])

    _, result = enroll(world, "late", created["token"], check=1)

    assert "expired" in result.stderr
    listing = made(laptop, "tokens")["tokens"]
    assert {t["id"]: t["state"] for t in listing}[created["id"]] == "expired"


def test_a_revoked_enrollment_token_is_refused_at_once(world, laptop):
    created = made(laptop, "gen-token", "--name", "spare")
    listed = {t["id"]: t for t in made(laptop, "tokens")["tokens"]}
    assert listed[created["id"]]["state"] == "active"
    assert listed[created["id"]]["name"] == "spare"

    laptop.run("tokens", "revoke", created["id"], check=0)

    _, result = enroll(world, "too-late", created["token"], check=1)
    assert "revoked" in result.stderr
    listed = {t["id"]: t for t in made(laptop, "tokens")["tokens"]}
    assert listed[created["id"]]["state"] == "revoked"


def test_a_damaged_enrollment_token_is_refused_clearly(world, laptop):
    token = made(laptop, "gen-token")["token"]
    damaged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    _, result = enroll(world, "typo", damaged, check=1)

    assert "unknown or wrong enrollment token" in result.stderr


# -- web admin login ----------------------------------------------------------------


def redeem(server, code: str, **extra):
    """What the browser does with a login code: (status, headers, body, key)."""
    token_id, secret = parse_enrollment_token(code)
    seal_key, proof = crypto.enrollment_keys(secret)
    body = {"token_id": token_id, "proof": crypto.b64encode(proof), **extra}
    status, headers, reply = server.request("POST", "/api/v1/auth/enroll", body)
    return status, headers, reply, (seal_key, token_id)


def session_of(headers) -> str:
    cookie = headers["Set-Cookie"]
    return cookie.split(";")[0]


def test_a_login_code_pasted_into_auth_enroll_is_refused_and_not_spent(world, laptop):
    code = made(laptop, "token")["token"]

    _, result = enroll(world, "confused", code, check=1)

    assert "web admin login code" in result.stderr
    status, _, _, _ = redeem(world.server, code, kind="login")
    assert status == 201


def test_a_device_token_pasted_into_the_web_login_is_refused_and_not_spent(
    world, laptop
):
    token = made(laptop, "gen-token", "--name", "spare")["token"]

    status, _, reply, _ = redeem(world.server, token, kind="login")

    assert status == 400
    assert "device enrollment token" in reply["error"]["message"]
    enroll(world, "spare", token, check=0)


def test_web_login_returns_the_sealed_account_key_and_a_strict_cookie(world, laptop):
    code = made(laptop, "token")["token"]
    assert code.startswith("dmage_etok_")

    status, headers, reply, (seal_key, token_id) = redeem(world.server, code)

    assert status == 201
    attributes = [part.strip() for part in headers["Set-Cookie"].split(";")]
    assert attributes[0].startswith("dmage_session=dss_")
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(attributes)
    assert "Secure" not in attributes  # plain HTTP, no trusted proxy
    account_key = crypto.unseal(
        seal_key, reply["sealed_account_key"], crypto.aad_enroll(token_id)
    )

    # The key the browser got opens an env key the session reads.
    cookie = {"Cookie": session_of(headers)}
    status, _, env = world.server.request(
        "GET", "/api/v1/apps/myapp/-/envs/prod", headers=cookie
    )
    assert status == 200
    crypto.unseal(account_key, env["sealed_key"], crypto.aad_env_key("myapp", "prod"))


def test_a_login_code_redeems_once(world, laptop):
    code = made(laptop, "token")["token"]
    assert redeem(world.server, code)[0] == 201

    status, _, reply, _ = redeem(world.server, code)

    assert status == 401
    assert "used" in reply["error"]["message"]


def test_a_session_writes_only_with_the_csrf_header_and_ends_at_logout(world, laptop):
    code = made(laptop, "token")["token"]
    _, headers, _, _ = redeem(world.server, code)
    cookie = {"Cookie": session_of(headers)}
    web = {**cookie, "X-Dmage-Web": "1"}

    status, _, reply = world.server.request(
        "POST", "/api/v1/apps", {"name": "from-web"}, headers=cookie
    )
    assert status == 403
    assert "X-Dmage-Web" in reply["error"]["message"]
    status, _, _ = world.server.request(
        "POST", "/api/v1/apps", {"name": "from-web"}, headers=web
    )
    assert status == 201

    status, headers, _ = world.server.request(
        "POST", "/api/v1/auth/logout", {}, headers=web
    )
    assert status == 200
    assert "Max-Age=0" in headers["Set-Cookie"]
    status, _, reply = world.server.request("GET", "/api/v1/apps", headers=cookie)
    assert status == 401


# -- refresh rotation ---------------------------------------------------------------


def credentials(device) -> dict:
    return json.loads((device.home / "credentials.json").read_text())


def test_refresh_rotates_both_tokens_and_retires_the_old_access_token(world):
    phone = world.device("phone")
    old = credentials(phone)

    status, _, issued = world.server.request(
        "POST", "/api/v1/auth/refresh", {"refresh_token": old["refresh_token"]}
    )

    assert status == 200
    assert issued["refresh_token"] != old["refresh_token"]
    assert issued["access_token"] != old["access_token"]
    assert api_status(world, old["access_token"]) == 401
    assert api_status(world, issued["access_token"]) == 200


def test_reusing_a_spent_refresh_token_revokes_the_device(world, laptop):
    tablet = world.device("tablet")
    stolen = credentials(tablet)["refresh_token"]
    _, _, first = world.server.request(
        "POST", "/api/v1/auth/refresh", {"refresh_token": stolen}
    )
    # The pair it bought is used: no lost answer can explain another use.
    _, _, issued = world.server.request(
        "POST", "/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]}
    )

    status, _, reply = world.server.request(
        "POST", "/api/v1/auth/refresh", {"refresh_token": stolen}
    )

    assert status == 401
    assert "reused" in reply["error"]["message"]
    assert api_status(world, issued["access_token"]) == 401
    result = tablet.run("apps", check=3)
    assert "revoked" in result.stderr
    devices = made(laptop, "devices")["devices"]
    assert [d["revoked_at"] is not None for d in devices if d["name"] == "tablet"] == [
        True
    ]
    actions = [e["action"] for e in made(laptop, "audit", "--limit", "20")["entries"]]
    assert "auth.refresh_reuse" in actions


def test_a_refresh_whose_answer_was_lost_may_be_retried_once(world, laptop):
    desk = world.device("desk")
    spent = credentials(desk)["refresh_token"]
    _, _, lost = world.server.request(
        "POST", "/api/v1/auth/refresh", {"refresh_token": spent}
    )

    status, _, retried = world.server.request(
        "POST", "/api/v1/auth/refresh", {"refresh_token": spent}
    )

    assert status == 200
    assert api_status(world, retried["access_token"]) == 200
    assert api_status(world, lost["access_token"]) == 401
    actions = [e["action"] for e in made(laptop, "audit", "--limit", "20")["entries"]]
    assert "auth.refresh_retry" in actions
    devices = made(laptop, "devices")["devices"]
    assert [d["revoked_at"] for d in devices if d["name"] == "desk"] == [None]


def test_the_pair_a_retry_replaced_is_theft_when_presented_later(world):
    kiosk = world.device("kiosk")
    spent = credentials(kiosk)["refresh_token"]
    _, _, thief = world.server.request(
        "POST", "/api/v1/auth/refresh", {"refresh_token": spent}
    )
    _, _, retried = world.server.request(
        "POST", "/api/v1/auth/refresh", {"refresh_token": spent}
    )

    status, _, reply = world.server.request(
        "POST", "/api/v1/auth/refresh", {"refresh_token": thief["refresh_token"]}
    )

    assert status == 401
    assert "reused" in reply["error"]["message"]
    assert api_status(world, retried["access_token"]) == 401


def test_a_spent_refresh_token_is_retried_once_and_then_is_theft(world):
    lobby = world.device("lobby")
    spent = credentials(lobby)["refresh_token"]
    replies = [
        world.server.request("POST", "/api/v1/auth/refresh", {"refresh_token": spent})
        for _ in range(3)
    ]

    assert [status for status, _, _ in replies] == [200, 200, 401]
    assert "reused" in replies[2][2]["error"]["message"]
    assert api_status(world, replies[1][2]["access_token"]) == 401


def api_status(world, bearer: str, path="/api/v1/apps") -> int:
    headers = {"Authorization": f"Bearer {bearer}"}
    return world.server.request("GET", path, headers=headers)[0]


# -- CI tokens ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ci(world, laptop):
    """A CI token for myapp/prod: (token text, bearer, token id)."""
    created = made(laptop, "gen-ci-token", "--app", "myapp", "--env", "prod")
    parsed = parse_ci_token(created["token"])
    return created["token"], parsed.bearer, created["id"]


def ci_runner(world, token: str, name="runner"):
    """A machine that never ran dmage auth, with only DOTMAGE_CI_TOKEN."""
    runner = world.device(name, signed_in=False)
    runner.environment.update(DOTMAGE_CI_TOKEN=token)
    for variable in NO_SECRETS:
        runner.environment.pop(variable)
    return runner


def test_a_ci_token_pulls_and_execs_on_a_machine_that_never_signed_in(world, ci):
    runner = ci_runner(world, ci[0])

    runner.run("pull", "myapp", "--env", "prod", "--output", ".env", check=0)
    assert (runner.cwd / ".env").read_text() == PROD_TEXT

    result = runner.run(
        "exec", "myapp", "--env", "prod", "--", "sh", "-c", 'printf %s "$API_KEY"'
    )
    assert (result.code, result.stdout) == (0, "prod-key-1")
    assert not (runner.home / "credentials.json").exists()


def test_a_ci_token_is_self_contained(world, ci):
    parsed = parse_ci_token(ci[0])

    assert (parsed.server, parsed.app, parsed.env) == (
        world.server.url,
        "myapp",
        "prod",
    )
    assert len(parsed.env_key) == 32


def test_a_ci_token_through_the_cli_reads_no_other_env(world, ci):
    runner = ci_runner(world, ci[0])

    result = runner.run("pull", "myapp", "--env", "dev", "--stdout", check=1)

    assert "can only read myapp env prod" in result.stderr
    assert "dev-key-1" not in result.stdout


FORBIDDEN = [
    ("other app read", "GET", "/apps/otherapp/-/envs/dev/revisions/latest", None),
    ("other app env key", "GET", "/apps/otherapp/-/envs/dev", None),
    ("other env read", "GET", "/apps/myapp/-/envs/dev/revisions/latest", None),
    ("other env key", "GET", "/apps/myapp/-/envs/dev", None),
    ("other env revision", "GET", "/apps/myapp/-/envs/dev/revisions/1", None),
    ("list apps", "GET", "/apps", None),
    ("list envs", "GET", "/apps/myapp/-/envs", None),
    ("history", "GET", "/apps/myapp/-/envs/prod/revisions", None),
    (
        "push",
        "POST",
        "/apps/myapp/-/envs/prod/revisions",
        {"base_revision": 1, "blob": crypto.seal(bytes(32), b"x", b"x")},
    ),
    ("rollback", "POST", "/apps/myapp/-/envs/prod/rollback", {"revision": 1}),
    (
        "env create",
        "POST",
        "/apps/myapp/-/envs",
        {"name": "staging", "sealed_key": crypto.seal(bytes(32), b"x", b"x")},
    ),
    ("env delete", "DELETE", "/apps/myapp/-/envs/prod", None),
    ("app create", "POST", "/apps", {"name": "ci-made"}),
    ("app delete", "DELETE", "/apps/myapp/-", None),
    (
        "token create",
        "POST",
        "/tokens",
        {
            "kind": "ci",
            "id": "0123456789abcdef",
            "secret_hash": "0" * 64,
            "ttl": 60,
            "app": "myapp",
            "env": "prod",
        },
    ),
    ("token list", "GET", "/tokens", None),
    ("token revoke", "DELETE", "/tokens/0123456789abcdef", None),
    ("device list", "GET", "/devices", None),
    ("device revoke", "DELETE", "/devices/0123456789abcdef", None),
    ("audit", "GET", "/audit", None),
    ("account read", "GET", "/account", None),
    (
        "password change",
        "PUT",
        "/account/password",
        {"auth_key": "x", "new_auth_key": "x", "kdf": {}, "sealed_account_key": "x"},
    ),
    ("logout", "POST", "/auth/logout", {}),
]


@pytest.mark.parametrize(
    "method, path, body", [f[1:] for f in FORBIDDEN], ids=[f[0] for f in FORBIDDEN]
)
def test_a_ci_token_is_refused_everything_but_its_own_read(
    world, ci, method, path, body
):
    headers = {"Authorization": f"Bearer {ci[1]}"}

    status, _, reply = world.server.request(
        method, "/api/v1" + path, body, headers=headers
    )

    assert status == 403, reply
    assert "CI token can only read myapp env prod" in reply["error"]["message"]


def test_ci_token_refusals_are_audited_under_the_token(world, laptop, ci):
    headers = {"Authorization": f"Bearer {ci[1]}"}
    world.server.request("GET", "/api/v1/apps/otherapp/-/envs/dev", headers=headers)

    entries = made(laptop, "audit", "--app", "otherapp", "--limit", "5")["entries"]

    assert entries[0]["actor"] == f"ci:{ci[2]}"
    assert entries[0]["outcome"] == "refused:403"


def test_a_revoked_ci_token_stops_working_on_the_next_request(world, laptop):
    created = made(laptop, "gen-ci-token", "--app", "myapp", "--env", "prod")
    runner = ci_runner(world, created["token"], "revoked-runner")
    runner.run("pull", "myapp", "--env", "prod", "--stdout", check=0)

    laptop.run("tokens", "revoke", created["id"], check=0)

    result = runner.run("pull", "myapp", "--env", "prod", "--stdout", check=3)
    assert "revoked" in result.stderr
    assert "gen-ci-token" in result.stderr
    assert result.stdout == ""


def test_an_expired_ci_token_is_refused(world, laptop):
    created = made(laptop, "gen-ci-token", "--app", "myapp", "--env", "prod")
    runner = ci_runner(world, created["token"], "expired-runner")
    expire_token(world.server, created["id"])

    result = runner.run("exec", "myapp", "--env", "prod", "--", "true", check=3)

    assert "expired" in result.stderr


def test_tokens_lists_name_scope_expiry_and_last_use(world, laptop):
    created = made(
        laptop, "gen-ci-token", "--app", "myapp", "--env", "prod", "--name", "deploy"
    )
    before = {t["id"]: t for t in made(laptop, "tokens")["tokens"]}[created["id"]]
    assert (before["kind"], before["name"], before["app"], before["env"]) == (
        "ci",
        "deploy",
        "myapp",
        "prod",
    )
    assert before["expires_at"] - time.time() == pytest.approx(30 * 86400, abs=60)
    assert before["last_used_at"] is None

    ci_runner(world, created["token"], "used-runner").run(
        "pull", "myapp", "--env", "prod", "--stdout", check=0
    )

    after = {t["id"]: t for t in made(laptop, "tokens")["tokens"]}[created["id"]]
    assert after["last_used_at"] == pytest.approx(time.time(), abs=60)
    table = laptop.run("tokens", check=0).stdout
    assert "myapp/prod" in table and "deploy" in table


def test_a_ci_token_for_an_unknown_env_is_not_made(laptop):
    result = laptop.run("gen-ci-token", "--app", "myapp", "--env", "nowhere", check=1)

    assert "no env 'nowhere'" in result.stderr
