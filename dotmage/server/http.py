"""HTTP plumbing: JSON errors, bounded bodies, client address, access log."""

import ipaddress
import json
import logging
import time

import bottle

log = logging.getLogger("dotmage.server")

SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]
# The web admin loads only its own files and talks only to its own origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' "
    "data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
ERROR_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal",
}


class ApiError(Exception):
    """An answer other than success; becomes {"error": {...}} JSON."""

    def __init__(self, status: int, message: str, code=None, headers=None, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or ERROR_CODES.get(status, "error")
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> bottle.HTTPResponse:
        body = {"error": {"code": self.code, "message": self.message, **self.extra}}
        return json_response(body, self.status, self.headers)


def json_response(body, status: int = 200, headers=None) -> bottle.HTTPResponse:
    response = bottle.HTTPResponse(
        json.dumps(body, separators=(",", ":")), status=status, headers=headers
    )
    response.content_type = "application/json"
    return response


def read_json(max_body: int) -> dict:
    """The request's JSON object, bounded in size; ApiError otherwise."""
    length = bottle.request.content_length
    if length > max_body:
        raise ApiError(413, f"request body over {max_body} bytes")
    raw = bottle.request.body.read(max_body + 1)
    if len(raw) > max_body:
        raise ApiError(413, f"request body over {max_body} bytes")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None
    except RecursionError:
        # Thousands of nested brackets exhaust the parser's stack: bad input.
        raise ApiError(400, "the request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


# Every integer the API takes fits a 32-bit signed column on PostgreSQL.
INT_MAX = 2**31 - 1


def field(body: dict, name: str, kind=str, required=True, default=None):
    """One typed field of a JSON body; a wrong type is a 400, never a 500."""
    value = body.get(name, default)
    if value is None:
        if required:
            raise ApiError(400, f"'{name}' is required")
        return None
    if kind is int and isinstance(value, bool):
        raise ApiError(400, f"'{name}' must be an integer")
    if not isinstance(value, kind):
        raise ApiError(400, f"'{name}' must be of type {kind.__name__}")
    if kind is int and not 0 <= value <= INT_MAX:
        raise ApiError(400, f"'{name}' must be between 0 and {INT_MAX}")
    if kind is str:
        check_text(value, f"'{name}'")
    if kind is dict:
        _check_nested(value, name)
    return value


def check_text(value: str, what: str, limit: int = 1_000_000) -> str:
    """Text a database can store: bounded, no NUL, valid UTF-8 (no surrogates)."""
    if len(value) > limit:
        raise ApiError(413 if limit >= 1_000_000 else 400, f"{what} is too long")
    if "\0" in value:
        raise ApiError(400, f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"{what} is not valid UTF-8") from None
    return value


def _check_nested(value: dict, name: str) -> None:
    # Objects (the KDF parameters) hold only short scalars; anything else
    # would reach a handler that never expected it.
    if len(value) > 16:
        raise ApiError(400, f"'{name}' has too many fields")
    for key, item in value.items():
        check_text(key, f"a key of '{name}'", 64)
        if isinstance(item, str):
            check_text(item, f"'{name}.{key[:20]}'", 200)
        elif isinstance(item, int) and not -INT_MAX <= item <= INT_MAX:
            raise ApiError(400, f"'{name}.{key[:20]}' is out of range")


def client_address(environ, trusted_proxies) -> str:
    """REMOTE_ADDR, or the first untrusted hop of X-Forwarded-For from a proxy.

    X-Forwarded-For is believed only when the connection comes from an address
    in DOTMAGE_TRUSTED_PROXIES; anyone else could write any address there and
    dodge the rate limit or forge the audit log.
    """
    address = environ.get("REMOTE_ADDR") or "unknown"
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    if not forwarded or not _trusted(address, trusted_proxies):
        return address
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _trusted(hop, trusted_proxies):
            return hop if _is_address(hop) else "invalid-forwarded-for"
    return address


def request_scheme(environ, trusted_proxies) -> str:
    """http or https as the browser sees it; X-Forwarded-Proto only from a proxy."""
    scheme = environ.get("wsgi.url_scheme", "http")
    forwarded = environ.get("HTTP_X_FORWARDED_PROTO", "")
    if forwarded and _trusted(environ.get("REMOTE_ADDR", ""), trusted_proxies):
        scheme = forwarded.split(",")[0].strip().lower()
    return "https" if scheme == "https" else "http"


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _trusted(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


class AccessLog:
    """WSGI middleware: one log line per request, and the security headers."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        seen = {}

        def start(status, headers, exc_info=None):
            seen["status"] = status.split(" ", 1)[0]
            headers = _with_security_headers(environ, headers)
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            self._log(environ, seen.get("status", "500"), started)

    def _log(self, environ, status, started) -> None:
        route = environ.get("bottle.route")
        # The rule, not the raw path: it names the endpoint, never a token.
        rule = route.rule if route is not None else "(unmatched)"
        millis = (time.perf_counter() - started) * 1000
        log.info("%s %s %s %.1fms", environ.get("REQUEST_METHOD"), rule, status, millis)


def _with_security_headers(environ, headers):
    names = {name.lower() for name, _ in headers}
    extra = [(n, v) for n, v in SECURITY_HEADERS if n.lower() not in names]
    if environ.get("PATH_INFO", "").startswith("/api/"):
        extra.append(("Cache-Control", "no-store"))
    else:
        extra.append(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
    return list(headers) + extra
