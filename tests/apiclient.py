"""The JSON API over raw HTTP, sealing real blobs with dotmage.crypto.

For tests that need many requests at once (threads, crash loops) where one CLI
subprocess per request would be too slow. The account it makes uses the test
master password and the insecure test KDF, so a CLI device can still join it.
"""

import http.client
import json
import urllib.parse
from dataclasses import dataclass

from conftest import BOOTSTRAP, PASSWORD

from dotmage import crypto

PREFIX = "/api/v1"


class Api:
    """One keep-alive connection to a server; use one per thread."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        self.token = token
        self.connection = None

    def call(self, method: str, path: str, body=None) -> tuple[int, dict]:
        """(status, JSON reply); raises OSError when the server is gone."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                self.host, self.port, timeout=self.timeout
            )
        try:
            self.connection.request(method, PREFIX + path, data, headers)
            reply = self.connection.getresponse()
            payload = reply.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise ConnectionError(f"{method} {path}: the server went away") from None
        return reply.status, json.loads(payload or b"{}")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


@dataclass
class Account:
    url: str
    access_token: str
    refresh_token: str
    account_key: bytes

    def api(self, url: str | None = None) -> Api:
        return Api(url or self.url, self.access_token)


def create_account(url: str, device_name: str = "api-device") -> Account:
    """The first device, as `dmage auth` makes it (insecure test KDF)."""
    params = crypto.KDF_INSECURE
    salt = crypto.random_bytes(crypto.SALT_SIZE)
    kek, auth_key = crypto.split_master_key(
        crypto.derive_master_key(PASSWORD, salt, params)
    )
    account_key = crypto.new_key()
    status, issued = Api(url).call(
        "POST",
        "/account",
        {
            "bootstrap_secret": BOOTSTRAP,
            "kdf": {
                "time_cost": params.time_cost,
                "memory_kib": params.memory_kib,
                "parallelism": params.parallelism,
                "salt": crypto.b64encode(salt),
            },
            "auth_key": crypto.b64encode(auth_key),
            "sealed_account_key": crypto.seal(
                kek, account_key, crypto.aad_account_key()
            ),
            "device_name": device_name,
        },
    )
    assert status == 201, issued
    return Account(url, issued["access_token"], issued["refresh_token"], account_key)


def create_env(account: Account, app: str, env: str) -> bytes:
    """Create the app (if new) and the env; returns the env key."""
    api = account.api()
    status, reply = api.call("POST", "/apps", {"name": app})
    assert status in (201, 409), reply
    env_key = crypto.new_key()
    sealed = crypto.seal(account.account_key, env_key, crypto.aad_env_key(app, env))
    status, reply = api.call(
        "POST", f"/apps/{app}/-/envs", {"name": env, "sealed_key": sealed}
    )
    assert status == 201, reply
    return env_key


def seal_text(env_key: bytes, app: str, env: str, text: str) -> str:
    """A revision blob exactly as the CLI seals it."""
    document = json.dumps({"format": "dotenv", "text": text}).encode()
    return crypto.seal(env_key, document, crypto.aad_revision(app, env))


def open_text(env_key: bytes, app: str, env: str, blob: str) -> str:
    document = crypto.unseal(env_key, blob, crypto.aad_revision(app, env))
    return json.loads(document)["text"]


def push(api: Api, app: str, env: str, base: int, blob: str) -> tuple[int, dict]:
    return api.call(
        "POST",
        f"/apps/{app}/-/envs/{env}/revisions",
        {"base_revision": base, "blob": blob},
    )


def pull(api: Api, app: str, env: str, number: int) -> tuple[int, dict]:
    return api.call("GET", f"/apps/{app}/-/envs/{env}/revisions/{number}")


def latest(api: Api, app: str, env: str) -> int:
    status, reply = api.call("GET", f"/apps/{app}/-/envs/{env}")
    assert status == 200, reply
    return reply["latest_revision"]
