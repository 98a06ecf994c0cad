"""Reading a request body with a size limit, without reading past it."""

from __future__ import annotations

from fastapi import Request

from orchestrator.server.problems import Problem

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB: GitHub caps its payloads at 25 MB, but ours never come near this


def _too_large(limit: int) -> Problem:
    return Problem(413, "Content Too Large", f"the body is larger than {limit} bytes")


async def read_limited(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, or 413 as soon as it is known to be over `limit`: a declared Content-Length over it is
    refused before a byte is read, and a body without one (chunked) or lying about it is counted as it
    streams and dropped at the first chunk past the limit."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _too_large(limit)
        except ValueError:
            raise Problem(400, "Bad Request", "Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
