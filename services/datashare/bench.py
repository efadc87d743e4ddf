"""`python -m services.datashare.bench [--rows 100000] [--requests 300]`: the issue's benchmark.

Latency of public verification by number and of a purpose-checked fetch, each next to its bare floor (the
service's `/healthz` through the same stack; for the fetch also intake's answer alone, played by a tiny local
server), and a registry import of `--rows` population rows (time, peak memory, progress lines). Runs on the
embedded defaults (SQLite file, a nats-server of its own) unless `YIMEN_TEST_POSTGRES_URL` / `NATS_URL` say
otherwise."""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from stdnum.cn import ric

from services.datashare.app import create_app
from services.datashare.config import DatashareConfig
from services.datashare.tests.factories import BUSINESS_LICENCE, FakeIntake, credit_code, food_item
from shared.events import new_event
from shared.testing import DatabaseProvider, EmbeddedNats, TokenIssuer, eventually, make_settings, running_app

P = "/datashare/v1"


async def timed(n: int, call: Callable[[], Awaitable[httpx.Response]]) -> dict[str, float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        r = await call()
        samples.append((time.perf_counter() - t) * 1000)
        assert r.status_code < 300, r.text
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 2), "p95_ms": round(samples[int(0.95 * (n - 1))], 2)}


def population_csv(rows: int) -> bytes:
    lines = ["id_number,name,gender,address"]
    for i in range(rows):
        # Birth date and sequence vary so that every number is distinct.
        body = f"445381{1950 + (i // 1000) % 60}{1 + (i // 60000) % 12:02d}{1 + (i // 1000) % 28:02d}{i % 1000:03d}"
        lines.append(f"{body}{ric.calc_check_digit(body + '0')},居民{i},{'男' if i % 2 else '女'},罗城街道{i % 300}号")
    return ("\n".join(lines) + "\n").encode()


async def main(rows: int, requests: int) -> dict[str, Any]:
    import os

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    for noisy in ("httpx", "alembic", "nats", "yimen.messaging", "yimen.bus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="datashare-bench-"))
    nats = None if os.environ.get("NATS_URL") else EmbeddedNats().start()
    databases = DatabaseProvider(tmp)
    tokens = TokenIssuer()
    out: dict[str, Any] = {"database": databases.kind}
    try:
        with FakeIntake() as intake:
            settings = make_settings(
                "datashare", database_url=databases.url("datashare"), nats_url=os.environ.get("NATS_URL") or nats.url,
                bus_prefix=f"bench{int(time.time())}", var_dir=tmp, service_urls={"intake": intake.url},
            )
            # One client measures latency here: the per-client verification limit (a defence, not a cost) is lifted.
            config = DatashareConfig(verifications_per_client_per_minute=10 * requests + 100)
            async with running_app(create_app, settings, tokens=tokens, config=config) as client:
                admin = tokens.headers("bench", kind="staff", roles=["admin"], dept="LD-SCJGJ")
                org = credit_code()
                r = await client.post(f"{P}/certificates", headers=admin, json={
                    "type_code": BUSINESS_LICENCE, "holder_id": org, "holder_kind": "001", "fields": {"name": "店"}})
                number = r.json()["number"]
                item = food_item()
                await client.app.state.bus.publish(new_event("yimen.catalog.item.published", source="/bench",
                                                             subject=item["code"], data=item))
                app_id = intake.add(item["code"], holder_id=org)
                agent = tokens.headers("agent", roles=["org_agent"], org=org)
                body = {"application_id": app_id, "item_code": item["code"], "item_version": 1,
                        "material_code": "M-LICENCE", "holder_id": org, "holder_kind": "organisation"}

                async def item_known() -> bool:
                    probe = await client.post(f"{P}/requests", headers=agent, json=body)
                    return probe.status_code == 200

                await eventually(item_known)
                async with httpx.AsyncClient() as direct:
                    out["floor_healthz"] = await timed(requests, lambda: client.get("/datashare/healthz"))
                    out["verification"] = await timed(
                        requests, lambda: client.get(f"{P}/certificates/{number}/verification"))
                    out["floor_intake_alone"] = await timed(
                        requests, lambda: direct.get(f"{intake.url}/intake/v1/applications/{app_id}"))
                    out["purpose_fetch"] = await timed(requests, lambda: client.post(f"{P}/requests", headers=agent,
                                                                                      json=body))
                csv_body = population_csv(rows)
                gaj = tokens.headers("gaj", kind="staff", roles=["department_reviewer"], dept="LD-GAJ")
                before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                t = time.perf_counter()
                r = await client.post(f"{P}/registries/population/imports", headers=gaj, timeout=600,
                                      files={"file": ("population.csv", csv_body, "text/csv")})
                elapsed = time.perf_counter() - t
                assert r.status_code == 200, r.text[:500]
                out["import"] = {
                    "rows": rows, "imported": r.json()["imported"], "bytes": len(csv_body),
                    "seconds": round(elapsed, 2), "rows_per_second": round(rows / elapsed),
                    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                    "peak_rss_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, 1),
                }
    finally:
        databases.cleanup()
        if nats:
            nats.cleanup()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m services.datashare.bench")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    result = asyncio.run(main(args.rows, args.requests))
    for key, value in result.items():
        print(f"{key}: {value}")
