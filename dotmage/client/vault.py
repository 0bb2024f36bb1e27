"""Apps, envs and revisions: everything sealed and opened on this device."""

import json
import os
import secrets
from dataclasses import dataclass

from dotmage import crypto, errors
from dotmage.client import state
from dotmage.client.http import Http
from dotmage.client.session import Session

CI_PREFIX = "dmage_ci_"
CI_VARIABLE = "DOTMAGE_CI_TOKEN"
REVISION_FORMAT = "dotenv"


@dataclass
class Revision:
    """A decrypted revision: the file's bytes exactly as they were pushed."""

    app: str
    env: str
    number: int
    latest: int
    data: bytes


def app_path(app: str) -> str:
    return f"/apps/{app}/-"


def env_path(app: str, env: str) -> str:
    return f"{app_path(app)}/envs/{env}"


# -- sealing ---------------------------------------------------------------------


def seal_revision(env_key: bytes, app: str, env: str, data: bytes) -> str:
    document = {"format": REVISION_FORMAT, "text": data.decode("utf-8")}
    plaintext = json.dumps(document, ensure_ascii=False).encode("utf-8")
    return crypto.seal(env_key, plaintext, crypto.aad_revision(app, env))


def open_revision(env_key: bytes, app: str, env: str, blob: str) -> bytes:
    try:
        plaintext = crypto.unseal(env_key, blob, crypto.aad_revision(app, env))
    except crypto.DecryptError:
        raise errors.TamperedData(
            f"the revision the server sent for {app} env {env} fails authentication "
            "(tampered, or it belongs to another app or env): refusing it"
        ) from None
    return _revision_text(plaintext, app, env).encode("utf-8")


def _revision_text(plaintext: bytes, app: str, env: str) -> str:
    """The .env text inside an authentic revision document."""
    try:
        document = json.loads(plaintext)
        form, text = document["format"], document["text"]
    except (ValueError, KeyError, TypeError):
        form, text = None, None
    if form != REVISION_FORMAT or not isinstance(text, str):
        # Authentic but unreadable: written by a newer or broken client.
        raise errors.DmageError(
            f"a revision of {app} env {env} is not a {REVISION_FORMAT} document "
            "this dmage can read: upgrade dmage"
        )
    return text


def open_env_key(account_key: bytes, app: str, env: str, sealed: str) -> bytes:
    try:
        return crypto.unseal(account_key, sealed, crypto.aad_env_key(app, env))
    except crypto.DecryptError:
        raise errors.TamperedData(
            f"the env key the server sent for {app} env {env} fails authentication "
            "(tampered, or another env's key): refusing it"
        ) from None


# -- a signed-in device ---------------------------------------------------------


class Vault:
    """The operations of a signed-in device on one server."""

    def __init__(self, current: Session, ask_password):
        self.session = current
        self.ask_password = ask_password

    def account_key(self) -> bytes:
        return self.session.account_key(self.ask_password)

    def env_key(self, app: str, env: str) -> tuple[bytes, dict]:
        info = self.session.call("GET", env_path(app, env))
        return open_env_key(self.account_key(), app, env, info["sealed_key"]), info

    def apps(self) -> list[dict]:
        return self.session.call("GET", "/apps")["apps"]

    def envs(self, app: str) -> list[dict]:
        return self.session.call("GET", f"{app_path(app)}/envs")["envs"]

    def create_app(self, app: str, env: str, data: bytes) -> int:
        account_key = self.account_key()
        try:
            self.session.call("POST", "/apps", {"name": app})
        except errors.Conflict:
            raise errors.Conflict(
                f"app '{app}' already exists: use dmage push {app}"
            ) from None
        env_key = self.create_env(app, env, account_key)
        return self._push(app, env, env_key, 0, data)

    def create_env(self, app: str, env: str, account_key=None) -> bytes:
        account_key = account_key or self.account_key()
        env_key = crypto.new_key()
        sealed = crypto.seal(account_key, env_key, crypto.aad_env_key(app, env))
        try:
            self.session.call(
                "POST", f"{app_path(app)}/envs", {"name": env, "sealed_key": sealed}
            )
        except errors.Conflict:
            raise errors.Conflict(f"app '{app}' already has an env '{env}'") from None
        return env_key

    def copy_env(self, app: str, source: str, target: str) -> int:
        """A new env with the source's latest text, under the new env's own key."""
        revision = self.pull(app, source, keep_local=True)
        env_key = self.create_env(app, target)
        return self._push(
            app, target, env_key, 0, revision.data, record=False, copy_of=revision
        )

    def delete_env(self, app: str, env: str) -> None:
        self.session.call("DELETE", env_path(app, env))
        state.forget_sync(self.session.server, app, env)

    def push(self, app, env, data: bytes, base=None, keep_local=False) -> int:
        """keep_local: an edit made without the local file (set, unset)."""
        env_key, info = self.env_key(app, env)
        if base is None:
            entry = state.sync_entry(self.session.server, app, env)
            base = entry.get("local", info["latest_revision"])
        return self._push(app, env, env_key, base, data, keep_local=keep_local)

    def _push(
        self, app, env, env_key, base, data, record=True, keep_local=False, copy_of=None
    ):
        body = {"base_revision": base, "blob": seal_revision(env_key, app, env, data)}
        if copy_of is not None:  # history shows it as a copy of that revision
            body.update(kind="copy", source_revision=copy_of.number)
        try:
            pushed = self.session.call("POST", f"{env_path(app, env)}/revisions", body)
        except errors.Conflict as error:
            raise errors.Conflict(
                f"{error}: pull first (dmage pull {app} --env {env}), merge your "
                "change, and push again"
            ) from None
        number = pushed["number"]
        if record:
            local = self._local(app, env) if keep_local else number
            state.record_sync(self.session.server, app, env, local, number)
        return number

    def pull(self, app, env, number=None, keep_local=False) -> Revision:
        """keep_local: the caller writes no local file (get, diff, exec)."""
        env_key, info = self.env_key(app, env)
        revision = fetch_revision(self.session.call, app, env, env_key, number)
        check_not_rolled_back(self.session.server, revision)
        if number is None:
            local = self._local(app, env) if keep_local else revision.number
            state.record_sync(self.session.server, app, env, local, revision.latest)
        return revision

    def _local(self, app: str, env: str) -> int:
        # The revision the local file is based on stays the base of the next
        # push, so a file that lacks a later set or unset is refused as stale
        # instead of silently undoing it.
        return state.sync_entry(self.session.server, app, env).get("local", 0)

    def history(self, app: str, env: str, limit: int, before=None) -> dict:
        return self.session.call(
            "GET", f"{env_path(app, env)}/revisions", limit=limit, before=before
        )

    def rollback(self, app: str, env: str, number: int) -> dict:
        result = self.session.call(
            "POST", f"{env_path(app, env)}/rollback", {"revision": number}
        )
        # The local file is still the pre-rollback one: a push of it must be
        # refused as stale, not silently undo the rollback.
        local = self._local(app, env)
        state.record_sync(self.session.server, app, env, local, result["number"])
        return result


