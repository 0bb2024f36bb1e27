"""The Bottle application: routing, authentication, errors, static files."""

import json
import logging
import mimetypes
from dataclasses import dataclass

import bottle
import peewee as pw

from dotmage import __version__
from dotmage.server import audit, ratelimit, tokens
from dotmage.server.db import Account, Device, now
from dotmage.server.endpoints import API_PREFIX, ENDPOINTS, Endpoint
from dotmage.server.http import (
    INT_MAX,
    AccessLog,
    ApiError,
    check_text,
    client_address,
    field,
    json_response,
    read_json,
    request_scheme,
)

log = logging.getLogger("dotmage.server")
SESSION_COOKIE = tokens.SESSION_COOKIE
# Web sessions must send this header on writes: a cross-site form cannot.
CSRF_HEADER = "X-Dmage-Web"
LAST_SEEN_EVERY = 60
API_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
CATCH_ALL = API_PREFIX + "/<rest:path>"


@dataclass
class Call:
    """One request as a handler sees it."""

    settings: object
    address: str
    body: dict
    query: dict
    scheme: str = "http"
    principal: tokens.Principal | None = None
    response_headers: dict | None = None
    # Who to name in the audit log when nobody signed in yet (an enrollment).
    actor_override: str | None = None

    @property
    def actor(self) -> str:
        if self.actor_override:
            return self.actor_override
        return self.principal.actor if self.principal else "anonymous"

    def require_scope(self, app: str, env: str) -> None:
        """A CI token reads its own app and env, and nothing else."""
        token = self.principal.token
        if self.principal.kind == "ci" and (token.app_name, token.env_name) != (
            app,
            env,
        ):
            raise ApiError(
                403,
                f"this CI token can only read {token.app_name} env {token.env_name}",
            )


def make_app(settings) -> AccessLog:
    # Importing the routes fills ENDPOINTS.
    from dotmage.server import routes  # noqa: F401

    app = bottle.Bottle(catchall=True, autojson=False)
    for ep in ENDPOINTS:
        app.route(API_PREFIX + ep.path, ep.method, _wrap(ep, settings))
    # One catch-all per method, registered before the static files' GET
    # route: an unknown API path answers JSON, never the web admin's 404.
    app.route(CATCH_ALL, list(API_METHODS), _unknown_endpoint(app))
    app.route("/", "GET", lambda: _static_file(settings, "index.html"))
    app.route("/<path:path>", "GET", lambda path: _static_file(settings, path))
    app.default_error_handler = _error_page
    return AccessLog(app)


def _wrap(ep: Endpoint, settings):
    def handle(**url_args):
        environ = bottle.request.environ
        call = Call(
            settings,
            client_address(environ, settings.trusted_proxies),
            body={},
            query={},
            scheme=request_scheme(environ, settings.trusted_proxies),
        )
        try:
            _check_url_args(url_args)
            return _run(ep, call, url_args)
        except ApiError as error:
            audit.refusal(call, ep, url_args, error.status)
            return error.response()
        except pw.IntegrityError:
            # Two requests raced to create the same thing; the loser is told.
            log.warning("integrity error on %s %s", ep.method, ep.path)
            return ApiError(409, "that changed at the same time; try again").response()
        except pw.DataError:
            log.warning("data error on %s %s", ep.method, ep.path)
            return ApiError(400, "a value does not fit the database").response()
        except pw.OperationalError:
            log.exception("database error on %s %s", ep.method, ep.path)
            return ApiError(503, "the database is busy; try again").response()

    return handle


def _check_url_args(url_args: dict) -> None:
    # Path parts reach queries and the audit log: the same rules as bodies.
    for name, value in url_args.items():
        if isinstance(value, int):
            if not 0 <= value <= INT_MAX:
                raise ApiError(400, f"'{name}' must be between 0 and {INT_MAX}")
        else:
            check_text(value, f"the {name} in the path", 300)


def _run(ep: Endpoint, call: Call, url_args: dict) -> bottle.HTTPResponse:
    if ep.rate_limited:
        ratelimit.check(call.address, call.settings)
    if ep.auth != "none":
        authenticate(ep, call)
    if ep.method in ("POST", "PUT", "PATCH"):
        call.body = _typed_body(ep, read_json(call.settings.max_body))
    call.query = _typed_query(ep)

    result = ep.handler(call, **url_args)
    status, body = result if isinstance(result, tuple) else (200, result)
    return json_response(body, status, call.response_headers)


