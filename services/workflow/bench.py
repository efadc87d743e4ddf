"""Fan-out/fan-in benchmark: `python -m services.workflow.bench [--cases 30] [--burst 100]`.

Runs the workflow service in-process on the real bus and database (SQLite file and an embedded NATS, or
`YIMEN_TEST_POSTGRES_URL` / `NATS_URL`), with a stand-in department system that decides each assigned task
at once on the bus. Reports, for parallel stages of 3 and 10 departments: p50/p99 from publishing the
accepted event to receiving `application.decided`, the same as a ratio to the floors (a NATS round trip, a
JetStream publish ack, a database commit), and completed cases per second under a burst."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import text

from services.workflow.app import create_app
from services.workflow.config import WorkflowConfig
from services.workflow.tests.helpers import application_accepted, item_published, parallel_step
from shared.events import Event, new_event
from shared.testing import DatabaseProvider, EmbeddedNats, TokenIssuer, eventually, make_settings, running_app

DEPARTMENTS = ["LD-SCJGJ", "LD-WJJ", "LD-XFJ", "LD-STHJJ", "LD-GAJ", "LD-MZJ", "LD-RSJ", "LD-ZJJ", "LD-JYJ",
               "LD-YBJ"]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@contextlib.asynccontextmanager
async def infrastructure() -> AsyncIterator[tuple[str, str]]:
    tmp = Path(tempfile.mkdtemp(prefix="yimen-bench-"))
    nats = None
    url = os.environ.get("NATS_URL", "")
    if not url:
        nats = EmbeddedNats().start()
        url = nats.url
    provider = DatabaseProvider(tmp) if os.environ.get("YIMEN_TEST_POSTGRES_URL") else None
    db_url = provider.url("workflow") if provider else f"sqlite+aiosqlite:///{tmp / 'workflow.db'}"
    try:
        yield url, db_url
    finally:
        if provider:
            provider.cleanup()
        if nats:
            nats.cleanup()


async def floors(client: Any) -> dict[str, float]:
    bus = client.app.state.bus
    nc = bus.nc
    subject = bus.names.subject("bench.echo." + uuid.uuid4().hex)

    async def echo(msg: Any) -> None:
        await msg.respond(msg.data)

    sub = await nc.subscribe(subject, cb=echo)
    rtt = []
    for _ in range(100):
        t = time.perf_counter()
        await nc.request(subject, b"x", timeout=2)
        rtt.append(time.perf_counter() - t)
    await sub.unsubscribe()
    ack = []
    for _ in range(100):
        ev = new_event("yimen.bench.floor.measured", source="/bench", subject=None, data={})
        t = time.perf_counter()
        await bus.publish(ev)
        ack.append(time.perf_counter() - t)
    commit = []
    db = client.app.state.db
    for i in range(100):
        t = time.perf_counter()
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO inbox (consumer, event_id, event_type, applied_at) "
                                 "VALUES ('bench', :id, 'bench', CURRENT_TIMESTAMP)"), {"id": f"b{i}-{uuid.uuid4().hex}"})
        commit.append(time.perf_counter() - t)
    return {"nats_rtt_ms": statistics.median(rtt) * 1000, "js_ack_ms": statistics.median(ack) * 1000,
            "db_commit_ms": statistics.median(commit) * 1000}


async def run(cases: int, burst: int) -> dict[str, Any]:
    async with infrastructure() as (nats_url, db_url):
        settings = make_settings("workflow", database_url=db_url, nats_url=nats_url,
                                 bus_prefix="bench" + uuid.uuid4().hex[:6], var_dir=Path(tempfile.mkdtemp()),
                                 relay_interval_seconds=0.05, log_level="WARNING")
        tokens = TokenIssuer()
        report: dict[str, Any] = {"database": db_url.split(":")[0], "nats": nats_url}
        async with running_app(create_app, settings, tokens=tokens,
                               config=WorkflowConfig(webhook_allow_private=True)) as client:
            bus = client.app.state.bus
            report["floors"] = await floors(client)
            decided_at: dict[str, float] = {}
            seen: set[str] = set()

            async def on_assigned(msg: Any) -> None:
                ev = Event.from_json(msg.data)
                if ev.id in seen:
                    return
                seen.add(ev.id)
                d = ev.data["department"]
                await bus.publish(new_event(f"yimen.department.{d}.decision", source=f"/department/{d}",
                                            subject=ev.data["task_id"],
                                            data={"task_id": ev.data["task_id"], "outcome": "approve"}))

            async def on_decided(msg: Any) -> None:
                ev = Event.from_json(msg.data)
                decided_at.setdefault(ev.data["application_id"], time.perf_counter())

            subs = [await bus.nc.subscribe(bus.names.subject("yimen.workflow.task.assigned"), cb=on_assigned),
                    await bus.nc.subscribe(bus.names.subject("yimen.workflow.application.decided"), cb=on_decided)]
            for n in (3, 10):
                code = f"BENCH-{n}-{uuid.uuid4().hex[:4]}"
                await bus.publish(item_published(code, 1, [parallel_step(DEPARTMENTS[:n])]))
                await asyncio.sleep(0.5)
                latencies = []
                for _ in range(cases):
                    ev = application_accepted(code, 1)
                    app_id = ev.data["application_id"]
                    t = time.perf_counter()
                    await bus.publish(ev)
                    await eventually(lambda app_id=app_id: app_id in decided_at, timeout=30, interval=0.002)
                    latencies.append(decided_at[app_id] - t)
                fl = report["floors"]
                p50, p99 = pct(latencies, 50) * 1000, pct(latencies, 99) * 1000
                burst_events = [application_accepted(code, 1) for _ in range(burst)]
                t = time.perf_counter()
                await asyncio.gather(*(bus.publish(e) for e in burst_events))
                ids = [e.data["application_id"] for e in burst_events]
                await eventually(lambda ids=ids: all(i in decided_at for i in ids), timeout=300, interval=0.05)
                elapsed = time.perf_counter() - t
                report[f"{n}_departments"] = {
                    "p50_ms": round(p50, 1), "p99_ms": round(p99, 1),
                    "p50_over_nats_rtt": round(p50 / fl["nats_rtt_ms"], 1),
                    "p50_over_js_ack": round(p50 / fl["js_ack_ms"], 1),
                    "p50_over_db_commit": round(p50 / fl["db_commit_ms"], 1),
                    "cases_per_second": round(burst / elapsed, 1),
                }
            for s in subs:
                await s.unsubscribe()
        report["floors"] = {k: round(v, 2) for k, v in report["floors"].items()}
        return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=30, help="cases measured one at a time per size")
    parser.add_argument("--burst", type=int, default=100, help="cases accepted at once for throughput")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.cases, args.burst)), indent=2))


if __name__ == "__main__":
    main()
