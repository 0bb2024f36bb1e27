"""The handlers of the JSON API; the paths are relative to /api/v1."""

import json
import secrets

from dotmage import __version__, crypto
from dotmage.names import app_name_problem, env_name_problem
from dotmage.server import audit, ratelimit, tokens
from dotmage.server.db import (
    SCHEMA_VERSION,
    Account,
    App,
    Device,
    Env,
    Revision,
    Setting,
    Token,
    database,
    now,
)
from dotmage.server.endpoints import endpoint, openapi_document
from dotmage.server.http import ApiError

APP = "/apps/<app:path>/-"
ENV = APP + "/envs/<env>"
MAX_TOKEN_TTL = 366 * 86400
LOGIN_TTL_MAX = 600
HISTORY_PAGE = 100
MAX_PAGE = 1000
KDF_FIELDS = ("time_cost", "memory_kib", "parallelism", "salt")


# -- health and description ------------------------------------------------


@endpoint("GET", "/health", "health", auth="none")
def health(call):
    """Liveness, whether the account exists yet, and the largest body taken."""
    return {
        "status": "ok",
        "account": Account.select().exists(),
        "version": __version__,
        "schema": SCHEMA_VERSION,
        "max_body": call.settings.max_body,
    }


@endpoint("GET", "/openapi.json", "openapi", auth="none")
def openapi(call):
    """This API, described in OpenAPI 3."""
    return openapi_document(__version__)


# -- account and devices ---------------------------------------------------


@endpoint(
    "POST",
    "/auth/prelogin",
    "auth.prelogin",
    auth="none",
    rate_limited=True,
    body={"bootstrap_secret": (str, True)},
)
def prelogin(call):
    """The account's KDF parameters, for a device that knows the bootstrap secret."""
    _check_bootstrap(call)
    account = Account.get_or_none()
    if account is None:
        raise ApiError(404, "no account yet", code="no_account")
    return {"kdf": json.loads(account.kdf)}


@endpoint(
    "POST",
    "/account",
    "auth.create_account",
    auth="none",
    rate_limited=True,
    body={
        "bootstrap_secret": (str, True),
        "kdf": (dict, True),
        "auth_key": (str, True),
        "sealed_account_key": (str, True),
        "device_name": (str, True),
    },
)
def create_account(call):
    """Create the one account (first device), and register that device."""
    _check_bootstrap(call)
    kdf = _kdf(call.body["kdf"])
    with database.atomic():
        if Account.select().exists():
            raise ApiError(409, "this server already has an account")
        Account.create(
            kdf=json.dumps(kdf),
            verifier=_verifier(call.body["auth_key"]),
            sealed_account_key=_sealed(call.body["sealed_account_key"]),
        )
        device = _new_device(call.body["device_name"])
        issued = tokens.issue_device_tokens(device, call.settings)
    audit.record(call, "auth.create_account")
    return 201, issued


@endpoint(
    "POST",
    "/devices",
    "auth.register",
    auth="none",
    rate_limited=True,
    body={
        "bootstrap_secret": (str, True),
        "auth_key": (str, True),
        "device_name": (str, True),
    },
)
def register_device(call):
    """Register a device with the bootstrap secret and the master password."""
    _check_bootstrap(call)
    account = _account()
    if not crypto.same(_verifier(call.body["auth_key"]), account.verifier):
        _auth_failed(call, "wrong master password")
    with database.atomic():
        device = _new_device(call.body["device_name"])
        issued = tokens.issue_device_tokens(device, call.settings)
    audit.record(call, "auth.register")
    return 201, {**issued, **_account_view(account)}


