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
from agentprod.settings import Settings

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def schema(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The app's OpenAPI document (built once), adjusted to this process's agents and auth."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        components = document.get("components", {})
        agent = components.get("schemas", {}).get("TaskRequest", {}).get("properties", {})
        if "agent" in agent:
            agent["agent"] = {
                "anyOf": [{"type": "string", "enum": registry.names()}, {"type": "null"}],
                "title": "Agent",
                "description": agent["agent"].get("description", ""),
            }
        if settings.api_auth == "off":
            components.pop("securitySchemes", None)
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    operation.pop("security", None)
                    operation.get("responses", {}).pop("401", None)
        app.openapi_schema = document
    return app.openapi_schema


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
