"""Signing a device in and out: account creation, registration, enrollment."""

import contextlib
import os
import secrets

from dotmage import crypto, errors
from dotmage.client import keycache, session, state
from dotmage.client.http import Http
from dotmage.client.session import Session

ENROLL_PREFIX = "dmage_etok_"


def sign_in(server: str, prompter, ttl: int, name: str | None = None) -> dict:
    """First device creates the account; later ones register with the password."""
    server = session.check_server(server)
    http = Http(server)
    if http.get("/health").get("account"):
        prompter.note("\n  New device: register with the bootstrap secret\n")
    else:
        prompter.note("\n  First device: create the account on this server\n")
    bootstrap = prompter.secret("Bootstrap secret", "DOTMAGE_BOOTSTRAP_SECRET")
    try:
        kdf = _unauthenticated(http.post, "/auth/prelogin", bootstrap_secret=bootstrap)
    except errors.NotFound:
        return _create_account(http, bootstrap, prompter, ttl, name)
    return _register(http, bootstrap, kdf["kdf"], prompter, ttl, name)


def _create_account(http: Http, bootstrap: str, prompter, ttl: int, name) -> dict:
    password = prompter.new_secret("New master password", "DOTMAGE_MASTER_PASSWORD")
    kdf = session.new_kdf()
    kek, auth_key = prompter.wait("Deriving keys", session.derive, password, kdf)
    account_key = crypto.new_key()
    issued = _unauthenticated(
        http.post,
        "/account",
        bootstrap_secret=bootstrap,
        kdf=kdf,
        auth_key=crypto.b64encode(auth_key),
        sealed_account_key=crypto.seal(kek, account_key, crypto.aad_account_key()),
        device_name=session.device_name(name),
    )
    return _finish(http.server, issued, account_key, ttl, created=True)


def _register(http: Http, bootstrap: str, kdf: dict, prompter, ttl: int, name):
    session.kdf_params(kdf)  # refuse a downgraded KDF before typing a password
    password = prompter.secret("Master password", "DOTMAGE_MASTER_PASSWORD")
    kek, auth_key = prompter.wait("Deriving keys", session.derive, password, kdf)
    issued = _unauthenticated(
        http.post,
        "/devices",
        bootstrap_secret=bootstrap,
        auth_key=crypto.b64encode(auth_key),
        device_name=session.device_name(name),
    )
    try:
        account_key = crypto.unseal(
            kek, issued["sealed_account_key"], crypto.aad_account_key()
        )
    except crypto.DecryptError:
        raise errors.TamperedData(
            "the server's account key does not open with your password"
        ) from None
    return _finish(http.server, issued, account_key, ttl, created=False)


def enroll(server: str, token: str, ttl: int, name: str | None = None) -> dict:
    """Join with an enrollment token from `dmage gen-token`: no password.

    Unnamed (no --name, no DOTMAGE_DEVICE_NAME), the device takes the
    token's name, which says what it was made for (gen-token --name).
    """
    server = session.check_server(server)
    token_id, secret = parse_enrollment_token(token)
    unseal_key, proof = crypto.enrollment_keys(secret)
    named = name or os.environ.get("DOTMAGE_DEVICE_NAME")
    issued = _unauthenticated(
        Http(server).post,
        "/auth/enroll",
        token_id=token_id,
        proof=crypto.b64encode(proof),
        # A web login code pasted here is refused without being spent.
        kind="enroll",
        **({"device_name": named} if named else {}),
    )
    if "device_id" not in issued:
        raise errors.DmageError("that is a web admin login code, not a device token")
    try:
        account_key = crypto.unseal(
            unseal_key, issued["sealed_account_key"], crypto.aad_enroll(token_id)
        )
    except crypto.DecryptError:
        raise errors.TamperedData(
            "the account key sent for this token does not open with it"
        ) from None
    return _finish(server, issued, account_key, ttl, created=False)


NEXT_STEPS = {
    "wrong bootstrap secret": "use the one the server printed at its first start "
    "(or its DOTMAGE_BOOTSTRAP_SECRET), then run dmage auth again",
    "wrong master password": "check it and run dmage auth again",
}


def _unauthenticated(method, path: str, **body) -> dict:
    # On these endpoints a 401 means a wrong secret, not a missing sign-in.
    try:
        return method(path, body)
    except errors.NotAuthenticated as error:
        message = str(error)
        hint = NEXT_STEPS.get(message)
        raise errors.DmageError(f"{message}: {hint}" if hint else message) from None


