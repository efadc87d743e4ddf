"""The periodic background job every service runs the same way (deemed approvals, card evaluation, webhook
and message dispatch, housekeeping, daily jobs).

`periodic(...)` turns one round of work (`async def round(ctx) -> Any`) into a background hook for
`ServiceSpec.background`: the service's lifespan starts it after the bus is up and cancels it on shutdown. The
rounds never overlap (one task runs them one after another); a round that raises is logged and the next one runs
after the pause, so a database that is down for a minute costs a few warnings, not the job; cancellation (the
service stopping) is never swallowed. Between rounds the job waits `interval` seconds plus up to `jitter` of it
at random, so replicas started together do not hit the database in step; `wake` (e.g. the database's commit
signal) ends the wait early, and with `drain` a round that reports work done (a truthy result) is followed at
once by the next, until a round finds nothing."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger("yimen.jobs")

C = TypeVar("C")

#: Seconds, or a function giving them (read before each pause, so a changed setting applies at the next round).
Interval = float | Callable[[], float]


def pause_seconds(interval: Interval, jitter: float, rng: Callable[[], float] = random.random) -> float:
    """The wait before the next round: the interval plus up to `jitter` (a fraction) of it; never negative."""
    base = interval() if callable(interval) else interval
    return max(0.0, base) * (1.0 + max(0.0, jitter) * rng())


async def run_periodically(
    name: str,
    round: Callable[[], Awaitable[Any]],
    *,
    interval: Interval,
    jitter: float = 0.1,
    first_after_pause: bool = False,
    wake: asyncio.Event | None = None,
    drain: bool = False,
) -> None:
    """Run `round` until cancelled: see the module's docstring. Returns only by cancellation."""
    if first_after_pause:
        await _pause(interval, jitter, wake)
    while True:
        if wake is not None:
            wake.clear()
        busy: Any = False
        try:
            busy = await round()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # logged, and retried at the next round: a background job must not die
            log.warning("%s failed: %r; next round in %.1f s", name, exc, pause_seconds(interval, 0))
            busy = False
        if drain and busy:
            await asyncio.sleep(0)  # let others run between two busy rounds
            continue
        await _pause(interval, jitter, wake)


async def _pause(interval: Interval, jitter: float, wake: asyncio.Event | None) -> None:
    seconds = pause_seconds(interval, jitter)
    if wake is None:
        await asyncio.sleep(seconds)
        return
    try:
        await asyncio.wait_for(wake.wait(), seconds)
    except TimeoutError:
        pass


def periodic(
    round: Callable[[C], Awaitable[Any]],
    *,
    interval: float | Callable[[C], float],
    name: str | None = None,
    jitter: float = 0.1,
    first_after_pause: bool = False,
    wake: Callable[[C], asyncio.Event] | None = None,
    drain: bool = False,
) -> Callable[[C], Coroutine[Any, Any, None]]:
    """A background hook (`ServiceSpec.background`) running `round(ctx)` periodically.

    `interval` is seconds or a function of the context giving them (a setting, read before every pause);
    `wake(ctx)` gives an event that ends a pause early (called once, when the job starts)."""
    job_name: str = name or str(getattr(round, "__name__", "job"))

    async def job(ctx: C) -> None:
        def every() -> float:
            return float(interval) if isinstance(interval, int | float) else interval(ctx)

        async def one_round() -> Any:
            return await round(ctx)

        await run_periodically(job_name, one_round, interval=every, jitter=jitter,
                               first_after_pause=first_after_pause, wake=wake(ctx) if wake else None, drain=drain)

    job.__name__ = job_name
    job.__qualname__ = job_name
    return job
