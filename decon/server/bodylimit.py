"""Request bodies: at most ``max_bytes`` (413 beyond), delivered within ``timeout`` seconds (408).

Checked while the body streams in, for a declared Content-Length and for chunked bodies alike, so
an oversized body is refused after at most ``max_bytes`` of it were read, never held in memory.
The body that passes is handed to the application in one piece.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyLimitMiddleware:
    """Pure ASGI middleware (no buffering beyond ``max_bytes``)."""

    def __init__(self, app: Any, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send)
            return
        try:
            body = await asyncio.wait_for(self._read(receive), self.timeout)
        except TimeoutError:
            await _refuse(send, 408, f"request body not received within {self.timeout:g}s")
            return
        if body is None:  # the client went away
            return
        if len(body) > self.max_bytes:
            await self._too_large(send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Any) -> bytes | None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > self.max_bytes or not message.get("more_body", False):
                return bytes(body)

    async def _too_large(self, send: Any) -> None:
        await _refuse(send, 413, f"request body too large (limit {self.max_bytes} bytes)")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Any) -> Any:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Any, status: int, message: str) -> None:
    """Answer with ``{"error": message}`` and close the connection (the rest of the body is unread)."""
    payload = orjson.dumps({"error": message})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload, "more_body": False})