@endpoint(
    "POST",
    "/auth/refresh",
    "auth.refresh",
    auth="none",
    rate_limited=True,
    body={"refresh_token": (str, True)},
)
def refresh(call):
    """Rotate a device's tokens; a reused refresh token revokes the device."""
    try:
        token = tokens.check(call.body["refresh_token"], ("refresh",))
    except tokens.TokenRejected as error:
        _auth_failed(call, error.reason)
    with database.atomic():
        claimed = (
            Token.update(used_at=now())
            .where((Token.id == token.id) & Token.used_at.is_null())
            .execute()
        )
        retried = not claimed and tokens.claim_retry(token)
        if claimed or retried:
            issued = tokens.issue_device_tokens(token.device, call.settings, token)
            tokens.retire_access_tokens(token.device, issued["access_token"])
        else:
            tokens.revoke_device(token.device)
    call.actor_override = f"device:{token.device_id}"
    if not (claimed or retried):
        # Two parties held this refresh token: a thief and the device. Which
        # one is which is unknowable, so the device is revoked for both.
        audit.record(call, "auth.refresh_reuse", "device_revoked")
        _auth_failed(call, "refresh token reused: this device was revoked")
    audit.record(call, "auth.refresh_retry" if retried else "auth.refresh")
    return issued


@endpoint(
    "POST",
    "/auth/enroll",
    "auth.enroll",
    auth="none",
    rate_limited=True,
    body={
        "token_id": (str, True),
        "proof": (str, True),
        "device_name": (str, False),
        "kind": (str, False),
    },
)
def enroll(call):
    """Redeem an enrollment token or web login code with its proof.

    kind (enroll or login), when given, must match the token's kind; a
    mismatch is refused before the token is spent.
    """
    token_id = call.body["token_id"]
    token = None
    if tokens.is_token_id(token_id):
        token = Token.get_or_none(
            (Token.id == token_id) & Token.kind.in_(tokens.ONE_TIME_KINDS)
        )
    proof = _b64(call.body["proof"], "proof")
    if token is None or not tokens.check_secret(token, proof):
        _auth_failed(call, "unknown or wrong enrollment token")
    call.actor_override = f"{token.kind}:{token.id}"
    if token.revoked_at or token.used_at or token.expires_at <= now():
        _auth_failed(
            call, f"this {tokens.NOUNS[token.kind]} was used, revoked or expired"
        )
    _check_kind(call.body.get("kind"), token)
    with database.atomic():
        if not _claim_once(token):
            _auth_failed(call, "this enrollment token was already used")
        result = _redeem(call, token)
    audit.record(call, f"auth.{token.kind}")
    return 201, result


@endpoint("POST", "/auth/logout", "auth.logout")
def logout(call):
    """End this web session, or revoke this device's tokens."""
    principal = call.principal
    if principal.kind == "session":
        _revoke_token(principal.token.id)
        call.response_headers = {"Set-Cookie": _session_cookie(call, "", 0)}
    elif principal.device is not None:
        tokens.revoke_device(principal.device)
    audit.record(call, "auth.logout")
    return {"ok": True}


@endpoint("GET", "/account", "account.read")
def read_account(call):
    """The sealed account key and KDF parameters, to unlock this device."""
    return _account_view(_account())


@endpoint(
    "PUT",
    "/account/password",
    "account.passwd",
    body={
        "auth_key": (str, True),
        "new_auth_key": (str, True),
        "kdf": (dict, True),
        "sealed_account_key": (str, True),
    },
)
def change_password(call):
    """Re-wrap the account key under a new master password."""
    account = _account()
    if not crypto.same(_verifier(call.body["auth_key"]), account.verifier):
        raise ApiError(401, "wrong current master password")
    Account.update(
        kdf=json.dumps(_kdf(call.body["kdf"])),
        verifier=_verifier(call.body["new_auth_key"]),
        sealed_account_key=_sealed(call.body["sealed_account_key"]),
    ).where(Account.id == account.id).execute()
    audit.record(call, "account.passwd")
    return {"ok": True}


@endpoint("GET", "/devices", "devices.list")
def list_devices(call):
    """Every device of the account."""
    current = call.principal.device.id if call.principal.device else None
    return {
        "devices": [
            {
                "id": device.id,
                "name": device.name,
                "created_at": device.created_at,
                "last_seen_at": device.last_seen_at,
                "revoked_at": device.revoked_at,
                "current": device.id == current,
            }
            for device in Device.select().order_by(Device.created_at, Device.id)
        ]
    }


