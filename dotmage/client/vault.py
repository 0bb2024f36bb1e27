"""Apps, envs and revisions: everything sealed and opened on this device."""

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from dotmage import crypto, errors
from dotmage.client import state
from dotmage.client.http import Http
from dotmage.client.session import Session

CI_PREFIX = "dmage_ci_"
CI_VARIABLE = "DOTMAGE_CI_TOKEN"
REVISION_FORMAT = "dotenv"
DEFAULT_MAX_BODY = 1048576  # the server's default, for one that does not say


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


@dataclass
class LocalFile:
    """A .env file as read for a push: its bytes on disk (hashed into the sync
    state) and the UTF-8 bytes that are stored."""

    name: str
    path: Path
    raw: bytes
    data: bytes

    @property
    def digest(self) -> str:
        return state.digest(self.raw)


class Vault:
    """The operations of a signed-in device on one server."""

    def __init__(self, current: Session, ask_password):
        self.session = current
        self.ask_password = ask_password
        self._max_body = None

    def account_key(self) -> bytes:
        return self.session.account_key(self.ask_password)

    def call(self, method: str, path: str, body=None, **query) -> dict:
        try:
            return self.session.call(method, path, body, **query)
        except errors.NotFound as error:
            app = path.split("/-/")[0].removeprefix("/apps/")
            if "has no env" not in str(error):
                raise
            raise errors.NotFound(f"{error} (dmage env list {app})") from None

    def env_key(self, app: str, env: str) -> tuple[bytes, dict]:
        info = self.call("GET", env_path(app, env))
        return open_env_key(self.account_key(), app, env, info["sealed_key"]), info

    def apps(self) -> list[dict]:
        return self.call("GET", "/apps")["apps"]

    def envs(self, app: str) -> list[dict]:
        return self.call("GET", f"{app_path(app)}/envs")["envs"]

    # -- revisions in --------------------------------------------------------------

    def create_app(self, app: str, env: str, local: LocalFile) -> int:
        """A new app and env holding the file as revision 1.

        Everything that can fail here fails before the server has anything,
        so a refused init can simply be run again.
        """
        state.check_writable()
        account_key = self.account_key()
        env_key = crypto.new_key()
        body = self.revision_body(app, env, env_key, 0, local.data, local.name)
        try:
            self.call("POST", "/apps", {"name": app})
        except errors.Conflict:
            raise errors.Conflict(
                f"app '{app}' already exists: use dmage push {app}"
            ) from None
        self.create_env(app, env, account_key, env_key)
        number = self._send(app, env, body)
        self._remember(app, env, local, number)
        return number

    def create_env(self, app: str, env: str, account_key=None, env_key=None) -> bytes:
        account_key = account_key or self.account_key()
        env_key = env_key or crypto.new_key()
        sealed = crypto.seal(account_key, env_key, crypto.aad_env_key(app, env))
        try:
            self.call(
                "POST", f"{app_path(app)}/envs", {"name": env, "sealed_key": sealed}
            )
        except errors.Conflict:
            raise errors.Conflict(f"app '{app}' already has an env '{env}'") from None
        return env_key

    def copy_env(self, app: str, source: str, target: str) -> int:
        """A new env with the source's latest text, under the new env's own key."""
        state.check_writable()
        revision = self.pull(app, source)
        env_key = crypto.new_key()
        body = self.revision_body(
            app, target, env_key, 0, revision.data, f"{app} ({source})"
        )
        # History shows it as a copy of that revision.
        body.update(kind="copy", source_revision=revision.number)
        self.create_env(app, target, env_key=env_key)
        return self._send(app, target, body)

    def delete_env(self, app: str, env: str) -> None:
        state.check_writable()
        self.call("DELETE", env_path(app, env))
        state.forget_sync(self.session.server, app, env)

    def push_file(self, app: str, env: str, local: LocalFile, force=False) -> tuple:
        """(revision, pushed): the file as a new revision, based on the revision
        this file was pulled from or pushed as; (latest, False) when the file
        already is the latest revision.

        A file with no such record may only start an env's history, or
        replace it with --force: pushing it blindly could undo revisions it
        never saw.
        """
        state.check_writable()
        env_key, info = self.env_key(app, env)
        latest = info["latest_revision"]
        record = state.file_record(self.session.server, app, env, local.path)
        known = record["revision"] if record else None
        if known == latest and record["sha256"] == local.digest:
            return latest, False
        if latest and known != latest and self._latest_equals(app, env, local):
            self._remember(app, env, local, latest)
            return latest, False

        base = latest if force or latest == 0 else known
        if base is None:
            raise errors.Conflict(
                f"{local.name} was never pulled from or pushed to {app} ({env}), "
                f"which is at revision {latest}: pull it first (dmage pull {app} "
                f"--env {env} --output {local.name}), or push with --force to "
                f"replace revision {latest}"
            )
        if base < latest:
            raise self._stale(app, env, local, base, latest)
        body = self.revision_body(app, env, env_key, base, local.data, local.name)
        number = self._send(app, env, body, local)
        self._remember(app, env, local, number)
        return number, True

    def push_edit(self, app: str, env: str, data: bytes, base: int) -> int:
        """An edit made without a local file (set, unset): no file's record
        moves, so a file that lacks this edit is refused as stale later."""
        state.check_writable()
        env_key, _ = self.env_key(app, env)
        body = self.revision_body(app, env, env_key, base, data, f"{app} ({env})")
        number = self._send(app, env, body)
        state.best_effort(state.record_seen, self.session.server, app, env, number)
        return number

    def revision_body(self, app, env, env_key, base, data, source: str) -> dict:
        """The push request, refused here when the server would refuse its
        size (413) anyway."""
        body = {"base_revision": base, "blob": seal_revision(env_key, app, env, data)}
        size, limit = len(json.dumps(body).encode()), self.max_body()
        if size > limit:
            raise errors.DmageError(
                f"{source} is too large: {size} bytes sealed, this server takes at "
                f"most {limit} (DOTMAGE_MAX_BODY)"
            )
        return body

    def max_body(self) -> int:
        if self._max_body is None:
            health = Http(self.session.server).get("/health")
            limit = health.get("max_body")
            valid = isinstance(limit, int) and not isinstance(limit, bool)
            self._max_body = limit if valid and limit > 0 else DEFAULT_MAX_BODY
        return self._max_body

    def _send(self, app, env, body, local=None) -> int:
        try:
            pushed = self.call("POST", f"{env_path(app, env)}/revisions", body)
        except errors.Conflict as error:
            what = local.name if local else "your change"
            raise errors.Conflict(
                f"{error}: pull first (dmage pull {app} --env {env}), merge "
                f"{what}, and push again"
            ) from None
        return pushed["number"]

    def _latest_equals(self, app: str, env: str, local: LocalFile) -> bool:
        return self.pull(app, env).data == local.data

    def _stale(self, app, env, local, base, latest) -> errors.Conflict:
        return errors.Conflict(
            f"{app} ({env}) has moved on to revision {latest}; {local.name} holds "
            f"revision {base}: pull first (dmage pull {app} --env {env} --output "
            f"{local.name}, --force once your change is saved elsewhere), merge "
            f"your change, and push again; or push with --force to replace "
            f"revision {latest}"
        )

    def _remember(self, app: str, env: str, local: LocalFile, number: int) -> None:
        # The revision is on the server already: failing to record it must
        # not make it look as if the push failed.
        state.best_effort(
            state.record_file,
            self.session.server,
            app,
            env,
            local.path,
            number,
            local.digest,
        )

    # -- revisions out -------------------------------------------------------------

    def pull(self, app, env, number=None) -> Revision:
        """A revision, opened; no local file's record moves (see remember_pull)."""
        revision = fetch_revision(self.call, app, env, self._key_for(app, env), number)
        check_not_rolled_back(self.session.server, revision)
        state.best_effort(
            state.record_seen, self.session.server, app, env, revision.latest
        )
        return revision

    def _key_for(self, app: str, env: str):
        """How to find the env key for a pulled revision's answer."""

        def env_key(reply: dict) -> bytes:
            if "sealed_key" not in reply:  # a server from before it sent one
                return self.env_key(app, env)[0]
            return open_env_key(self.account_key(), app, env, reply["sealed_key"])

        return env_key

    def remember_pull(self, revision: Revision, path: Path, written: bytes) -> None:
        """The file at path now holds this revision, as these bytes."""
        state.best_effort(
            state.record_file,
            self.session.server,
            revision.app,
            revision.env,
            path,
            revision.number,
            state.digest(written),
        )

    def history(self, app: str, env: str, limit: int, before=None) -> dict:
        return self.call(
            "GET", f"{env_path(app, env)}/revisions", limit=limit, before=before
        )

    def rollback(self, app: str, env: str, number: int) -> dict:
        """A new revision copying an old one. Local files keep their records,
        so pushing one from before the rollback is refused, not an undo."""
        state.check_writable()
        result = self.call(
            "POST", f"{env_path(app, env)}/rollback", {"revision": number}
        )
        state.best_effort(
            state.record_seen, self.session.server, app, env, result["number"]
        )
        return result


def fetch_revision(call, app: str, env: str, env_key, number) -> Revision:
    """One revision, opened; env_key is the key, or a function of the answer."""
    which = "latest" if number is None else str(number)
    reply = call("GET", f"{env_path(app, env)}/revisions/{which}")
    wanted = reply.get("latest_revision") if number is None else number
    if reply.get("number") != wanted:
        raise errors.TamperedData(
            f"asked for revision {which} of {app} env {env} ({wanted}), the server "
            f"sent {reply.get('number')}: refusing it"
        )
    if callable(env_key):
        env_key = env_key(reply)
    data = open_revision(env_key, app, env, reply["blob"])
    return Revision(app, env, reply["number"], reply["latest_revision"], data)


def check_not_rolled_back(server: str, revision: Revision) -> None:
    """A server that forgets revisions this device saw is refused."""
    seen = state.sync_entry(server, revision.app, revision.env)["seen"]
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
