"""Public reads that cost nothing twice: a rendered body kept in the process for a short time, with a strong
`ETag` (a hash of the body) and `304 Not Modified` when the client already holds it (`If-None-Match`).

What is cached is keyed by what it was rendered from (an item's code and published version). Every commit of
the process that wrote events (a publication, a department renamed: the service's own writes all announce
themselves) empties the cache at once; another replica's writes show here after at most `ttl` seconds. Each
replica keeps its own; nothing here is shared or authoritative."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response


@dataclass(frozen=True)
class Cached:
    body: bytes
    media_type: str
    etag: str
    expires: float


class ResponseCache:
    """A small LRU of rendered bodies, each valid for `ttl` seconds."""

    def __init__(self, ttl: float = 5.0, max_entries: int = 2000, *,
                 invalidated_by: asyncio.Event | None = None) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self.invalidated_by = invalidated_by
        self._entries: OrderedDict[Hashable, Cached] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable, *, count_miss: bool = True) -> Cached | None:
        """The entry, if cached and fresh. `count_miss=False`: a look that leaves a miss to be counted by the
        `get` that follows it (a fast path that hands the request to its route on a miss)."""
        if self.invalidated_by is not None and self.invalidated_by.is_set():
            self.invalidated_by.clear()
            self._entries.clear()
        entry = self._entries.get(key)
        if entry is None or entry.expires < time.monotonic():
            self.misses += count_miss
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: Hashable, body: bytes, media_type: str) -> Cached:
        entry = Cached(body, media_type, etag_of(body), time.monotonic() + self.ttl)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    def clear(self) -> None:
        self._entries.clear()


def app_cache(request: Request, name: str, ttl: float = 5.0) -> ResponseCache:
    """The app's cache of that name, emptied by each of its database's commits that wrote events."""
    state = request.app.state
    caches: dict[str, ResponseCache] | None = getattr(state, "response_caches", None)
    if caches is None:
        caches = state.response_caches = {}
    if name not in caches:
        caches[name] = ResponseCache(ttl, invalidated_by=state.db.commit_signal())
    return caches[name]


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(request: Request, etag: str) -> bool:
    """`If-None-Match` names this representation (a list, `*`, or weak forms of the same tag)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


def respond(request: Request, entry: Cached, cache_control: str) -> Response:
    headers = {"ETag": entry.etag, "Cache-Control": cache_control}
    if matches(request, entry.etag):
        return Response(status_code=304, headers=headers)
    return Response(entry.body, media_type=entry.media_type, headers=headers)
