"""Reading a response body under a size cap, for the asyncio fetchers (aiohttp)."""

from __future__ import annotations

from typing import Any

_CHUNK = 65536


async def read_capped(response: Any, cap: int) -> bytes | None:
    """The decoded body of an aiohttp ``response``, or None when it exceeds ``cap`` bytes.

    Decoded bytes are counted, so the cap also bounds a compression bomb; reading
    stops at the first byte past the cap, and a declared length over it is refused
    before anything is read.
    """
    if (response.content_length or 0) > cap and "Content-Encoding" not in response.headers:
        return None
    body = bytearray()
    while len(body) <= cap:
        chunk = await response.content.read(min(_CHUNK, cap + 1 - len(body)))
        if not chunk:
            return bytes(body)
        body.extend(chunk)
    return None
