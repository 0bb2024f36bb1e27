"""The client against a hostile server: it refuses, clearly, with a nonzero exit.

A tampering proxy on loopback stands between the real CLI and the real
server, passes everything through, and alters the one answer a test names:
another env's or app's blob, another env's key, a flipped ciphertext byte,
Argon2id parameters below the floor, an older revision than the device saw.
"""

import http.client
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_tokens import NO_SECRETS, credentials, made
from world import shared_world

from dotmage import crypto

DEV_TEXT = "API_KEY=dev-value-123\n"
PROD_TEXT = "API_KEY=prod-value-456\n"
OTHER_TEXT = "API_KEY=other-app-789\n"
DEV = "/api/v1/apps/myapp/-/envs/dev"
PROD = "/api/v1/apps/myapp/-/envs/prod"
OTHER = "/api/v1/apps/otherapp/-/envs/dev"
WEAK_KDF = {"time_cost": 1, "memory_kib": 512, "parallelism": 1}


class TamperingProxy:
    """Forwards every request to the real server; `tamper` may alter answers.

    tamper(method, path, reply, fetch) returns the JSON to send instead of
    reply, or None to pass it through; fetch(path) GETs another document from
    the real server with the same credentials, to splice in.
    """

    def __init__(self, upstream: str):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.tamper = None
        self.seen: list[tuple[str, str]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def forward(self, method: str, path: str, body: bytes | None, headers: dict):
        connection = http.client.HTTPConnection(
            self.upstream.hostname, self.upstream.port, timeout=30
        )
        try:
            connection.request(method, path, body, headers)
            reply = connection.getresponse()
            return reply.status, dict(reply.getheaders()), reply.read()
        finally:
            connection.close()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "content-type", "accept")
                }
                path = urllib.parse.urlsplit(self.path).path
                proxy.seen.append((self.command, path))
                status, reply_headers, payload = proxy.forward(
                    self.command, self.path, body, headers
                )
                payload = proxy._maybe_tamper(self.command, path, payload, headers)
                self.send_response(status)
                self.send_header("Content-Type", reply_headers.get("Content-Type"))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _relay

            def log_message(self, *args):
                pass

        return Handler

    def _maybe_tamper(self, method, path, payload: bytes, headers) -> bytes:
        if self.tamper is None:
            return payload
        try:
            reply = json.loads(payload)
        except ValueError:
            return payload

        def fetch(other: str) -> dict:
            return json.loads(self.forward("GET", other, None, headers)[2])

        altered = self.tamper(method, path, reply, fetch)
        return payload if altered is None else json.dumps(altered).encode()


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    yield from shared_world(request, tmp_path_factory, "hostile")


@pytest.fixture(scope="module")
def proxy(world):
    running = TamperingProxy(world.server.url)
    yield running
    running.close()


@pytest.fixture
def honest(proxy):
    """The proxy passes everything through again after each test."""
    proxy.tamper = None
    proxy.seen.clear()
    yield proxy
    proxy.tamper = None


@pytest.fixture(scope="module")
def victim(world, proxy):
    """A device that knows the server only through the proxy."""
    device = world.device("victim", signed_in=False)
    device.run("auth", "--server", proxy.url, check=0)
    device.write("dev.env", DEV_TEXT)
    device.run("init", "myapp", "--file", "dev.env", check=0)
    device.run("env", "new", "myapp", "prod", check=0)
    device.write("prod.env", PROD_TEXT)
    device.run("push", "myapp", "--env", "prod", "--file", "prod.env", check=0)
    device.write("other.env", OTHER_TEXT)
    device.run("init", "otherapp", "--file", "other.env", check=0)
    return device


def when(method: str, path: str, change):
    """A tamper function that alters the answer to one request only."""

    def tamper(seen_method, seen_path, reply, fetch):
        if (seen_method, seen_path) != (method, path):
            return None
        return change(reply, fetch)

    return tamper


def assert_refused(result, *phrases) -> None:
    assert result.code != 0
    for phrase in phrases:
        assert phrase in result.stderr
    assert "Traceback" not in result.stderr
    for value in ("dev-value-123", "prod-value-456", "other-app-789"):
        assert value not in result.stdout


def pull_stdout(device, *extra):
    return device.run("pull", "myapp", "--stdout", *extra)


# -- the tests ------------------------------------------------------------------------


def test_the_proxy_alone_changes_nothing(victim, honest):
    assert pull_stdout(victim).stdout == DEV_TEXT


def test_another_envs_blob_is_refused(victim, honest):
    def swap(reply, fetch):
        return {**reply, "blob": fetch(PROD + "/revisions/latest")["blob"]}

    honest.tamper = when("GET", DEV + "/revisions/latest", swap)

    assert_refused(pull_stdout(victim), "fails authentication", "myapp env dev")


