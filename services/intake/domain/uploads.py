"""Rules for uploaded files: the type and size the item's material allows, the declared hash, the name kept and the
content type served."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

import filetype

from services.intake.domain.findings import Finding

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


#: Longest file name kept (characters); longer names keep their start and their extension.
MAX_NAME = 120


def safe_name(filename: str | None) -> str:
    """The name an upload is kept and offered for download under: its base name only (no directories, so
    `../../etc/passwd.pdf` is `passwd.pdf`), without control or formatting characters (a right-to-left override
    can make `exe.pdf` read as `fdp.exe`), no leading dots, at most `MAX_NAME` characters."""
    base = unicodedata.normalize("NFC", (filename or "").replace("\\", "/").rsplit("/", 1)[-1])
    base = "".join(c for c in base if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    base = base.strip().lstrip(".").strip()
    if len(base) > MAX_NAME:
        stem, dot, ext = base.rpartition(".")
        keep = f"{dot}{ext}" if dot and stem and len(ext) <= 10 else ""
        base = base[: MAX_NAME - len(keep)] + keep
    return base or "file"


def detected_type(data: bytes) -> str:
    """The media type the content itself shows (its magic bytes), whatever the client declared: a PDF declared
    `text/html` is served as `application/pdf`, and unknown content as `application/octet-stream`, never as
    something a browser would render."""
    return filetype.guess_mime(data[:8192]) or "application/octet-stream"
