"""Generated requests against the server's own OpenAPI document: never a 5xx.

Two fuzzers, both driven by /api/v1/openapi.json of a real server, signed in
as a real device so that the handlers behind authentication are reached:

- Schemathesis sends valid and deliberately invalid requests to every
  operation (its examples name the app and env made here).
- A mutation fuzzer starts from a request that is valid in every field and
  makes one field hostile (NUL bytes, lone surrogates, huge or negative
  numbers, wrong JSON types, very long text), so the bad value reaches the
  database code behind all the other checks.
"""

import http.client
import json
import os
import urllib.parse

import pytest
import schemathesis
from conftest import BOOTSTRAP, Device, fresh_database, start_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dotmage import crypto

EXAMPLES_PER_OPERATION = int(os.environ.get("DOTMAGE_FUZZ_EXAMPLES", "25"))
MUTATIONS = int(os.environ.get("DOTMAGE_FUZZ_MUTATIONS", "800"))
QUIET = {
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "database": None,
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_server(request, tmp_path_factory):
    """One server per database for the whole module, with an app to hit."""
    tmp_path = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    with fresh_database(request.param, tmp_path) as url:
        # The fuzzers must reach the auth handlers, not stop at the rate limit.
        server = start_server(tmp_path, url, DOTMAGE_RATE_LIMIT="100000/min")
        device = Device(tmp_path / "home", tmp_path / "work", server)
        device.auth()
        device.write(".env", "API_KEY=fuzz-value\n")
        device.run("init", "work/api", check=0)
        credentials = json.loads((device.home / "credentials.json").read_text())
        server.bearer = credentials["access_token"]
        yield server
        server.stop()


def assert_no_server_error(status: int, text: str, what: str) -> None:
    assert status < 500, f"{what} answered {status}: {text[:300]}"
    assert "Traceback" not in text
    assert BOOTSTRAP not in text


# -- schemathesis -------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    return schemathesis.openapi.from_url(fuzz_server.url + "/api/v1/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


# Logging out would revoke the fuzzing device and leave the rest at 401.
@schema.exclude(path="/api/v1/auth/logout").parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, **QUIET)
def test_no_generated_request_gets_a_server_error(case, fuzz_server):
    response = case.call(
        base_url=fuzz_server.url,
        headers={"Authorization": f"Bearer {fuzz_server.bearer}"},
        timeout=30,
    )
    assert_no_server_error(response.status_code, response.text, case.as_curl_command())


# -- one hostile field in an otherwise valid request ----------------------------------

SEALED = crypto.seal(crypto.new_key(), b"x", b"fuzz")
VALID_FIELDS = {
    "app": "work/api",
    "env": "dev",
    "number": 1,
    "device_id": "0123456789abcdef",
    "token_id": "0123456789abcdef",
    "limit": 5,
    "before": 3,
    "name": "fuzz-name",
    "bootstrap_secret": BOOTSTRAP,
    "kdf": {"time_cost": 1, "memory_kib": 1024, "parallelism": 1, "salt": "A" * 22},
    "auth_key": crypto.b64encode(bytes(32)),
    "new_auth_key": crypto.b64encode(bytes(32)),
    "sealed_account_key": SEALED,
    "sealed_key": SEALED,
    "blob": SEALED,
    "device_name": "fuzz-device",
    "refresh_token": "drt_0123456789abcdef.secret",
    "proof": crypto.b64encode(bytes(32)),
    "kind": "ci",
    "id": "0123456789abcdef",
    "secret_hash": "0" * 64,
    "ttl": 60,
    "base_revision": 1,
    "revision": 1,
    "source_revision": 1,
}
# DELETEs aim at names that do not exist: the app under test must survive.
VALID_FOR_DELETE = {"app": "work/gone", "env": "gone"}
NASTY_TEXT = [
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "../../etc/passwd",
    "a" * 5000,
    "%00",
    "\u202e\ufeff",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "work/api\n",
    " dev",
]
HOSTILE = st.one_of(
    st.sampled_from(NASTY_TEXT),
    st.text(max_size=40),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**31, 2**31 - 1, 2**63, -1, 0]),
    st.sampled_from([None, True, False, 1.5, [], {}, [1], {"a": 1}]),
    st.dictionaries(st.text(max_size=8), st.sampled_from(["\x00", 2**70, None])),
)


@pytest.fixture(scope="module")
def operations(fuzz_server):
    status, _, document = fuzz_server.request("GET", "/api/v1/openapi.json")
    assert status == 200
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if path != "/api/v1/auth/logout":
                found.append((method.upper(), path, operation))
    return found


def baseline(method: str, path: str, operation: dict) -> dict:
    """Every parameter and body field of an operation, with a valid value."""
    valid = {**VALID_FIELDS, **(VALID_FOR_DELETE if method == "DELETE" else {})}
    fields = {}
    for parameter in operation.get("parameters", []):
        fields[(parameter["in"], parameter["name"])] = valid[parameter["name"]]
    body = operation.get("requestBody", {}).get("content", {})
    schema_ = body.get("application/json", {}).get("schema", {})
    for name in schema_.get("properties", {}):
        fields[("body", name)] = valid[name]
    return fields


def send(server, method: str, path: str, fields: dict) -> tuple[int, str]:
    """One raw request; path and query values are percent-encoded bytes."""
    query, body = [], {}
    for (where, name), value in fields.items():
        if where == "path":
            path = path.replace("{" + name + "}", _encoded(value))
        elif where == "query":
            query.append(f"{name}={_encoded(value)}")
        else:
            body[name] = value
    target = path + ("?" + "&".join(query) if query else "")
    payload = json.dumps(body).encode() if method in ("POST", "PUT") else None
    parts = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(
            method,
            target,
            payload,
            {
                "Authorization": f"Bearer {server.bearer}",
                "Content-Type": "application/json",
            },
        )
        reply = connection.getresponse()
        return reply.status, reply.read().decode("utf-8", "replace")
    finally:
        connection.close()


def _encoded(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    raw = text.encode("utf-8", "surrogatepass")
    return urllib.parse.quote(raw, safe="")


def test_one_hostile_field_in_a_valid_request_gets_no_server_error(
    fuzz_server, operations
):
    @given(data=st.data())
    @settings(max_examples=MUTATIONS, **QUIET)
    def probe(data):
        method, path, operation = data.draw(st.sampled_from(operations))
        fields = baseline(method, path, operation)
        if fields:
            target = data.draw(st.sampled_from(sorted(fields)))
            fields[target] = data.draw(HOSTILE)
        else:
            target = None

        status, text = send(fuzz_server, method, path, fields)

        assert_no_server_error(status, text, f"{method} {path} with {target}")
        assert json.loads(text).keys() <= {"error"} or status < 400

    probe()
