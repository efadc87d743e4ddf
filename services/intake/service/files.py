"""The file store uploads go to (`app.state.file_store`, by default files under `var/intake-files`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from services.intake.store.files import FileStore, LocalFileStore

#: Reads at most n bytes of an uploaded file (the route hands over the request's file part).
Reader = Callable[[int], Awaitable[bytes]]


def file_store(state: Any) -> FileStore:
    store: FileStore | None = getattr(state, "file_store", None)
    if store is None:
        root: Path = state.settings.platform.var_dir / "intake-files"
        store = state.file_store = LocalFileStore(root)
    return store


async def read_file(files: FileStore, key: str) -> bytes:
    return await files.get(key)
