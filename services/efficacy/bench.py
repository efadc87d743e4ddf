"""Benchmarks of issue 8: evaluating every open clock for cards, and the KPI query over a year of applications,
each at growing sizes so the growth shows (`python -m services.efficacy.bench [--max-clocks N] [--max-apps N]`).

Clock evaluation runs through the real store (SQLite file, keyset batches of running clocks) and the domain;
the KPI query runs through the real `application_fact` table. Prints one JSON line per measurement."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from services.efficacy.config import EfficacyConfig
from services.efficacy.domain.calendar import CHINA
from services.efficacy.domain.clocks import CardPolicy, ClockState, watch_day
from services.efficacy.domain.kpis import ApplicationFacts, figures
from services.efficacy.service import evaluate
from services.efficacy.store import kpis as kpi_store
from services.efficacy.store.calendar import current_calendar, seed_from_library
from services.efficacy.store.cases import _jsonable
from services.efficacy.store.tables import application_fact, clock, messaging
from shared.db import Database
from shared.migrate import upgrade


async def _db(tmp: Path, name: str) -> Database:
    url = f"sqlite+aiosqlite:///{tmp / name}.db"
    await asyncio.to_thread(upgrade, "efficacy", url)
    db = Database(url, info={"service": "efficacy", "messaging": messaging})
    async with db.transaction() as s:
        await seed_from_library(s)
    return db


async def bench_clocks(tmp: Path, n: int) -> dict[str, object]:
    db = await _db(tmp, f"clocks-{n}")
    rng = random.Random(n)
    # A city's open cases: accepted over the 40 days before the evaluation, limits of 5 to 60 working days; some
    # near their deadline, some overdue, most not yet watched.
    start = datetime(2026, 9, 24, 9, tzinfo=CHINA)
    async with db.transaction() as sess:
        cal = await current_calendar(sess)
    rows = []
    for i in range(n):
        s = ClockState(clock_id=f"application:A{i:07d}", kind="application", application_id=f"A{i:07d}",
                       department=f"D{i % 11}", started_at=start + timedelta(hours=rng.randrange(0, 24 * 40)),
                       limit_value=rng.choice([5, 10, 20, 20, 30, 60, 60]), statutory_value=60)
        rows.append(dict(clock_id=s.clock_id, application_id=s.application_id, kind="application",
                         department=s.department, state="running", body=_jsonable(s.to_json()),
                         watch_on=watch_day(s, cal, CardPolicy()), updated_at=datetime.now(UTC)))
    async with db.transaction() as sess:
        for i in range(0, n, 5000):
            await sess.execute(clock.insert(), rows[i:i + 5000])
    as_of = datetime(2026, 11, 2, 12, tzinfo=CHINA)
    watched = sum(1 for r in rows if r["watch_on"] is None or r["watch_on"] <= as_of.date())
    del rows
    tracemalloc.start()
    t0 = time.perf_counter()
    async with db.transaction() as sess:
        raised = await evaluate(sess, await current_calendar(sess), datetime(2026, 11, 2, 12, tzinfo=CHINA),
                                EfficacyConfig())
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t1 = time.perf_counter()
    async with db.transaction() as sess:
        again = await evaluate(sess, await current_calendar(sess), datetime(2026, 11, 2, 12, tzinfo=CHINA),
                               EfficacyConfig())
    steady = time.perf_counter() - t1
    await db.dispose()
    return {"bench": "evaluate_open_clocks", "clocks": n, "watched": watched, "cards_raised": len(raised), "seconds": round(elapsed, 3),
            "peak_mib": round(peak / 2**20, 1), "second_pass_seconds": round(steady, 3),
            "second_pass_raised": len(again), "per_clock_us": round(elapsed / n * 1e6, 1)}


async def bench_kpis(tmp: Path, n: int) -> dict[str, object]:
    db = await _db(tmp, f"kpis-{n}")
    rng = random.Random(n)
    day0 = date(2026, 1, 1)
    batch = []
    async with db.transaction() as sess:
        for i in range(n):
            anchor = day0 + timedelta(days=rng.randrange(365))
            f = ApplicationFacts(f"A{i:08d}", department=f"D{i % 11}", item_code=f"I{i % 300}",
                                 service_point=f"P{i % 40}", channel=rng.choice(["online", "mobile", "window"]),
                                 submitted_at=datetime.combine(anchor, datetime.min.time(), CHINA).isoformat(),
                                 visits=rng.choice([0, 0, 1, 2]), corrections=rng.choice([0, 0, 0, 1]),
                                 delivered_electronically=rng.random() < 0.5, promised_days=10,
                                 used_workdays=rng.randrange(1, 15), on_time=rng.random() < 0.9)
            batch.append(dict(application_id=f.application_id, body=f.to_json(), anchor_on=anchor,
                              department=f.department, item_code=f.item_code, service_point=f.service_point,
                              online=f.online, delivered_electronically=f.delivered_electronically, visits=f.visits,
                              corrections=f.corrections, on_time=f.on_time, used_workdays=f.used_workdays,
                              promised_days=f.promised_days))
            if len(batch) == 10000:
                await sess.execute(application_fact.insert(), batch)
                batch = []
        if batch:
            await sess.execute(application_fact.insert(), batch)
    tracemalloc.start()
    t0 = time.perf_counter()
    async with db.transaction() as sess:
        totals = await kpi_store.totals_in(sess, start=date(2026, 1, 1), end=date(2026, 12, 31), department=None,
                                           item=None, service_point=None)
        figs = figures(totals, EfficacyConfig().targets)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t1 = time.perf_counter()
    async with db.transaction() as sess:
        dept = await kpi_store.totals_in(sess, start=date(2026, 1, 1), end=date(2026, 12, 31), department="D3",
                                         item=None, service_point=None)
        figures(dept, EfficacyConfig().targets)
    dept_elapsed = time.perf_counter() - t1
    await db.dispose()
    return {"bench": "kpi_year", "applications": n, "seconds": round(elapsed, 3), "peak_mib": round(peak / 2**20, 1),
            "one_department_seconds": round(dept_elapsed, 3),
            "online_application_rate": next(f.value for f in figs if f.key == "online_application_rate")}


async def main(max_clocks: int, max_apps: int) -> None:
    with tempfile.TemporaryDirectory(prefix="efficacy-bench-") as tmp:
        n = 1000
        while n <= max_clocks:
            print(json.dumps(await bench_clocks(Path(tmp), n)), flush=True)
            n *= 10
        n = 10000
        while n <= max_apps:
            print(json.dumps(await bench_kpis(Path(tmp), n)), flush=True)
            n *= 10


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--max-clocks", type=int, default=100_000)
    p.add_argument("--max-apps", type=int, default=1_000_000)
    a = p.parse_args()
    asyncio.run(main(a.max_clocks, a.max_apps))
