"""Per-request cost of the HTTP stack, in-process: a bare FastAPI app, intake's liveness route and public status
query, and catalog's published guide (cached), each driven through raw ASGI (no client, no sockets) with the
service's lifespan on PostgreSQL (`YIMEN_TEST_POSTGRES_URL`, else SQLite) and the bus at `NATS_URL`.

Prints process CPU per request (noisy on a shared machine: it includes the service's background tasks) and
Python calls per request (cProfile, 200 requests): deterministic, so two trees compare without a quiet machine.

usage: python bench/http_micro.py [n] [name-to-profile]"""
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

from fastapi import FastAPI

from shared.testing import DatabaseProvider, make_settings, running_app

DBS = DatabaseProvider(Path(tempfile.mkdtemp()))
URLS = {n: DBS.url(n) for n in ("intake", "catalog")}

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
PROFILE = sys.argv[2] if len(sys.argv) > 2 else None

HEADERS = [(b"host", b"127.0.0.1:8000"), (b"accept", b"*/*"), (b"accept-encoding", b"gzip, deflate"),
           (b"connection", b"keep-alive"), (b"user-agent", b"python-httpx/0.28.1")]


async def call(app, path: str, query: bytes = b"", headers=HEADERS) -> tuple[int, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
             "root_path": "", "headers": list(headers), "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 8000)}
    out = {}
    body = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg):
        if msg["type"] == "http.response.start":
            out["status"] = msg["status"]
        else:
            body.append(msg.get("body", b""))

    await app(scope, receive, send)
    return out["status"], b"".join(body)


async def measure(name, app, path, query=b""):
    st, b = await call(app, path, query)
    assert st == 200, (name, st, b[:300])
    for _ in range(200):
        await call(app, path, query)
    c0, w0 = time.process_time(), time.perf_counter()
    if PROFILE == name:
        pr = cProfile.Profile()
        pr.enable()
    for _ in range(N):
        await call(app, path, query)
    if PROFILE == name:
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(35)
        pstats.Stats(pr).sort_stats("cumulative").print_stats(60)
    c, w = time.process_time() - c0, time.perf_counter() - w0
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(200):
        await call(app, path, query)
    pr.disable()
    st = pstats.Stats(pr)
    print(f"{name:10s} cpu {c / N * 1e6:7.1f} us/req   wall {w / N * 1e6:7.1f} us/req   "
          f"python calls {st.total_calls / 200:7.1f}/req (primitive {st.prim_calls / 200:7.1f})", flush=True)


async def main():
    bare = FastAPI()

    @bare.get("/ping")
    async def ping():
        return {"ok": True}

    await measure("bare", bare, "/ping")
    tmp = Path(tempfile.mkdtemp(prefix="micro-"))
    nats = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
    from services.catalog.app import create_app as catalog_app
    from services.intake.app import create_app as intake_app
    from services.intake.store.tables import PublicStatusRow

    prefix = "micro" + uuid.uuid4().hex[:6]
    s = make_settings("intake", database_url=URLS["intake"], nats_url=nats,
                      bus_prefix=prefix, var_dir=tmp, relay_interval_seconds=5, relay_idle_interval_seconds=5)
    async with running_app(intake_app, s) as client:
        app = client._transport.app
        async with client.app.state.db.transaction() as ses:
            ses.add(PublicStatusRow(receipt_number="R123456789", application_id="a1", verification_code="123456",
                                    body='{"receipt_number":"R123456789","status":"submitted","timeline":[]}'))
        await measure("healthz", app, "/intake/healthz")
        await measure("status", app, "/intake/v1/status/R123456789", b"code=123456")
    s = make_settings("catalog", database_url=URLS["catalog"], nats_url=nats,
                      bus_prefix=prefix, var_dir=tmp, relay_interval_seconds=5, relay_idle_interval_seconds=5)
    async with running_app(catalog_app, s) as client:
        app = client._transport.app
        r = await client.get("/catalog/v1/items", params={"limit": 1})
        code = r.json()["items"][0]["code"]
        await measure("guide", app, f"/catalog/v1/items/{code}/guide")


try:
    asyncio.run(main())
finally:
    DBS.cleanup()
