"""Files the bot sends: uploads, reuse by file_id, and what Telegram says when it can't.

Telegram measures an uploaded photo (and refuses what is not an image), caps photo uploads
at 10 MB and other uploads at 50 MB, and cannot fetch a URL here because nothing outside
is reachable, so a URL gets the error Telegram gives for an unreachable one.
"""

from __future__ import annotations

import mimetypes
import struct

from sandbox.spec import ApiError, Upload, bad_request
from sandbox.world import StoredFile, World

PHOTO_LIMIT = 10 * 1024 * 1024
UPLOAD_LIMIT = 50 * 1024 * 1024
DOWNLOAD_LIMIT = 20 * 1024 * 1024


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, JPEG, GIF or WebP image; None if it is none of them."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        if data[12:16] == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(
                data[27:30], "little"
            )
        return 1, 1
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
    return None


def too_large() -> ApiError:
    return ApiError(413, "Request Entity Too Large")


def store_upload(world: World, kind: str, upload: Upload) -> StoredFile:
    """Keep an uploaded file as Telegram would, or refuse it as Telegram does."""
    if kind == "photo":
        if len(upload.data) > PHOTO_LIMIT:
            raise too_large()
        size = image_size(upload.data)
        if size is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        return world.store_file(
            "photo", upload.data, upload.filename or "photo.jpg", "image/jpeg", *size
        )
    if len(upload.data) > UPLOAD_LIMIT:
        raise too_large()
    if not upload.data:
        raise bad_request("file must be non-empty")
    name = upload.filename or "document"
    mime = (
        upload.content_type
        if upload.content_type not in ("", "application/octet-stream")
        else (mimetypes.guess_type(name)[0] or "application/octet-stream")
    )
    return world.store_file("document", upload.data, name, mime)


def resolve_input_file(
    world: World, kind: str, value: Upload | str, uploads: dict[str, Upload]
) -> StoredFile:
    """An InputFile or String parameter: an upload, attach://name, a file_id or a URL."""
    if isinstance(value, str) and value.startswith("attach://"):
        upload = uploads.get(value.removeprefix("attach://"))
        if upload is None:
            raise bad_request(f'can\'t find attached file "{value.removeprefix("attach://")}"')
        value = upload
    if isinstance(value, Upload):
        return store_upload(world, kind, value)
    if value.startswith(("http://", "https://")):
        raise bad_request("failed to get HTTP URL content")
    stored = world.files.get(value)
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if stored.kind != kind:
        raise bad_request(f"can't use file of type {stored.kind.title()} as {kind.title()}")
    return stored


def photo_sizes(stored: StoredFile) -> list[dict[str, object]]:
    return [
        {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": stored.width,
            "height": stored.height,
            "file_size": len(stored.data),
        }
    ]


def document(stored: StoredFile) -> dict[str, object]:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_name": stored.file_name,
        "mime_type": stored.mime_type,
        "file_size": len(stored.data),
    }