@endpoint("DELETE", "/devices/<device_id>", "devices.revoke")
def revoke_device(call, device_id):
    """Revoke a device at once: its tokens stop working on the next request."""
    device = Device.get_or_none(Device.id == device_id)
    if device is None:
        raise ApiError(404, f"no device '{device_id[:40]}'")
    tokens.revoke_device(device)
    audit.record(call, "devices.revoke")
    return {"revoked": device.id}


# -- apps, envs, revisions ---------------------------------------------------


@endpoint("GET", "/apps", "apps.list")
def list_apps(call):
    """Every app with its number of envs and its last change."""
    from peewee import JOIN, fn

    rows = (
        App.select(App.name, App.updated_at, fn.COUNT(Env.id).alias("env_count"))
        .join(Env, JOIN.LEFT_OUTER)
        .group_by(App.id, App.name, App.updated_at)
        .order_by(App.name)
        .tuples()  # no model objects: a third of the time at 10,000 apps
    )
    return {
        "apps": [
            {"name": name, "envs": envs, "updated_at": updated_at}
            for name, updated_at, envs in rows
        ]
    }


@endpoint("POST", "/apps", "apps.create", body={"name": (str, True)})
def create_app(call):
    """Create an app; its envs come next."""
    name = call.body["name"]
    _check_name(app_name_problem(name))
    with database.atomic():
        if App.select().where(App.name == name).exists():
            raise ApiError(409, f"app '{name}' already exists", code="exists")
        App.create(name=name)
    audit.record(call, "apps.create", app=name)
    return 201, {"name": name}


# Under APP, not /apps/<app:path>: that would also match every env path.
@endpoint("DELETE", APP, "apps.delete")
def delete_app(call, app):
    """Delete an app with all its envs and revisions."""
    row = _app(app)
    with database.atomic():
        envs = Env.select(Env.id).where(Env.app == row.id)
        Revision.delete().where(Revision.env.in_(envs)).execute()
        Env.delete().where(Env.app == row.id).execute()
        row.delete_instance()
    audit.record(call, "apps.delete", app=app)
    return {"deleted": app}


@endpoint("GET", APP + "/envs", "envs.list")
def list_envs(call, app):
    """The envs of an app."""
    row = _app(app)
    envs = Env.select().where(Env.app == row.id).order_by(Env.name)
    return {"app": app, "envs": [_env_view(row, env) for env in envs]}


@endpoint(
    "POST",
    APP + "/envs",
    "envs.create",
    body={"name": (str, True), "sealed_key": (str, True)},
)
def create_env(call, app):
    """Create an env with its sealed env key."""
    name = call.body["name"]
    _check_name(env_name_problem(name))
    row = _app(app)
    with database.atomic():
        if Env.select().where((Env.app == row.id) & (Env.name == name)).exists():
            raise ApiError(
                409, f"env '{name}' of '{app}' already exists", code="exists"
            )
        Env.create(app=row, name=name, sealed_key=_sealed(call.body["sealed_key"]))
        App.update(updated_at=now()).where(App.id == row.id).execute()
    audit.record(call, "envs.create", app=app, env=name)
    return 201, {"app": app, "name": name, "latest_revision": 0}


@endpoint("GET", ENV, "envs.read", auth="read")
def read_env(call, app, env):
    """An env: its sealed env key and latest revision number."""
    call.require_scope(app, env)
    row = _env(app, env)
    return {**_env_view(row.app, row), "sealed_key": row.sealed_key}


@endpoint("DELETE", ENV, "envs.delete")
def delete_env(call, app, env):
    """Delete an env and all its revisions."""
    row = _env(app, env)
    with database.atomic():
        Revision.delete().where(Revision.env == row.id).execute()
        row.delete_instance()
        App.update(updated_at=now()).where(App.id == row.app_id).execute()
    audit.record(call, "envs.delete", app=app, env=env)
    return {"deleted": env}


