"""Rules for uploaded files: the type and size the item's material allows, and the declared hash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.intake.domain.completeness import Finding

_ALIASES = {"jpeg": "jpg", "tif": "tiff"}
#: Leading bytes of the formats items ask for, so a renamed file of another type is refused.
_MAGIC = {
    "pdf": (b"%PDF",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "tiff": (b"II*\x00", b"MM\x00*"),
    "zip": (b"PK\x03\x04",),
    "ofd": (b"PK\x03\x04",),
}
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


def extension(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return _ALIASES.get(ext, ext)


def max_bytes(material: Mapping[str, Any]) -> int:
    return int(material.get("max_bytes") or DEFAULT_MAX_BYTES)


def check_type(material: Mapping[str, Any], filename: str, head: bytes) -> Finding | None:
    allowed = [_ALIASES.get(t.lower(), t.lower()) for t in material.get("file_types") or []]
    ext = extension(filename)
    if allowed and ext not in allowed:
        return Finding("file", "file_type", f"Only {', '.join(allowed)} files are accepted for this material.")
    magic = _MAGIC.get(ext)
    if magic and not head.startswith(magic):
        return Finding("file", "file_type", f"The file's content is not a {ext} file.")
    return None


def check_size(material: Mapping[str, Any], size: int) -> Finding | None:
    limit = max_bytes(material)
    if size > limit:
        return Finding("file", "max_bytes", f"The file is larger than {limit} bytes.")
    if size == 0:
        return Finding("file", "empty", "The file is empty.")
    return None


def check_hash(declared: str | None, actual: str) -> Finding | None:
    if declared and declared.strip().lower() != actual:
        return Finding("sha256", "sha256_mismatch", "The file's SHA-256 differs from the declared one; upload again.")
    return None
