"""The API's error vocabulary and its JSON answers.

Routes raise `ClientError` (4xx naming the field) or `Unavailable` (503 + Retry-After naming the
dependency); the store's `StoreUnavailable` and FastAPI's validation errors are mapped here, so
no route builds an error response by hand.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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

    def __init__(self, status: int, field: str, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message, self.kind = status, field, message, kind


def install(app: FastAPI, *, retry_after: int) -> None:
    """Register the handlers that turn the vocabulary into JSON answers."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_problem(item) for item in error.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(ClientError)
    async def client_error(_: Request, error: ClientError) -> JSONResponse:
        return answer(error.status, error.field, error.message, error.kind)

    @app.exception_handler(Unavailable)
    async def unavailable(_: Request, error: Unavailable) -> JSONResponse:
        return _unavailable(error.dependency, error.detail, retry_after)

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(_: Request, error: StoreUnavailable) -> JSONResponse:
        metrics.SUBMIT_REFUSED.labels(dependency="redis").inc()
        return _unavailable("redis", f"task store unavailable: {error}", retry_after)


def answer(status: int, field: str, message: str, kind: str) -> JSONResponse:
    """The JSON body of every 4xx: one problem naming the field."""
    return JSONResponse(
        {"detail": [{"field": field, "msg": message, "type": kind}]}, status_code=status
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
