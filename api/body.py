"""Reading request bodies with a size limit, refusing oversized ones before buffering them."""

from __future__ import annotations

from fastapi import Request

from monitor.errors import PayloadTooLarge


async def read_limited_body(request: Request, limit: int) -> bytes | bytearray:
    """The body, at most ``limit`` bytes. With a Content-Length the buffer is allocated once and
    filled in place (bulk Arrow bodies are tens of MB: no chunk list, no join copy)."""
    declared = request.headers.get("content-length")
    size = int(declared) if declared and declared.isdigit() else None
    if size is not None and size > limit:
        raise PayloadTooLarge(f"body of {size} bytes exceeds the limit of {limit} bytes; send smaller batches")
    if size is not None:
        buffer = bytearray(size)
        view = memoryview(buffer)
        filled = 0
        async for chunk in request.stream():
            end = filled + len(chunk)
            if end > size:
                raise PayloadTooLarge("body is longer than its Content-Length")
            view[filled:end] = chunk
            filled = end
        return buffer if filled == size else buffer[:filled]
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes; send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)