@endpoint(
    "GET",
    ENV + "/revisions",
    "history",
    query={"limit": int, "before": int},
)
def history(call, app, env):
    """Revisions newest first, without blobs; page with ?before=N."""
    row = _env(app, env)
    limit = _page_size(call, HISTORY_PAGE)
    query = Revision.select(
        Revision.number,
        Revision.kind,
        Revision.source_revision,
        Revision.device_name,
        Revision.created_at,
    ).where(Revision.env == row.id)
    if "before" in call.query:
        query = query.where(Revision.number < call.query["before"])
    rows = list(query.order_by(Revision.number.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "app": app,
        "env": env,
        "latest_revision": row.latest_revision,
        "revisions": [_revision_view(r) for r in rows],
        "next_before": rows[-1].number if more else None,
    }


@endpoint("GET", ENV + "/revisions/latest", "pull", auth="read")
def pull_latest(call, app, env):
    """The latest revision with its sealed blob."""
    call.require_scope(app, env)
    row = _env(app, env)
    if row.latest_revision == 0:
        raise ApiError(404, f"'{app}' env '{env}' has no revision yet")
    return _pull(call, row, row.latest_revision)


@endpoint("GET", ENV + "/revisions/<number:int>", "pull", auth="read")
def pull_number(call, app, env, number):
    """One revision with its sealed blob."""
    call.require_scope(app, env)
    return _pull(call, _env(app, env), number)


@endpoint(
    "POST",
    ENV + "/revisions",
    "push",
    body={
        "base_revision": (int, True),
        "blob": (str, True),
        "kind": (str, False),
        "source_revision": (int, False),
    },
)
def push(call, app, env):
    """A new revision; refused with 409 unless based on the latest one.

    kind "copy" marks the first revision of an env made by `env new
    --copy-from`, with the source env's revision number.
    """
    row = _env(app, env)
    base = call.body["base_revision"]
    blob = _sealed(call.body["blob"])
    kind, source = _push_kind(call.body, base)
    with database.atomic():
        if not _advance(row, base):
            raise ApiError(
                409,
                f"'{app}' env '{env}' has moved on to revision "
                f"{_latest(row)}; your push was based on {base}",
                latest_revision=_latest(row),
            )
        _add_revision(call, row, base + 1, blob, kind, source)
        # In the transaction: the 201 goes out only after the revision and
        # its audit entry are committed together (synchronous=FULL on SQLite).
        audit.record(call, "push", app=app, env=env)
    return 201, {"app": app, "env": env, "number": base + 1}


@endpoint(
    "POST",
    ENV + "/rollback",
    "rollback",
    body={"revision": (int, True)},
)
def rollback(call, app, env):
    """A new revision that copies an older revision's blob."""
    row = _env(app, env)
    source = _revision(row, call.body["revision"])
    with database.atomic():
        latest = _latest(row)
        if not _advance(row, latest):
            raise ApiError(409, "the env moved on during the rollback; try again")
        _add_revision(call, row, latest + 1, source.blob, "rollback", source.number)
        audit.record(call, "rollback", app=app, env=env)
    return 201, {
        "app": app,
        "env": env,
        "number": latest + 1,
        "source_revision": source.number,
    }


# -- tokens and audit ---------------------------------------------------------


@endpoint(
    "POST",
    "/tokens",
    "tokens.create",
    body={
        "kind": (str, True),
        "id": (str, True),
        "secret_hash": (str, True),
        "ttl": (int, True),
        "name": (str, False),
        "sealed_account_key": (str, False),
        "app": (str, False),
        "env": (str, False),
    },
)
def create_token(call):
    """Store an enrollment token, web login code or CI token made by a device."""
    body = call.body
    kind = body["kind"]
    fields = _token_fields(kind, body)
    _token_id(body["id"])
    _forget_dead_sealed_keys()
    if Token.select().where(Token.id == body["id"]).exists():
        raise ApiError(409, "a token with that id exists")
    Token.create(
        id=body["id"],
        kind=kind,
        secret_hash=_hex_hash(body["secret_hash"]),
        name=(body.get("name") or "")[:100] or None,
        created_by=call.principal.device.id if call.principal.device else None,
        expires_at=now() + body["ttl"],
        **fields,
    )
    audit.record(call, "tokens.create", app=fields.get("app_name"))
    return 201, {"id": body["id"], "kind": kind, "expires_at": now() + body["ttl"]}


@endpoint("GET", "/tokens", "tokens.list")
def list_tokens(call):
    """Enrollment tokens, login codes and CI tokens, with their state."""
    rows = (
        Token.select()
        .where(Token.kind.in_(("enroll", "login", "ci")))
        .order_by(Token.created_at.desc(), Token.id)
    )
    return {"tokens": [_token_view(t) for t in rows]}


@endpoint("DELETE", "/tokens/<token_id>", "tokens.revoke")
def revoke_token(call, token_id):
    """Revoke an enrollment token or CI token at once."""
    token = Token.get_or_none(
        (Token.id == token_id) & Token.kind.in_(("enroll", "login", "ci"))
    )
    if token is None:
        raise ApiError(404, f"no token '{token_id[:40]}'")
    _revoke_token(token.id)
    audit.record(call, "tokens.revoke", app=token.app_name)
    return {"revoked": token.id}


@endpoint("GET", "/audit", "audit.read", query={"app": str, "limit": int})
def read_audit(call):
    """The audit log, newest first."""
    limit = _page_size(call, 50)
    return {"entries": audit.entries(call.query.get("app"), limit)}


# -- helpers ------------------------------------------------------------------


def _check_bootstrap(call) -> None:
    stored = Setting.get_or_none(Setting.key == "bootstrap_hash")
    given = crypto.sha256_hex(call.body["bootstrap_secret"].encode())
    if stored is None or not crypto.same(given, stored.value):
        _auth_failed(call, "wrong bootstrap secret")


def _auth_failed(call, message: str):
    ratelimit.record_failure(call.address, call.settings)
    raise ApiError(401, message)


def _account() -> Account:
    account = Account.get_or_none()
    if account is None:
        raise ApiError(404, "no account yet: the first `dmage auth` creates it")
    return account


def _account_view(account: Account) -> dict:
    return {
        "kdf": json.loads(account.kdf),
        "sealed_account_key": account.sealed_account_key,
    }


def _new_device(name: str) -> Device:
    name = "".join(ch for ch in name if ch.isprintable())[:100] or "device"
    return Device.create(id=tokens.new_id(), name=name)


def _kdf(kdf: dict) -> dict:
    # The server keeps what it is given; the clients refuse a weak floor.
    clean = {}
    for key in KDF_FIELDS:
        value = kdf.get(key)
        kind = str if key == "salt" else int
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ApiError(400, f"kdf.{key} is missing or of the wrong type")
        clean[key] = value
    if not 1 <= clean["time_cost"] <= 100 or not 8 <= clean["memory_kib"] <= 4**12:
        raise ApiError(400, "kdf parameters out of range")
    if not 1 <= clean["parallelism"] <= 64:
        raise ApiError(400, "kdf parameters out of range")
    _b64(clean["salt"], "kdf.salt")
    return clean


def _verifier(auth_key: str) -> str:
    return crypto.sha256_hex(_b64(auth_key, "auth_key"))


def _b64(text: str, name: str) -> bytes:
    try:
        raw = crypto.b64decode(text)
    except ValueError:
        raise ApiError(400, f"'{name}' must be base64url") from None
    if not 16 <= len(raw) <= 64:
        raise ApiError(400, f"'{name}' has the wrong length")
    return raw


def _sealed(text: str) -> str:
    try:
        raw = crypto.b64decode(text)
    except ValueError:
        raise ApiError(400, "sealed values must be base64url") from None
    if len(raw) < 29 or raw[0] != crypto.SEAL_VERSION:
        raise ApiError(400, "not a sealed value (version 1)")
    return text


def _hex_hash(text: str) -> str:
    if len(text) != 64 or any(ch not in "0123456789abcdef" for ch in text):
        raise ApiError(400, "'secret_hash' must be a SHA-256 in lowercase hex")
    return text


def _token_id(text: str) -> None:
    if len(text) != 16 or any(ch not in "0123456789abcdef" for ch in text):
        raise ApiError(400, "'id' must be 16 lowercase hex characters")


def _token_fields(kind: str, body: dict) -> dict:
    if kind not in ("enroll", "login", "ci"):
        raise ApiError(400, "'kind' must be enroll, login or ci")
    limit = LOGIN_TTL_MAX if kind == "login" else MAX_TOKEN_TTL
    if not 1 <= body["ttl"] <= limit:
        raise ApiError(400, f"'ttl' must be between 1 and {limit} seconds")
    if kind == "ci":
        _env(body.get("app") or "", body.get("env") or "")
        return {"app_name": body["app"], "env_name": body["env"]}
    if not body.get("sealed_account_key"):
        raise ApiError(400, "'sealed_account_key' is required")
    return {"sealed_account_key": _sealed(body["sealed_account_key"])}


def _token_view(token: Token) -> dict:
    stamp = now()
    if token.revoked_at:
        state = "revoked"
    elif token.used_at:
        state = "used"
    elif token.expires_at <= stamp:
        state = "expired"
    else:
        state = "active"
    return {
        "id": token.id,
        "kind": token.kind,
        "name": token.name,
        "app": token.app_name,
        "env": token.env_name,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at or token.used_at,
        "state": state,
    }


def _revoke_token(token_id: str) -> None:
    Token.update(revoked_at=now(), sealed_account_key=None).where(
        (Token.id == token_id) & Token.revoked_at.is_null()
    ).execute()


def _claim_once(token: Token) -> bool:
    # The sealed account key goes with the use (the caller holds its copy):
    # a token secret that leaks later opens nothing in a stolen database.
    claimed = (
        Token.update(used_at=now(), last_used_at=now(), sealed_account_key=None)
        .where((Token.id == token.id) & Token.used_at.is_null())
        .execute()
    )
    return claimed == 1


def _forget_dead_sealed_keys() -> None:
    """Expired and revoked one-time tokens keep no sealed account key."""
    dead = (Token.expires_at <= now()) | Token.revoked_at.is_null(False)
    Token.update(sealed_account_key=None).where(
        dead & Token.sealed_account_key.is_null(False)
    ).execute()


def _redeem(call, token: Token) -> dict:
    account = _account()
    if token.kind == "enroll":
        device = _new_device(call.body.get("device_name") or token.name or "device")
        issued = tokens.issue_device_tokens(device, call.settings)
        return {**issued, "kdf": json.loads(account.kdf), **_sealed_by(token)}

    ttl = call.settings.token_ttl
    session = tokens.mint("session", ttl, name="web admin", created_by=token.id)
    call.response_headers = {"Set-Cookie": _session_cookie(call, session, ttl)}
    return {"session": True, "expires_in": ttl, **_sealed_by(token)}


def _session_cookie(call, value: str, max_age: int) -> str:
    # HttpOnly: page scripts never see it. SameSite=Strict: no cross-site
    # request carries it. Secure when the browser came over HTTPS (directly,
    # or through a proxy in DOTMAGE_TRUSTED_PROXIES).
    secure = "; Secure" if call.scheme == "https" else ""
    return (
        f"{tokens.SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; "
        f"SameSite=Strict{secure}"
    )


def _check_kind(wanted: str | None, token: Token) -> None:
    if wanted is None or wanted == token.kind:
        return
    if wanted not in tokens.ONE_TIME_KINDS:
        raise ApiError(400, "'kind' must be enroll or login")
    raise ApiError(
        400,
        "that is a web admin login code: paste it in the web admin, or make a "
        "device token with dmage gen-token"
        if token.kind == "login"
        else "that is a device enrollment token: use dmage auth --enroll",
        code="wrong_token_kind",
    )


def _sealed_by(token: Token) -> dict:
    return {"sealed_account_key": token.sealed_account_key, "token_id": token.id}


def _page_size(call, default: int) -> int:
    """?limit=N, from 1 to MAX_PAGE; anything else is a 400, not a quiet clamp."""
    limit = call.query.get("limit", default)
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, f"'limit' must be between 1 and {MAX_PAGE}")
    return limit


