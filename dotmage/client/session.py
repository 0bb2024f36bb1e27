"""The signed-in device: its server, credentials, and the account key."""

import os
import socket
import time

from dotmage import crypto, errors
from dotmage.client import keycache, state
from dotmage.client.http import Http, normalize_server

INSECURE_KDF_VARIABLE = "DOTMAGE_INSECURE_FAST_KDF"
DEFAULT_ENV = "dev"
DEFAULT_KEY_TTL = 7 * 86400
REFRESH_MARGIN = 30


def insecure_kdf() -> bool:
    """Tests only: accept and use cheap Argon2id parameters."""
    return os.environ.get(INSECURE_KDF_VARIABLE) == "1"


def kdf_floor() -> crypto.KdfParams:
    return crypto.KDF_INSECURE if insecure_kdf() else crypto.KDF_FLOOR


def kdf_for_new_account() -> crypto.KdfParams:
    return crypto.KDF_INSECURE if insecure_kdf() else crypto.KDF_FLOOR


# The types of the fields dmage writes, checked on every read: a hand-edited
# file gets a one-line message naming it, not a Python error.
CONFIG_FIELDS = {
    "server": str,
    "device_id": str,
    "active_env": str,
    "key_store": str,
    "key_ttl": int,
}
CREDENTIAL_FIELDS = {
    "device_id": str,
    "access_token": str,
    "refresh_token": str,
    "access_expires_at": float,
}


def device_name(name: str | None = None) -> str:
    """--name, else DOTMAGE_DEVICE_NAME, else this machine's host name."""
    return (
        name
        or os.environ.get("DOTMAGE_DEVICE_NAME")
        or socket.gethostname()
        or "device"
    )


class Session:
    """State of this device, loaded lazily from DOTMAGE_HOME."""

    def __init__(self):
        self.config = state.read_json(state.CONFIG, CONFIG_FIELDS)
        self._credentials = None

    # -- configuration ---------------------------------------------------------

    @property
    def server(self) -> str:
        server = self.config.get("server")
        if not server:
            raise errors.NotAuthenticated(
                "this device is not signed in: run dmage auth --server URL"
            )
        return server

    def active_env(self, override: str | None = None) -> str:
        return self.active_env_source(override)[0]

    def active_env_source(self, override: str | None = None) -> tuple[str, str]:
        """The active env and what chose it, strongest first."""
        for name, source in (
            (override, "--env"),
            (os.environ.get("DOTMAGE_ENV"), "DOTMAGE_ENV"),
            (self.config.get("active_env"), "dmage env use"),
        ):
            if name:
                return name, source
        return DEFAULT_ENV, "default"

    def save_config(self, **changes) -> None:
        self.config.update(changes)
        state.write_json(state.CONFIG, self.config)

    @property
    def key_entry(self) -> str:
        return f"{self.config.get('server')} {self.config.get('device_id')}"

    # -- credentials -------------------------------------------------------------

    def credentials(self) -> dict:
        if self._credentials is None:
            self._credentials = state.read_json(state.CREDENTIALS, CREDENTIAL_FIELDS)
        if not self._credentials.get("refresh_token"):
            raise errors.NotAuthenticated(
                "this device is not signed in: run dmage auth"
            )
        return self._credentials

    def save_credentials(self, issued: dict) -> None:
        self._credentials = {
            "device_id": issued["device_id"],
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "access_expires_at": time.time() + int(issued.get("expires_in", 0)),
        }
        state.write_json(state.CREDENTIALS, self._credentials)

    def http(self) -> Http:
        """An Http with a fresh access token, refreshing it when due."""
        credentials = self.credentials()
        if credentials.get("access_expires_at", 0) - REFRESH_MARGIN < time.time():
            self.refresh()
        return Http(self.server, self._credentials["access_token"])

    def refresh(self) -> None:
        """New tokens for this device, one dmage process at a time.

        Refresh tokens rotate and a reused one revokes the device, so two
        processes must never spend the same one: the second waits for the
        lock, then finds and uses the tokens the first one received.
        """
        spent = self.credentials()["refresh_token"]
        # A refresh spends the old token: if the new one could not be saved,
        # the next refresh would look like theft and revoke this device.
        state.check_writable()
        with state.locked():
            stored = state.read_json(state.CREDENTIALS, CREDENTIAL_FIELDS)
            if stored.get("refresh_token") not in (None, spent):
                self._credentials = stored
                return
            try:
                issued = Http(self.server).post(
                    "/auth/refresh", {"refresh_token": spent}
                )
            except errors.NotAuthenticated as error:
                raise errors.NotAuthenticated(
                    f"{error}: this device is signed out; run dmage auth"
                ) from None
            self.save_credentials(issued)

    def call(self, method: str, path: str, body=None, **query) -> dict:
        """One authenticated request; an expired access token is refreshed."""
        try:
            return self.http().request(method, path, body=body, query=query)
        except errors.NotAuthenticated:
            self.refresh()
            return self.http().request(method, path, body=body, query=query)

    # -- the account key -----------------------------------------------------------

    def cached_account_key(self) -> bytes | None:
        return keycache.load(self.config.get("key_store"), self.key_entry)

    def account_key(self, ask_password) -> bytes:
        """The cached account key, or unlock it with the master password."""
        key = self.cached_account_key()
        if key is not None:
            return key
        self.credentials()
        account = self.call("GET", "/account")
        key = open_account_key(account, ask_password("Master password"))
        try:
            self.cache_key(key, self.config.get("key_ttl", DEFAULT_KEY_TTL))
        except errors.DmageError as error:  # a read-only state folder
            state.notify(f"the account key is not cached: {error}")
        return key

    def cache_key(self, key: bytes, ttl: int) -> str:
        store = keycache.save(key, ttl, self.key_entry)
        self.save_config(key_store=store, key_ttl=ttl)
        return store

    def forget_key(self) -> None:
        keycache.forget(self.config.get("key_store"), self.key_entry)


