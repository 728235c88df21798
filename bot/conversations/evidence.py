"""Evidence as it is stored: a chat file reference that says what kind of file it is.

Telegram sends a photo only as a photo and a file only as a file, and an album mixes no
files with photos; the Bot API calls ``file_id`` opaque, so the kind cannot be read back
from it. It is noted when the buyer sends the file: ``photo:<file_id>`` or
``document:<file_id>`` (file ids are URL-safe base64, never holding a colon). The domain
keeps references opaque; only the chat side writes and reads them.
"""

from __future__ import annotations

PHOTO, DOCUMENT = "photo", "document"
KINDS = (PHOTO, DOCUMENT)


def reference(kind: str, file_id: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"not a kind of evidence: {kind!r}")
    return f"{kind}:{file_id}"


def parse(ref: str) -> tuple[str, str]:
    """``(kind, file_id)``. A bare file id (a draft begun before kinds were noted) is taken
    for a photo; sending it corrects a wrong guess (see :mod:`bot.staff_group`)."""
    kind, colon, file_id = ref.partition(":")
    if colon and kind in KINDS and file_id:
        return kind, file_id
    return PHOTO, ref