def fetch_revision(call, app: str, env: str, env_key: bytes, number) -> Revision:
    which = "latest" if number is None else str(number)
    reply = call("GET", f"{env_path(app, env)}/revisions/{which}")
    wanted = reply.get("latest_revision") if number is None else number
    if reply.get("number") != wanted:
        raise errors.TamperedData(
            f"asked for revision {which} of {app} env {env} ({wanted}), the server "
            f"sent {reply.get('number')}: refusing it"
        )
    data = open_revision(env_key, app, env, reply["blob"])
    return Revision(app, env, reply["number"], reply["latest_revision"], data)


def check_not_rolled_back(server: str, revision: Revision) -> None:
    """A server that forgets revisions this device saw is refused."""
    seen = state.sync_entry(server, revision.app, revision.env).get("seen", 0)
    if revision.latest < seen:
        raise errors.TamperedData(
            f"the server says {revision.app} env {revision.env} is at revision "
            f"{revision.latest}, but this device already saw revision {seen}: the "
            "server lost data or was rolled back. If you restored it from a backup "
            f"on purpose, run dmage status --forget {revision.app}"
        )


# -- CI tokens -------------------------------------------------------------------


@dataclass
class CiToken:
    server: str
    token_id: str
    secret: str
    app: str
    env: str
    env_key: bytes

    @property
    def bearer(self) -> str:
        return f"dci_{self.token_id}.{self.secret}"


def ci_token_from_environment() -> CiToken | None:
    text = os.environ.get(CI_VARIABLE)
    return parse_ci_token(text) if text else None


def parse_ci_token(text: str) -> CiToken:
    body = text.strip()
    if not body.startswith(CI_PREFIX):
        raise errors.DmageError(f"{CI_VARIABLE} must start with {CI_PREFIX}")
    try:
        fields = json.loads(crypto.b64decode(body[len(CI_PREFIX) :]))
        token = CiToken(
            fields["s"],
            fields["i"],
            fields["k"],
            fields["a"],
            fields["e"],
            crypto.b64decode(fields["ek"]),
        )
    except (ValueError, KeyError, TypeError):
        raise errors.DmageError(f"{CI_VARIABLE} is damaged or incomplete") from None
    return token


def make_ci_token(vault: Vault, app: str, env: str, ttl: int, name) -> dict:
    env_key, _ = vault.env_key(app, env)
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    created = vault.session.call(
        "POST",
        "/tokens",
        {
            "kind": "ci",
            "id": token_id,
            "secret_hash": crypto.sha256_hex(secret.encode()),
            "ttl": ttl,
            "name": name or f"ci {app}/{env}",
            "app": app,
            "env": env,
        },
    )
    fields = {
        "v": 1,
        "s": vault.session.server,
        "i": token_id,
        "k": secret,
        "a": app,
        "e": env,
        "ek": crypto.b64encode(env_key),
    }
    encoded = crypto.b64encode(json.dumps(fields, separators=(",", ":")).encode())
    return {**created, "token": CI_PREFIX + encoded}


def ci_pull(token: CiToken, app: str, env: str, number=None) -> Revision:
    """Pull with a CI token alone: no device state, no account key."""
    if (app, env) != (token.app, token.env):
        raise errors.Forbidden(
            f"{CI_VARIABLE} can only read {token.app} env {token.env}, "
            f"not {app} env {env}"
        )
    http = Http(token.server, token.bearer)
    try:
        return fetch_revision(http_call(http), app, env, token.env_key, number)
    except errors.NotAuthenticated as error:
        # No `dmage auth` can fix this: the pipeline needs a new token.
        raise errors.NotAuthenticated(
            f"the server refused {CI_VARIABLE} ({error}): make a new one with "
            f"dmage gen-ci-token --app {app} --env {env}"
        ) from None


def http_call(http: Http):
    def call(method, path, body=None, **query):
        return http.request(method, path, body=body, query=query)

    return call
