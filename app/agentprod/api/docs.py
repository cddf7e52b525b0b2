"""The OpenAPI schema and the docs pages, served per `API_DOCS` (protected, public or off).

The schema says what the API really does: `agent` is an enum of the agents this process can
run, and the security schemes are listed only when keys are required.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse

from agentprod.agents import registry
from agentprod.api import identity
from agentprod.models import NUMBER_MAX, NUMBER_MIN
from agentprod.settings import Settings

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def schema(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The app's OpenAPI document (built once), adjusted to this process's agents and auth."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        components = document.get("components", {})
        request = components.get("schemas", {}).get("TaskRequest", {}).get("properties", {})
        for path in document.get("paths", {}).values():
            for operation in path.values():
                for parameter in operation.get("parameters", []):
                    _not_null(parameter)
        if not settings.webhook_secret:  # callbacks are off here: any URL is refused (422)
            for body in components.get("schemas", {}).values():
                if "callback_url" in body.get("properties", {}):
                    body["properties"]["callback_url"] = {
                        "type": "null",
                        "description": "Callbacks are off on this server (no WEBHOOK_SECRET).",
                    }
        if "metadata" in request:
            request["metadata"] = _metadata_schema(request["metadata"], settings, components)
        if "deadline_seconds" in request:  # the server's bound, which the model cannot know
            request["deadline_seconds"]["anyOf"][0]["maximum"] = settings.task_deadline_seconds
        if "agent" in request:
            enabled = registry.enabled_names(test_agents=settings.test_agents)
            components["schemas"]["TaskRequest"]["allOf"] = [_params_rule(name) for name in enabled]
            request["agent"] = {
                "anyOf": [{"type": "string", "enum": enabled}, {"type": "null"}],
                "title": "Agent",
                "description": request["agent"].get("description", ""),
            }
        if settings.api_auth == "off":
            components.pop("securitySchemes", None)
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    operation.pop("security", None)
                    operation.get("responses", {}).pop("401", None)
        app.openapi_schema = document
    return app.openapi_schema


def _not_null(parameter: dict[str, Any]) -> None:
    """An HTTP parameter is absent or a string, never JSON null (a client sending the text
    `null` would be refused): drop the null branch FastAPI writes for `X | None`."""
    schema = parameter.get("schema", {})
    choices = schema.get("anyOf")
    if choices and {"type": "null"} in choices:
        kept = [choice for choice in choices if choice != {"type": "null"}]
        rest = {key: value for key, value in schema.items() if key != "anyOf"}
        parameter["schema"] = (kept[0] if len(kept) == 1 else {"anyOf": kept}) | rest


def _params_rule(agent: str) -> dict[str, Any]:
    """When `agent` is this one, `metadata` holds its parameters as its `Params` declares."""
    declared = registry.params_schema(agent).get("properties", {})
    parameters = {
        name: {key: value for key, value in spec.items() if key not in ("default", "title")}
        for name, spec in declared.items()
    }
    return {
        "if": {"properties": {"agent": {"const": agent}}, "required": ["agent"]},
        "then": {"properties": {"metadata": {"properties": parameters}}},
    }


def _metadata_schema(
    generated: dict[str, Any], settings: Settings, components: dict[str, Any]
) -> dict[str, Any]:
    """`metadata` exactly as `json_problem` checks it: values nested at most
    METADATA_MAX_DEPTH levels (one component schema per level), numbers within 64 bits."""
    schemas = components.setdefault("schemas", {})
    depth = settings.metadata_max_depth
    scalars: list[dict[str, Any]] = [
        {"type": "null"},
        {"type": "boolean"},
        {"type": "string"},
        {"type": "number", "minimum": NUMBER_MIN, "maximum": NUMBER_MAX},
    ]
    for level in range(depth, 0, -1):
        choices = list(scalars)
        if level < depth:
            inner = {"$ref": f"#/components/schemas/MetadataValue{level + 1}"}
            choices += [
                {"type": "array", "items": inner},
                {"type": "object", "additionalProperties": inner},
            ]
        schemas[f"MetadataValue{level}"] = {"anyOf": choices}
    return {
        "type": "object",
        "maxProperties": generated.get("maxProperties", 64),
        "additionalProperties": {"$ref": "#/components/schemas/MetadataValue1"},
        "description": generated.get("description", ""),
        "title": "Metadata",
    }


def script_hashes() -> list[str]:
    """CSP hashes of the inline scripts of the docs pages (they change with FastAPI)."""
    pages = (_swagger().body, _redoc().body)
    return [
        base64.b64encode(hashlib.sha256(script).digest()).decode()
        for page in pages
        for script in _INLINE_SCRIPT.findall(bytes(page))
    ]


def router(app: FastAPI, settings: Settings) -> APIRouter:
    routes = APIRouter()
    if settings.api_docs == "off":
        return routes
    guard = [Depends(identity.caller)] if settings.api_docs == "protected" else []
    shown = {"include_in_schema": False, "dependencies": guard}

    @routes.get("/openapi.json", **shown)  # type: ignore[arg-type]
    async def openapi() -> JSONResponse:
        return JSONResponse(schema(app, settings))

    @routes.get("/docs", **shown)  # type: ignore[arg-type]
    async def swagger() -> HTMLResponse:
        return _swagger()

    @routes.get("/redoc", **shown)  # type: ignore[arg-type]
    async def redoc() -> HTMLResponse:
        return _redoc()

    return routes


def _swagger() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="agentprod API")


def _redoc() -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title="agentprod API")
