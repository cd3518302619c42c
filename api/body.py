"""Reading request bodies with a size limit, refusing oversized ones before buffering them."""

from __future__ import annotations

from fastapi import Request

from monitor.errors import PayloadTooLarge


async def read_limited_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {int(declared)} bytes exceeds the limit of {limit} bytes; send smaller batches")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes; send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)