def test_another_apps_blob_is_refused(victim, honest):
    def swap(reply, fetch):
        return {**reply, "blob": fetch(OTHER + "/revisions/latest")["blob"]}

    honest.tamper = when("GET", DEV + "/revisions/latest", swap)

    result = victim.run("exec", "myapp", "--", "sh", "-c", "echo ran")
    assert_refused(result, "fails authentication")
    assert "ran" not in result.stdout


def test_another_envs_key_is_refused(victim, honest):
    def swap(reply, fetch):
        return {**reply, "sealed_key": fetch(PROD)["sealed_key"]}

    # A pull takes the env key from the revision's answer.
    honest.tamper = when("GET", DEV + "/revisions/latest", swap)

    assert_refused(pull_stdout(victim), "env key", "fails authentication")


def test_another_envs_key_is_refused_when_pushing(victim, honest):
    def swap(reply, fetch):
        return {**reply, "sealed_key": fetch(PROD)["sealed_key"]}

    # A push seals under the env key from the env's own answer.
    honest.tamper = when("GET", DEV, swap)

    result = victim.run("set", "myapp", "NEW=1")
    assert_refused(result, "env key", "fails authentication")


def test_a_flipped_ciphertext_byte_is_refused(victim, honest):
    def flip(reply, fetch):
        raw = bytearray(crypto.b64decode(reply["blob"]))
        raw[len(raw) // 2] ^= 0x01
        return {**reply, "blob": crypto.b64encode(bytes(raw))}

    honest.tamper = when("GET", DEV + "/revisions/latest", flip)
    victim.write(".env", "UNTOUCHED=1\n")

    assert_refused(victim.run("pull", "myapp", "--force"), "fails authentication")
    assert (victim.cwd / ".env").read_text() == "UNTOUCHED=1\n"


def test_kdf_parameters_below_the_floor_are_refused_before_the_password_is_used(
    world, victim, honest
):
    honest.tamper = when(
        "POST", "/api/v1/auth/prelogin", lambda reply, _: weaken(reply)
    )
    newcomer = world.device("newcomer", signed_in=False)

    result = newcomer.run("auth", "--server", honest.url)

    assert_refused(result, "below the floor")
    assert ("POST", "/api/v1/devices") not in honest.seen


def test_kdf_parameters_below_the_floor_are_refused_at_unlock(victim, honest):
    victim.run("lock", check=0)
    honest.tamper = when("GET", "/api/v1/account", lambda reply, _: weaken(reply))

    assert_refused(pull_stdout(victim), "below the floor")

    honest.tamper = None
    assert pull_stdout(victim).stdout == DEV_TEXT  # unlocks again, honestly


def weaken(reply: dict) -> dict:
    return {**reply, "kdf": {**reply["kdf"], **WEAK_KDF}}


def test_an_older_revision_than_this_device_saw_is_refused(world, honest):
    device = world.device("watcher", signed_in=False)
    device.run("auth", "--server", honest.url, check=0)
    for number in (1, 2, 3):
        device.write(".env", f"STEP={number}\n")
        device.run("init" if number == 1 else "push", "watched", check=0)
    path = "/api/v1/apps/watched/-/envs/dev/revisions"

    def forget(reply, fetch):
        old = fetch(path + "/1")
        return {**old, "latest_revision": 1}

    honest.tamper = when("GET", path + "/latest", forget)

    assert_refused(device.run("pull", "watched", "--stdout"), "already saw revision 3")


def test_a_latest_revision_with_an_older_number_is_refused(world, honest):
    device = world.device("watcher2", signed_in=False)
    device.run("auth", "--server", honest.url, check=0)
    for number in (1, 2):
        device.write(".env", f"STEP={number}\n")
        device.run("init" if number == 1 else "push", "watched2", check=0)
    path = "/api/v1/apps/watched2/-/envs/dev/revisions"

    def stale(reply, fetch):
        return {**fetch(path + "/1"), "latest_revision": reply["latest_revision"]}

    honest.tamper = when("GET", path + "/latest", stale)

    result = device.run("pull", "watched2", "--stdout")
    assert_refused(result, "the server sent 1")
    assert "STEP" not in result.stdout


def test_a_ci_token_refuses_another_envs_blob(world, victim, honest):
    created = made(victim, "gen-ci-token", "--app", "myapp", "--env", "dev")
    runner = world.device("runner", signed_in=False)
    runner.environment.update(DOTMAGE_CI_TOKEN=created["token"])
    for variable in NO_SECRETS:
        runner.environment.pop(variable)
    # Fetched as the device: the CI token itself may not read prod.
    bearer = {"Authorization": f"Bearer {credentials(victim)['access_token']}"}
    prod_blob = world.server.request("GET", PROD + "/revisions/latest", headers=bearer)[
        2
    ]["blob"]

    honest.tamper = when(
        "GET", DEV + "/revisions/latest", lambda reply, _: {**reply, "blob": prod_blob}
    )

    assert_refused(runner.run("pull", "myapp", "--stdout"), "fails authentication")
