"""The API's error vocabulary and its JSON answers.

Routes raise `ClientError` (4xx naming the field) or `Unavailable` (503 + Retry-After naming the
dependency); the store's `StoreUnavailable` and FastAPI's validation errors are mapped here, so
no route builds an error response by hand.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from agentprod import metrics
from agentprod.store import StoreUnavailable


class Unavailable(Exception):
    """A dependency is down: 503 with Retry-After."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(detail)
        self.dependency = dependency
        self.detail = detail


class ClientError(Exception):
    """The request cannot be served as sent: `status` (4xx), the offending `field`, a `kind`."""

    def __init__(
        self,
        status: int,
        field: str,
        message: str,
        kind: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.field, self.message, self.kind = status, field, message, kind
        self.headers = headers


class Problem(BaseModel):
    """One thing wrong with a request: the field (`body`, `metadata.x`, `Authorization`...)."""

    field: str
    msg: str
    type: str
    loc: list[str | int] | None = None


class Problems(BaseModel):
    """Every 4xx answer."""

    detail: list[Problem]


class Outage(BaseModel):
    """A 503 answer: which dependency is down (retry after `Retry-After` seconds)."""

    detail: str
    dependency: str


def _documented(description: str, model: type[BaseModel], *headers: str) -> dict[str, Any]:
    return {
        "description": description,
        "model": model,
        "headers": {name: {"schema": {"type": "string"}} for name in headers},
    }


_RATE = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After")
#: The answers every authenticated route can give, for its OpenAPI `responses`.
COMMON: dict[int | str, dict[str, Any]] = {
    401: _documented("No API key, or one unknown or revoked", Problems, "WWW-Authenticate"),
    429: _documented("Over the key's rate or the tenant's queued-task cap", Problems, *_RATE),
    503: _documented("Redis or RocketMQ unreachable", Outage, "Retry-After"),
}
#: ... and the routes that read a JSON body.
WITH_BODY: dict[int | str, dict[str, Any]] = COMMON | {
    400: _documented("The body could not be read", Problems),
    413: _documented("The body or `content` is over its size limit", Problems),
    422: _documented("A field is invalid (named in `field`)", Problems),
}


def responses(*extra: int, body: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of a route: the common errors plus `extra` (404, 409, ...)."""
    descriptions = {404: "No such task (for this tenant)", 409: "Conflicts with its state"}
    documented = dict(WITH_BODY if body else COMMON)
    for status in extra:
        documented[status] = _documented(descriptions.get(status, "Refused"), Problems)
    return documented


def install(app: FastAPI, *, retry_after: int) -> None:
    """Register the handlers that turn the vocabulary into JSON answers."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_problem(item) for item in error.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(ClientError)
    async def client_error(_: Request, error: ClientError) -> JSONResponse:
        return answer(error.status, error.field, error.message, error.kind, error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        """Starlette's own refusals (400 unreadable body, 404 unknown path, 405 method) in the
        same JSON shape as ours."""
        if error.status_code == 405:  # every method of the path, not only the first route's
            error.headers = {"Allow": ", ".join(_methods(app, request))}
        kind = {400: "unreadable", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        field = "body" if error.status_code in (400, 413) else "path"
        return answer(
            error.status_code,
            field,
            str(error.detail),
            kind.get(error.status_code, "refused"),
            dict(error.headers) if error.headers else None,
        )

    @app.exception_handler(Unavailable)
    async def unavailable(_: Request, error: Unavailable) -> JSONResponse:
        return _unavailable(error.dependency, error.detail, retry_after)

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(_: Request, error: StoreUnavailable) -> JSONResponse:
        metrics.SUBMIT_REFUSED.labels(dependency="redis").inc()
        return _unavailable("redis", f"task store unavailable: {error}", retry_after)


def _methods(app: FastAPI, request: Request) -> list[str]:
    """The methods the app's routes serve at the request's path (from its OpenAPI paths)."""
    allowed: set[str] = set()
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, request.url.path):
            allowed |= {method.upper() for method in operations}
    return sorted(allowed)


def answer(
    status: int, field: str, message: str, kind: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON body of every 4xx: one problem naming the field."""
    return JSONResponse(
        {"detail": [{"field": field, "msg": message, "type": kind}]},
        status_code=status,
        headers=headers,
    )


def _unavailable(dependency: str, detail: str, retry_after: int) -> JSONResponse:
    return JSONResponse(
        {"detail": detail, "dependency": dependency},
        status_code=503,
        headers={"Retry-After": str(retry_after)},
    )


def _problem(item: Any) -> dict[str, Any]:
    """One validation problem, with `field` naming the offending field ("body" for bad JSON)."""
    loc = list(item["loc"])
    if item["type"] == "json_invalid":
        position = loc[1] if len(loc) > 1 else "?"
        return {
            "field": "body",
            "loc": ["body"],
            "msg": f"invalid JSON at position {position}: "
            f"{item.get('ctx', {}).get('error', item['msg'])}",
            "type": "json_invalid",
        }
    field = (
        ".".join(str(part) for part in loc[1:])
        if loc[:1] == ["body"]
        else ".".join(str(part) for part in loc)
    )
    return {"field": field or "body", "loc": loc, "msg": item["msg"], "type": item["type"]}