def _check_name(problem: str | None) -> None:
    if problem:
        raise ApiError(400, problem)


def _app(name: str) -> App:
    _check_name(app_name_problem(name))
    app = App.get_or_none(App.name == name)
    if app is None:
        raise ApiError(404, f"no app '{name}': create it with dmage init {name}")
    return app


def _env(app: str, env: str) -> Env:
    _check_name(env_name_problem(env))
    row = (
        Env.select(Env, App)
        .join(App)
        .where((App.name == app) & (Env.name == env))
        .get_or_none()
    )
    if row is None:
        _app(app)
        raise ApiError(404, f"app '{app}' has no env '{env}'")
    return row


def _env_view(app: App, env: Env) -> dict:
    return {
        "app": app.name,
        "name": env.name,
        "latest_revision": env.latest_revision,
        "updated_at": env.updated_at,
    }


def _latest(row: Env) -> int:
    return Env.select(Env.latest_revision).where(Env.id == row.id).scalar()


def _advance(row: Env, base: int) -> bool:
    """Move the env from revision base to base + 1, or fail if it moved on."""
    changed = (
        Env.update(latest_revision=Env.latest_revision + 1, updated_at=now())
        .where((Env.id == row.id) & (Env.latest_revision == base))
        .execute()
    )
    return changed == 1


