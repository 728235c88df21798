"""Helpers shared by the sandbox tests (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
import struct
import zlib
from typing import Any

import aiohttp

from sandbox.app import RunningSandbox

ANN = {"id": 42, "first_name": "Ann", "username": "ann", "language_code": "en"}
BOB = {"id": 43, "first_name": "Bob", "username": "bob_staff", "language_code": "zh-hans"}


def png(width: int = 3, height: int = 2) -> bytes:
    """A real (tiny, grey) PNG, so the sandbox measures it as Telegram would."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def call(
    http: aiohttp.ClientSession, sb: RunningSandbox, method: str, **params: Any
) -> tuple[int, dict[str, Any]]:
    """A raw Bot API call with a JSON body: (HTTP status, decoded answer)."""
    async with http.post(f"{sb.bot_url}/{method}", json=params) as response:
        return response.status, await response.json()
