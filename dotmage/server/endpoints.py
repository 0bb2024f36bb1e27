"""The registry of API endpoints: path, auth rule, body schema, handler."""

from dataclasses import dataclass, field

from dotmage.names import APP_NAME, ENV_NAME, MAX_APP_NAME
from dotmage.server.http import INT_MAX

API_PREFIX = "/api/v1"
TYPES = {str: "string", int: "integer", dict: "object", bool: "boolean"}
# What the server accepts in each path parameter, as the document tells it.
PATH_SCHEMAS = {
    "app": {
        "type": "string",
        "maxLength": MAX_APP_NAME,
        "pattern": APP_NAME.pattern,
        "example": "work/api",
    },
    "env": {
        "type": "string",
        "maxLength": 32,
        "pattern": ENV_NAME.pattern,
        "example": "dev",
    },
    "number": {"type": "integer", "minimum": 1, "maximum": INT_MAX, "example": 1},
    "device_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
    "token_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
            },
        }
    },
}
STATUSES = {
    "400": "bad input",
    "401": "not authenticated",
    "403": "out of scope (a CI token, or a web write without X-Dmage-Web)",
    "404": "unknown",
    "409": "conflict",
    "413": "too large",
    "429": "rate limited (Retry-After says when to try again)",
}


@dataclass
class Endpoint:
    method: str
    path: str
    handler: object
    action: str
    # "none": anyone; "account": a device or a web session; "read": also a CI
    # token, which the handler then holds to its one app and env.
    auth: str = "account"
    rate_limited: bool = False
    body: dict = field(default_factory=dict)  # name -> (type, required)
    query: dict = field(default_factory=dict)  # name -> type

    @property
    def summary(self) -> str:
        return (self.handler.__doc__ or self.action).strip().splitlines()[0]


ENDPOINTS: list[Endpoint] = []


def endpoint(method: str, path: str, action: str, **options):
    """Register a handler(call, **url_args) -> body or (status, body)."""

    def register(handler):
        ENDPOINTS.append(Endpoint(method, path, handler, action, **options))
        return handler

    return register


def openapi_document(version: str) -> dict:
    """An OpenAPI 3 description of every registered endpoint."""
    paths: dict = {}
    for ep in ENDPOINTS:
        path = openapi_path(API_PREFIX + ep.path)
        paths.setdefault(path, {})[ep.method.lower()] = _operation(ep)
    return {
        "openapi": "3.0.3",
        "info": {"title": "dotMage API", "version": version},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "dmage_session",
                },
            },
            "schemas": {"Error": ERROR_SCHEMA},
        },
        "paths": paths,
    }


def _operation(ep: Endpoint) -> dict:
    operation = {
        "operationId": f"{ep.action}_{ep.method.lower()}",
        "summary": ep.summary,
        "parameters": _parameters(ep),
        "responses": _responses(),
    }
    if ep.auth != "none":
        operation["security"] = [{"bearer": []}, {"session": []}]
    if ep.method in ("POST", "PUT"):
        operation["requestBody"] = _request_body(ep)
    return operation


def _responses() -> dict:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    responses = {
        "200": {"description": "success"},
        "201": {"description": "created"},
    }
    for status, description in STATUSES.items():
        responses[status] = {"description": description, "content": error}
    return responses


def _parameters(ep: Endpoint) -> list:
    params = []
    for part in ep.path.split("/"):
        if part.startswith("<"):
            name, _, kind = part[1:-1].partition(":")
            fallback = {"type": "integer"} if kind == "int" else {"type": "string"}
            schema = PATH_SCHEMAS.get(name, fallback)
            params.append(
                {"name": name, "in": "path", "required": True, "schema": schema}
            )
    for name, kind in ep.query.items():
        params.append({"name": name, "in": "query", "schema": _schema(kind)})
    return params


def _schema(kind) -> dict:
    if kind is int:
        return {"type": "integer", "minimum": 0, "maximum": INT_MAX}
    return {"type": TYPES[kind]}


def _request_body(ep: Endpoint) -> dict:
    properties = {name: _schema(kind) for name, (kind, _) in ep.body.items()}
    required = [name for name, (_, needed) in ep.body.items() if needed]
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {
        "required": True,
        "content": {"application/json": {"schema": schema}},
    }


def openapi_path(rule: str) -> str:
    parts = []
    for part in rule.split("/"):
        if part.startswith("<"):
            part = "{" + part[1:-1].partition(":")[0] + "}"
        parts.append(part)
    return "/".join(parts)