def authenticate(ep: Endpoint, call: Call) -> None:
    """Set call.principal from a bearer token or the web session cookie."""
    bearer = _bearer()
    if bearer:
        kinds = ("access", "ci")
        credential = bearer
    elif bottle.request.get_cookie(SESSION_COOKIE):
        kinds = ("session",)
        credential = bottle.request.get_cookie(SESSION_COOKIE)
        _check_csrf()
    else:
        raise ApiError(401, "not authenticated: run dmage auth")

    try:
        token = tokens.check(credential, kinds)
    except tokens.TokenRejected as error:
        raise ApiError(401, error.reason) from None
    device = token.device if token.device_id else None
    # Set before the scope check, so a refusal is audited under the CI token.
    call.principal = tokens.Principal(token.kind, token, device)
    _touch(token)
    if token.kind == "ci" and ep.auth != "read":
        raise ApiError(
            403,
            f"a CI token can only read {token.app_name} env {token.env_name}; "
            f"{ep.action} needs a signed-in device (dmage auth)",
        )


def _bearer() -> str | None:
    header = bottle.request.get_header("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _check_csrf() -> None:
    if bottle.request.method not in ("GET", "HEAD") and not bottle.request.get_header(
        CSRF_HEADER
    ):
        raise ApiError(403, f"web requests that change data need {CSRF_HEADER}")


def _touch(token) -> None:
    # One write a minute at most: a busy CI job must not serialize on SQLite.
    stamp = now()
    if token.device_id and stamp - token.device.last_seen_at >= LAST_SEEN_EVERY:
        Device.update(last_seen_at=stamp).where(Device.id == token.device_id).execute()
    if token.kind == "ci" and stamp - (token.last_used_at or 0) >= LAST_SEEN_EVERY:
        type(token).update(last_used_at=stamp).where(
            type(token).id == token.id
        ).execute()


def _typed_body(ep: Endpoint, raw: dict) -> dict:
    return {
        name: field(raw, name, kind, required)
        for name, (kind, required) in ep.body.items()
    }


def _typed_query(ep: Endpoint) -> dict:
    query = {}
    for name, kind in ep.query.items():
        value = bottle.request.query.get(name)
        if value is None or value == "":
            continue
        if kind is int:
            if not value.isascii() or not value.isdigit() or len(value) > 10:
                raise ApiError(400, f"'{name}' must be a non-negative integer")
            value = int(value)
            if value > INT_MAX:
                raise ApiError(400, f"'{name}' must be at most {INT_MAX}")
        else:
            check_text(value, f"'{name}'", 300)
        query[name] = value
    return query


def _unknown_endpoint(app: bottle.Bottle):
    def answer(rest):
        path = bottle.request.environ.get("PATH_INFO", "")
        allowed = [m for m in API_METHODS if _has_route(app, m, path)]
        if allowed:
            return ApiError(
                405,
                f"{bottle.request.method} is not allowed here; use "
                f"{', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            ).response()
        return ApiError(404, f"no such endpoint: {API_PREFIX}/{rest[:80]}").response()

    return answer


def _has_route(app: bottle.Bottle, method: str, path: str) -> bool:
    try:
        route, _ = app.router.match({"PATH_INFO": path, "REQUEST_METHOD": method})
    except bottle.HTTPError:
        return False
    return route.rule != CATCH_ALL


def _error_page(error: bottle.HTTPError) -> str:
    # Bottle's own errors (405, a crash) as JSON, never its HTML or a trace.
    status = error.status_code if error.status_code != 500 else 500
    if status == 500:
        log.error("unhandled error: %r", error.exception)
    bottle.response.content_type = "application/json"
    message = "internal error" if status == 500 else str(error.body)[:200]
    body = {"error": {"code": ApiError(status, "").code, "message": message}}
    return json.dumps(body)


def _static_file(settings, path: str):
    root = settings.static_dir
    if root is None or not root.is_dir():
        raise bottle.HTTPError(404, "the web admin is not installed here")
    response = bottle.static_file(path, root=str(root))
    if isinstance(response, bottle.HTTPResponse) and path.endswith(".js"):
        response.content_type = "text/javascript; charset=utf-8"
    return response


def account_or_none() -> Account | None:
    return Account.get_or_none()


mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")

__all__ = ["make_app", "Call", "account_or_none", "__version__"]
