"""Pure ASGI middleware of the API, one per module (no per-request cost of BaseHTTPMiddleware)."""