def kdf_params(kdf: dict) -> tuple[crypto.KdfParams, bytes]:
    """The server's KDF settings, refused below the floor (no downgrade)."""
    try:
        params = crypto.KdfParams(
            int(kdf["time_cost"]), int(kdf["memory_kib"]), int(kdf["parallelism"])
        )
        salt = crypto.b64decode(kdf["salt"])
    except (errors.ServerError, KeyError, TypeError, ValueError):
        raise errors.TamperedData("the server sent unusable KDF parameters") from None
    floor = kdf_floor()
    if not params.at_least(floor) or len(salt) < crypto.SALT_SIZE:
        raise errors.TamperedData(
            "the server offered Argon2id parameters below the floor "
            f"(t={params.time_cost}, m={params.memory_kib} KiB, "
            f"p={params.parallelism}; floor t={floor.time_cost}, "
            f"m={floor.memory_kib} KiB, p={floor.parallelism}): refusing, since "
            "a hostile server could use that to guess your password"
        )
    return params, salt


def derive(password: str, kdf: dict) -> tuple[bytes, bytes]:
    """Master password + the account's KDF settings -> (KEK, AUTH)."""
    params, salt = kdf_params(kdf)
    return crypto.split_master_key(crypto.derive_master_key(password, salt, params))


def open_account_key(account: dict, password: str) -> bytes:
    kek, _ = derive(password, account["kdf"])
    try:
        return crypto.unseal(
            kek, account["sealed_account_key"], crypto.aad_account_key()
        )
    except crypto.DecryptError:
        raise errors.DmageError("wrong master password") from None


def new_kdf() -> dict:
    params = kdf_for_new_account()
    return {
        "time_cost": params.time_cost,
        "memory_kib": params.memory_kib,
        "parallelism": params.parallelism,
        "salt": crypto.b64encode(crypto.random_bytes(crypto.SALT_SIZE)),
    }


def check_server(server: str) -> str:
    return normalize_server(server)
