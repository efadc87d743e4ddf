"""`python -m services.intake.bench`: intake's figures as ratios to the foundation's floors, one run, one machine.

- submit: `POST /applications/{id}/submit` with `Idempotency-Key` (completeness check, receipt number, outbox
  write, idempotency record) — latency one at a time, and throughput with 10 concurrent clients; compared with
  floor H (a bare FastAPI request over loopback) plus floor C (a bare commit).
- submit of a fully online item (the platform bench's: nothing to hand over, accepted at once), back to back and
  at 5 per second one at a time; the latter divided by H and C paced at 5/s alike (`bench.floors.paced`).
- check: `POST /applications/{id}/check` on an item with 20 materials (one-time notice over all of them).

Intake runs as its own uvicorn process, like the bare app of floor H. PostgreSQL is used when `--postgres
ADMIN_URL` is given (a database of its own is created there and dropped afterwards), else SQLite; NATS from `NATS_URL`, else a bundled nats-server."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from bench import floors
from bench.__main__ import create_pg_database, drop_pg_database
from services.intake.tests import factories as f
from shared.bus import Bus
from shared.testing import EmbeddedNats, TokenIssuer, free_port

#: The submission one at a time at 5/s, as the platform bench judges it, and its floors paced alike.
PACED_RATE, PACED_N = 5, 40


def twenty_material_item() -> dict[str, Any]:
    item = f.food_permit_item(fully_online=False)
    template = item["materials"][2]
    item["materials"] = [{**template, "code": f"M{i:02d}", "name": f"材料{i}", "max_bytes": 100_000} for i in range(1, 21)]
    item["form_fields"] = [{"name": f"field{i}", "label": f"字段{i}", "type": "text", "required": True} for i in range(20)]
    return item


async def prepare(c: httpx.AsyncClient, headers: dict[str, str], item: dict[str, Any], materials: int) -> str:
    form = {ff["name"]: "x" for ff in item["form_fields"]}
    r = await c.post("/intake/v1/applications", headers=headers,
                     json={"item_code": item["code"], "channel": "online", "service_point": "LD-CENTRE", "form": form})
    r.raise_for_status()
    app_id = r.json()["id"]
    for m in item["materials"][:materials]:
        r = await c.post(f"/intake/v1/applications/{app_id}/materials", headers=headers,
                         data={"material_code": m["code"]}, files={"file": ("a.pdf", f.PDF, "application/pdf")})
        r.raise_for_status()
    return app_id


async def run(n: int, postgres: str | None) -> dict[str, Any]:
    report: dict[str, Any] = {"n": n, "database": "postgresql" if postgres else "sqlite", "floors": {}, "figures": {}}
    embedded = None if os.environ.get("NATS_URL") else EmbeddedNats().start()
    nats_url = os.environ.get("NATS_URL") or embedded.url  # type: ignore[union-attr]
    tmp = Path(tempfile.mkdtemp(prefix="yimen-intake-bench-"))
    pg_url = await create_pg_database(postgres) if postgres else None
    db_url = pg_url or f"sqlite+aiosqlite:///{tmp / 'intake.db'}"
    tokens = TokenIssuer()
    jwks = FastAPI()
    jwks.get("/jwks.json")(tokens.jwks)
    jwks_port, port, prefix = free_port(), free_port(), "bench" + secrets.token_hex(3)
    jwks_server = uvicorn.Server(uvicorn.Config(jwks, port=jwks_port, log_level="warning", lifespan="off"))
    jwks_task = asyncio.create_task(jwks_server.serve())
    env = {**os.environ, "YIMEN_INTAKE_DATABASE_URL": db_url, "YIMEN_INTAKE_PORT": str(port), "NATS_URL": nats_url,
           "YIMEN_BUS_PREFIX": prefix, "YIMEN_VAR_DIR": str(tmp), "YIMEN_LOG_LEVEL": "WARNING",
           "YIMEN_JWKS_URL": f"http://127.0.0.1:{jwks_port}/jwks.json",
           # One applicant submits hundreds of times a minute here: the per-applicant limit (30/min) is off.
           "YIMEN_SUBMIT_RATE_PER_MINUTE": "0"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.intake", env=env)
    bus = Bus(nats_url, prefix=prefix)
    try:
        c_url = pg_url or f"sqlite+aiosqlite:///{tmp / 'c.db'}"
        report["floors"]["C_commit"] = await floors.database_commit(c_url, n)
        report["floors"]["C_at_5_per_second"] = await floors.database_commit(c_url, PACED_N, rate=PACED_RATE)
        with floors.BareFastAPI() as bare:
            url = f"http://127.0.0.1:{bare.port}/ping"
            report["floors"]["H_fastapi_request"] = await floors.http_get_loop(url, n)
            report["floors"]["H_at_5_per_second"] = await floors.http_get_loop(url, PACED_N, rate=PACED_RATE)
            report["floors"]["H_fastapi_rate_10_clients"] = {"per_second": await floors.http_throughput(url, 3, 10)}
        await bus.connect()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            for _ in range(300):
                try:
                    if (await c.get("/intake/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            simple, wide = f.simple_item(), twenty_material_item()
            # The platform bench's item: fully online, nothing to hand over, so the submission also accepts.
            online = {**f.simple_item(fully_online=True), "materials": [], "form_fields": []}
            for item in (simple, wide, online):
                await bus.publish(f.published(item))
            me = f.citizen(tokens, sub="bench-" + secrets.token_hex(3))
            for item in (simple, wide, online):
                for _ in range(100):
                    r = await c.post("/intake/v1/applications", headers=me, json={
                        "item_code": item["code"], "channel": "online", "service_point": "LD-CENTRE"})
                    if r.status_code == 201:
                        break
                    await asyncio.sleep(0.1)
            drafts = [await prepare(c, me, simple, 1) for _ in range(n + 20)]

            it = iter(drafts)

            async def submit_one() -> None:
                app_id = next(it)
                r = await c.post(f"/intake/v1/applications/{app_id}/submit", headers={**me, "Idempotency-Key": app_id})
                assert r.status_code == 200, r.text

            fig = await floors.timed(n, submit_one, warmup=20)
            floor = report["floors"]["H_fastapi_request"]["p50_ms"] + report["floors"]["C_commit"]["p50_ms"]
            fig["ratio_p50_to_H_plus_C"] = round(fig["p50_ms"] / floor, 2)
            report["figures"]["submit"] = fig

            online_drafts = iter([await prepare(c, me, online, 0) for _ in range(n + 20)])

            async def submit_online() -> None:
                app_id = next(online_drafts)
                r = await c.post(f"/intake/v1/applications/{app_id}/submit", headers={**me, "Idempotency-Key": app_id})
                assert r.status_code == 200 and r.json()["status"] == "accepted", r.text

            fig = await floors.timed(n, submit_online, warmup=20)
            fig["ratio_p50_to_H_plus_C"] = round(fig["p50_ms"] / floor, 2)
            report["figures"]["submit_fully_online"] = fig
            # The same at 5 per second, one at a time, beside H and C paced alike (bench/floors.py `paced`).
            online_drafts = iter([await prepare(c, me, online, 0) for _ in range(PACED_N + 3)])
            fig = await floors.paced(PACED_N, submit_online, PACED_RATE)
            paced_floor = report["floors"]["H_at_5_per_second"]["p50_ms"] + report["floors"]["C_at_5_per_second"]["p50_ms"]
            fig["ratio_p50_to_H_plus_C_paced_alike"] = round(fig["p50_ms"] / paced_floor, 2)
            report["figures"]["submit_fully_online_at_5_per_second"] = fig

            batch = [await prepare(c, me, simple, 1) for _ in range(n)]
            queue: asyncio.Queue[str] = asyncio.Queue()
            for a in batch:
                queue.put_nowait(a)

            async def worker() -> None:
                while not queue.empty():
                    a = queue.get_nowait()
                    r = await c.post(f"/intake/v1/applications/{a}/submit", headers={**me, "Idempotency-Key": a})
                    assert r.status_code == 200, r.text

            t = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(10)))
            rate = round(len(batch) / (time.perf_counter() - t), 1)
            report["figures"]["submit_rate_10_clients"] = {
                "per_second": rate,
                "ratio_to_H_rate": round(rate / report["floors"]["H_fastapi_rate_10_clients"]["per_second"], 3),
            }

            wide_app = await prepare(c, me, wide, 17)  # three materials still missing: the notice lists them

            async def check_one() -> None:
                r = await c.post(f"/intake/v1/applications/{wide_app}/check", headers=me)
                assert r.status_code == 200 and len(r.json()["problems"]) == 3, r.text

            fig = await floors.timed(n, check_one, warmup=10)
            fig["ratio_p50_to_H_plus_C"] = round(fig["p50_ms"] / floor, 2)
            report["figures"]["check_20_materials"] = fig
    finally:
        await bus.close()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
        jwks_server.should_exit = True
        await jwks_task
        if embedded:
            embedded.cleanup()
        if postgres and pg_url:
            await drop_pg_database(postgres, pg_url)
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# intake benchmark ({report['database']}, n={report['n']})", "", "| floor | p50 ms | p99 ms | per second |",
             "|---|---|---|---|"]
    for k, v in report["floors"].items():
        lines.append(f"| {k} | {v.get('p50_ms', '')} | {v.get('p99_ms', '')} | {v.get('per_second', '')} |")
    lines += ["", "| figure | p50 ms | p99 ms | per second | ratio |", "|---|---|---|---|---|"]
    for k, v in report["figures"].items():
        ratio = ", ".join(f"{rk}={rv}" for rk, rv in v.items() if rk.startswith("ratio"))
        lines.append(f"| {k} | {v.get('p50_ms', '')} | {v.get('p99_ms', '')} | {v.get('per_second', '')} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m services.intake.bench")
    p.add_argument("-n", type=int, default=200)
    p.add_argument("--postgres", help="PostgreSQL admin URL, e.g. postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--json", type=Path, help="also write the report here")
    args = p.parse_args()
    report = asyncio.run(run(args.n, args.postgres))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(markdown(report))


if __name__ == "__main__":
    main()
