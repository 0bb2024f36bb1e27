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
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


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
    if kind is str and len(value) > 1_000_000:
        raise ApiError(413, f"'{name}' is too long")
    return value


def client_address(environ, trusted_proxies) -> str:
    """REMOTE_ADDR, or the first untrusted hop of X-Forwarded-For from a proxy."""
    address = environ.get("REMOTE_ADDR") or "unknown"
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    if not forwarded or not _trusted(address, trusted_proxies):
        return address
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _trusted(hop, trusted_proxies):
            return hop[:64]
    return address


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