def _add_revision(call, row, number, blob, kind, source=None) -> None:
    device = call.principal.device
    Revision.create(
        env=row.id,
        number=number,
        blob=blob,
        kind=kind,
        source_revision=source,
        device_id=device.id if device else None,
        device_name=device.name if device else "web admin",
    )
    App.update(updated_at=now()).where(App.id == row.app_id).execute()


def _push_kind(body: dict, base: int) -> tuple[str, int | None]:
    kind = body.get("kind") or "push"
    if kind not in ("push", "copy"):
        raise ApiError(400, "'kind' must be push or copy")
    if kind == "copy" and base != 0:
        raise ApiError(400, "a copy can only be an env's first revision")
    source = body.get("source_revision") if kind == "copy" else None
    return kind, source


def _revision(row: Env, number: int) -> Revision:
    revision = Revision.get_or_none(
        (Revision.env == row.id) & (Revision.number == number)
    )
    if revision is None:
        raise ApiError(
            404, f"'{row.app.name}' env '{row.name}' has no revision {number}"
        )
    return revision


def _pull(call, row: Env, number: int) -> dict:
    revision = _revision(row, number)
    audit.record(call, "pull", app=row.app.name, env=row.name)
    pulled = {
        **_revision_view(revision),
        "app": row.app.name,
        "env": row.name,
        "latest_revision": row.latest_revision,
        "blob": revision.blob,
    }
    # The env's sealed key rides along, so that pull and exec need one round
    # trip. A CI token carries its env key already and gets no more than that.
    if call.principal.kind != "ci":
        pulled["sealed_key"] = row.sealed_key
    return pulled


def _revision_view(revision: Revision) -> dict:
    return {
        "number": revision.number,
        "kind": revision.kind,
        "source_revision": revision.source_revision,
        "device": revision.device_name,
        "created_at": revision.created_at,
    }


def new_bootstrap_secret() -> str:
    return "dmage_boot_" + secrets.token_urlsafe(24)
