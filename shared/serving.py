"""Serving an ASGI app with uvicorn without waking ten times a second.

uvicorn's `Server.main_loop` sleeps 0.1 s between ticks, in every process, whatever the traffic. A tick does two
things: it refreshes the `Date` header (once a second, every tenth tick) and checks whether the server should
exit. At idle those wakeups were most of a process's CPU (the console, which has nothing else to do, spent
0.003 cores on them; ten processes of the platform each paid it). `QuietServer` ticks once a second, which is
as often as the `Date` header changed anyway, and is woken at once when it is told to exit (a signal, or
`should_exit` set by a test), so shutting down is not slower than before."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
from typing import Any

import uvicorn
from uvicorn.main import STARTUP_FAILURE

#: Seconds between two ticks of `QuietServer`: the Date header is at most this stale (uvicorn's own refreshes it
#: once a second too); an exit is seen at once, not at the next tick.
TICK_SECONDS = 1.0
#: How long an idle keep-alive connection stays open. uvicorn's default (5 s) is httpx's default keep-alive expiry
#: too: a client that reuses a connection at 5 s sends on one the server is closing, and the request is lost with
#: a bare `ReadError` (the chaos suite's idempotency storm, 1-4 of 1,000 requests under load). The side that
#: closes should be the client, as behind a load balancer, whose idle timeout a server outlives the same way.
KEEP_ALIVE_SECONDS = 75
#: The cyclic garbage collector's young-generation threshold in a serving process (`YIMEN_GC_YOUNG_THRESHOLD`;
#: CPython's own is 700). A request or an event batch leaves thousands of short-lived containers (SQLAlchemy's
#: statement and result objects, pydantic's models, nats-py's messages), so at 700 a young collection ran one to
#: two times per five-department case in workflow and each one traversed whatever the in-flight requests held
#: at that moment. Most of those objects are gone by the next collection at a larger threshold and are never
#: traversed at all. The cost is memory: at most this many more container objects live until the next collection.
GC_YOUNG_THRESHOLD = 20_000


def tune_gc(young_threshold: int | None = None) -> None:
    """Before serving: what start-up allocated (modules, the app, its routes and models) is frozen out of the
    collector's generations, so no collection traverses it again, and young collections run at `young_threshold`
    (default: `YIMEN_GC_YOUNG_THRESHOLD`, else `GC_YOUNG_THRESHOLD`; 0 leaves CPython's thresholds as they are)."""
    if young_threshold is None:
        raw = os.environ.get("YIMEN_GC_YOUNG_THRESHOLD", "").strip()
        try:
            young_threshold = int(raw) if raw else GC_YOUNG_THRESHOLD
        except ValueError:
            raise SystemExit(f"YIMEN_GC_YOUNG_THRESHOLD must be a whole number (0 keeps CPython's), not {raw!r}") from None
        if young_threshold < 0:
            raise SystemExit(f"YIMEN_GC_YOUNG_THRESHOLD must be 0 or more, not {young_threshold}")
    if young_threshold == 0:
        return
    gc.collect()
    gc.freeze()
    _young, *older = gc.get_threshold()
    gc.set_threshold(young_threshold, *older)


class QuietServer(uvicorn.Server):
    """A uvicorn server whose main loop ticks every `TICK_SECONDS` and wakes at once when `should_exit` is set."""

    tick_seconds = TICK_SECONDS

    def __init__(self, config: uvicorn.Config) -> None:
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._should_exit = False
        super().__init__(config)
        self.ticks = 0

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        # Set from uvicorn's signal handler or from another thread (a test's server): either way through the
        # loop's self-pipe, which wakes its selector at once.
        if value and self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing left to wake
                self._loop.call_soon_threadsafe(self._wake.set)

    async def on_tick(self, counter: int) -> bool:
        self.ticks += 1
        return await super().on_tick(counter)

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        # uvicorn refreshes the Date header on ticks whose counter is a multiple of 10: every tick here is one.
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000
            if not self._should_exit:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.tick_seconds)
            should_exit = await self.on_tick(counter)


def server_config(app: Any, **config: Any) -> uvicorn.Config:
    """uvicorn's configuration for a process of the platform: `config`, with the platform's keep-alive unless given."""
    config.setdefault("timeout_keep_alive", KEEP_ALIVE_SECONDS)
    return uvicorn.Config(app, **config)


def serve(app: Any, **config: Any) -> None:
    """`uvicorn.run(app, **config)` with `QuietServer`: the entry point of every process of the platform. Like
    `uvicorn.run`, a server that did not start exits with uvicorn's start-up failure code (3)."""
    tune_gc()
    server = QuietServer(server_config(app, **config))
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
