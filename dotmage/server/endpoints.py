"""The registry of API endpoints: path, auth rule, body schema, handler."""

from dataclasses import dataclass, field

API_PREFIX = "/api/v1"
TYPES = {str: "string", int: "integer", dict: "object", bool: "boolean"}


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
        openapi_path = _openapi_path(API_PREFIX + ep.path)
        paths.setdefault(openapi_path, {})[ep.method.lower()] = _operation(ep)
    return {
        "openapi": "3.0.3",
        "info": {"title": "dotMage API", "version": version},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        },
        "paths": paths,
    }


def _operation(ep: Endpoint) -> dict:
    operation = {
        "operationId": f"{ep.action}_{ep.method.lower()}",
        "summary": ep.summary,
        "parameters": _parameters(ep),
        "responses": {
            "200": {"description": "success"},
            "201": {"description": "created"},
            "400": {"description": "bad input"},
            "401": {"description": "not authenticated"},
            "403": {"description": "out of scope"},
            "404": {"description": "unknown"},
            "409": {"description": "conflict"},
            "413": {"description": "too large"},
            "429": {"description": "rate limited"},
        },
    }
    if ep.auth != "none":
        operation["security"] = [{"bearer": []}]
    if ep.method in ("POST", "PUT"):
        operation["requestBody"] = _request_body(ep)
    return operation


def _parameters(ep: Endpoint) -> list:
    params = []
    for part in ep.path.split("/"):
        if part.startswith("<"):
            name, _, kind = part[1:-1].partition(":")
            schema = {"type": "integer"} if kind == "int" else {"type": "string"}
            params.append(
                {"name": name, "in": "path", "required": True, "schema": schema}
            )
    for name, kind in ep.query.items():
        params.append({"name": name, "in": "query", "schema": {"type": TYPES[kind]}})
    return params


def _request_body(ep: Endpoint) -> dict:
    properties = {name: {"type": TYPES[kind]} for name, (kind, _) in ep.body.items()}
    required = [name for name, (_, needed) in ep.body.items() if needed]
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {
        "required": True,
        "content": {"application/json": {"schema": schema}},
    }


def _openapi_path(rule: str) -> str:
    parts = []
    for part in rule.split("/"):
        if part.startswith("<"):
            part = "{" + part[1:-1].partition(":")[0] + "}"
        parts.append(part)
    return "/".join(parts)
