"""Floors paced at an offered rate (bench/floors.py `paced`): what a paced figure such as submit p50 at 5/s is
divided by. Each call starts on the rate's schedule, and only the call is timed, not the wait before it."""

from __future__ import annotations

import asyncio
import time

from bench.floors import paced


async def test_calls_start_on_the_rates_schedule_and_only_the_call_is_timed():
    starts: list[float] = []

    async def op() -> None:
        starts.append(time.perf_counter())
        await asyncio.sleep(0.01)

    fig = await paced(6, op, rate=20, warmup=2)
    assert fig["n"] == 6 and len(starts) == 8
    measured = starts[2:]
    gaps = [b - a for a, b in zip(measured, measured[1:], strict=False)]
    # 1/20 s apart (a call of 10 ms fits inside the period, so the schedule, not the call, sets the pace).
    assert all(0.045 <= g <= 0.08 for g in gaps), gaps
    # The samples are the call's 10 ms, not the period's 50.
    assert 10 <= fig["p50_ms"] < 40, fig


async def test_a_call_longer_than_the_period_is_not_followed_by_a_wait():
    async def slow() -> None:
        await asyncio.sleep(0.03)

    t = time.perf_counter()
    fig = await paced(4, slow, rate=100, warmup=0)
    # Behind schedule, the next call starts at once: four calls of 30 ms, not four periods plus four calls.
    assert time.perf_counter() - t < 0.03 * 4 + 0.05 and fig["p50_ms"] >= 30
