"""The server's middlewares as plain ASGI callables: the request id, access log and
request metrics of every answer, the body limit, the rate limit, and the early refusal
of searches while an index's queue is over its bound.

Plain ASGI, not `@app.middleware("http")`: Starlette's `BaseHTTPMiddleware` runs each
request in a task group with memory streams, which cost the event loop more than the
rest of a small request's handling under load (measured with py-spy on
`benchmarks/load.py`'s overload part). A refusal here answers without reading the body,
validating the request or reaching a route.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from latesearch.serving import logs
from latesearch.serving.ratelimit import RateLimiter, retry_after

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger(logs.ACCESS_LOGGER)


async def answer(send: Send, status: int, body: dict[str, Any],
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
    """Send a JSON response."""
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def header(scope: Scope, name: bytes) -> str | None:
    """A request header's value (`name` in lower case), or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def api_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request carries, from its headers: X-API-Key, or Authorization: Bearer KEY."""
    if x_api_key is not None:
        return x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def api_key_of(scope: Scope) -> str | None:
    """`api_key` of a request's scope."""
    return api_key(header(scope, b"authorization"), header(scope, b"x-api-key"))


class Observation:
    """The request id (the client's X-Request-ID, or a new one) in the response's header
    and the JSON access log line; requests counted by route and status in `metrics`."""

    def __init__(self, app: App, metrics: Any) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = logs.request_id(header(scope, b"x-request-id"))
        started = time.perf_counter()
        status = 500

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()),
                                      (b"x-request-id", rid.encode())]  # fmt: skip
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._record(scope, rid, status, time.perf_counter() - started)

    def _record(self, scope: Scope, rid: str, status: int, seconds: float) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None) or scope.get("latesearch.route") or "unmatched"
        method = scope["method"]
        if self.metrics is not None and path != "/metrics":
            self.metrics.request(path, method, status, seconds)
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            access_log.info("%s %s %d", method, scope["path"], status, extra={"fields": {
                "request_id": rid, "method": method, "path": scope["path"],
                "status": status, "ms": round(seconds * 1000, 2),
                "client": client[0] if client else None}})  # fmt: skip


class BodyLimit:
    """413 for a request whose Content-Length is over `limit` bytes (or not a number)."""

    def __init__(self, app: App, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = header(scope, b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.limit):
                message = f"body of {length} bytes; the limit is {self.limit}"
                return await answer(send, 413, {"error": message, "field": "body"},
                                    {"Connection": "close"})  # fmt: skip
        await self.app(scope, receive, send)


def is_health(path: str) -> bool:
    path = path.rstrip("/")
    return path == "/health" or (path.startswith("/indexes/") and path.endswith("/health"))


class RateLimit:
    """`ServeConfig.rate_limit`: past a client's rate, 429 with Retry-After. A client is
    the server's API key when a request carries it, else the address it comes from;
    /health (and /indexes/NAME/health) is not counted (monitors poll it)."""

    def __init__(self, app: App, rate: float, burst: int | None, api_key: str | None) -> None:
        self.app, self.rate, self.api_key = app, rate, api_key
        self.limiter = RateLimiter(rate, burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_health(scope["path"]):
            return await self.app(scope, receive, send)
        key = api_key_of(scope)
        valid = key is not None and self.api_key is not None and hmac.compare_digest(
            key.encode(), self.api_key.encode())  # fmt: skip
        address = scope["client"][0] if scope.get("client") else ""
        wait = self.limiter.take("key" if valid else f"address {address}")
        if wait is None:
            return await self.app(scope, receive, send)
        message = (f"rate limit: {self.rate:g} requests per second per client "
                   f"(bursts of {self.limiter.burst:g}); retry after {wait:.2f} s")  # fmt: skip
        await answer(send, 429, {"error": message}, {"Retry-After": retry_after(wait)})


class Shedding:
    """A search for an index whose queue is over its bound gets the scheduler's 503
    (Retry-After) here, before its body is read or its parameters checked: under
    overload most requests are refused, and refusing must cost the event loop little.
    `refuse(scope)` is (the route, the `ServerBusyError`) for a request to refuse now,
    else None (the request goes on; its scheduler decides)."""

    def __init__(self, app: App, refuse: Callable[[Scope], Any]) -> None:
        self.app, self.refuse = app, refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refuse(scope)
            if refusal is not None:
                scope["latesearch.route"], err = refusal
                return await answer(send, 503, {"error": str(err)},
                                    {"Retry-After": str(err.retry_after)})  # fmt: skip
        await self.app(scope, receive, send)


def url_mode(query_string: bytes) -> str | None:
    """The `mode` URL parameter of a query string, or None."""
    for key, value in parse_qsl(query_string.decode("latin-1")):
        if key == "mode":
            return value
    return None