def _finish(server, issued, account_key, ttl, created) -> dict:
    current = Session()
    replaced = _retire_previous(current, server)
    if current.config.get("server") not in (None, server):
        state.remove(state.SYNC)
    # Credentials first: a token just received is never lost to a keychain error.
    current.save_config(server=server, device_id=issued["device_id"])
    current.save_credentials(issued)
    store = current.cache_key(account_key, ttl)
    return {
        "server": server,
        "device_id": issued["device_id"],
        "created_account": created,
        "replaced_device_id": replaced,
        "key_store": store,
        "key_store_description": keycache.describe(store),
        "ttl": ttl,
    }


def _retire_previous(current: Session, server: str) -> str | None:
    """Signing in again replaces this machine's old device on that server.

    Its tokens are about to be overwritten, so nobody could use or revoke it
    from here later: the server is told now (best effort, it may be revoked
    already). The old device on another server is left alone: that server
    may be gone, and waiting for it would stall this sign-in.
    """
    old_device = current.config.get("device_id")
    if not old_device:
        return None
    current.forget_key()
    if current.config.get("server") != server:
        return None
    with contextlib.suppress(errors.DmageError):
        current.call("POST", "/auth/logout", {})
    return old_device


def lock() -> bool:
    """Forget the cached account key; returns whether one was cached."""
    current = Session()
    had_key = current.cached_account_key() is not None
    current.forget_key()
    return had_key


def logout() -> dict:
    """Revoke this device on the server, then remove all local state."""
    current = Session()
    revoked = False
    if current.config.get("server") and state.read_json(state.CREDENTIALS):
        try:
            current.call("POST", "/auth/logout", {})
            revoked = True
        except errors.DmageError as error:
            reason = str(error)
        else:
            reason = None
    else:
        reason = "not signed in"
    current.forget_key()
    folder = state.wipe()
    return {"revoked_on_server": revoked, "reason": reason, "removed": str(folder)}


def clean() -> dict:
    """Wipe every local trace, reaching no server, even from damaged state."""
    # An unreadable config.json must not stop it: the key file goes with the
    # folder either way.
    with contextlib.suppress(errors.DmageError):
        Session().forget_key()
    return {"removed": str(state.wipe())}


def change_password(prompter) -> None:
    """Re-wrap the account key under a new password; nothing else changes."""
    current = Session()
    account = current.call("GET", "/account")
    old = prompter.secret("Current master password", "DOTMAGE_MASTER_PASSWORD")
    kek, auth_key = prompter.wait("Deriving keys", session.derive, old, account["kdf"])
    try:
        account_key = crypto.unseal(
            kek, account["sealed_account_key"], crypto.aad_account_key()
        )
    except crypto.DecryptError:
        raise errors.DmageError("wrong current master password") from None

    new = prompter.new_secret("New master password", "DOTMAGE_NEW_MASTER_PASSWORD")
    kdf = session.new_kdf()
    new_kek, new_auth = prompter.wait("Deriving keys", session.derive, new, kdf)
    current.call(
        "PUT",
        "/account/password",
        {
            "auth_key": crypto.b64encode(auth_key),
            "new_auth_key": crypto.b64encode(new_auth),
            "kdf": kdf,
            "sealed_account_key": crypto.seal(
                new_kek, account_key, crypto.aad_account_key()
            ),
        },
    )


def make_enrollment_token(kind: str, ttl: int, name: str | None, prompter) -> dict:
    """Seal the account key under a fresh secret; the server gets a proof hash."""
    current = Session()
    account_key = current.account_key(prompter.password_reader())
    token_id, secret = secrets.token_hex(8), crypto.random_bytes(32)
    seal_key, proof = crypto.enrollment_keys(secret)
    created = current.call(
        "POST",
        "/tokens",
        {
            "kind": kind,
            "id": token_id,
            "secret_hash": crypto.sha256_hex(proof),
            "ttl": ttl,
            "name": name,
            "sealed_account_key": crypto.seal(
                seal_key, account_key, crypto.aad_enroll(token_id)
            ),
        },
    )
    token = f"{ENROLL_PREFIX}{token_id}_{crypto.b64encode(secret)}"
    return {**created, "token": token}


def parse_enrollment_token(token: str) -> tuple[str, bytes]:
    body = (token or "").strip()
    if not body.startswith(ENROLL_PREFIX):
        raise errors.DmageError(f"an enrollment token starts with {ENROLL_PREFIX}")
    token_id, _, secret = body[len(ENROLL_PREFIX) :].partition("_")
    try:
        raw = crypto.b64decode(secret)
    except ValueError:
        raw = b""
    if len(token_id) != 16 or len(raw) != 32:
        raise errors.DmageError("that enrollment token is damaged or incomplete")
    return token_id, raw
