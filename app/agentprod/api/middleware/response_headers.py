"""Security headers on every response, and the caller's rate headers on the allowed ones.

`nosniff`, frame denial and no referrer everywhere; a content security policy that allows
nothing for the JSON answers and only what the docs page needs there; HSTS when configured
(an API served over TLS only). The rate headers come from `identity.caller`, which leaves them
in the request state.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentprod.api.identity import RATE_HEADERS_STATE

API_CSP = "default-src 'none'; frame-ancestors 'none'"
#: Swagger UI and ReDoc load their script and style from jsDelivr; the page's own init script
#: is allowed by its hash (`docs_csp`).
DOCS_PATHS = ("/docs", "/redoc")
#: The console's page: its own script, style and JSON only (api/console.py).
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)


def docs_csp(script_hashes: list[str]) -> str:
    scripts = " ".join(f"'sha256-{digest}'" for digest in script_hashes)
    return (
        "default-src 'none'; "
        f"script-src https://cdn.jsdelivr.net {scripts}; "
        "style-src https://cdn.jsdelivr.net https://fonts.googleapis.com; "
        "font-src https://fonts.gstatic.com; "
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
        "connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
    )


class ResponseHeaders:
    def __init__(self, app: ASGIApp, *, hsts_seconds: int, docs_policy: str) -> None:
        self._app = app
        self._fixed = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if hsts_seconds:
            value = f"max-age={hsts_seconds}; includeSubDomains".encode()
            self._fixed.append((b"strict-transport-security", value))
        self._docs_policy = docs_policy.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        docs = scope["path"] in DOCS_PATHS
        policy = self._docs_policy if docs else API_CSP.encode()
        if scope["path"] == "/console":
            policy = CONSOLE_CSP.encode()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [*self._fixed, (b"content-security-policy", policy)]
                state = scope.get("state") or {}
                for name, value in (state.get(RATE_HEADERS_STATE) or {}).items():
                    extra.append((name.lower().encode(), value.encode()))
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, with_headers)
