"""The floors every benchmark figure is divided by, measured in the same run on the same machine:

- R: NATS request/reply round trip (core NATS, no persistence)
- J: JetStream publish with ack (file storage)
- C: a bare database commit (one-row INSERT + COMMIT) on SQLite and, when reachable, PostgreSQL
- H: a bare FastAPI request over loopback HTTP (uvicorn, one route returning a constant)

H and C are taken back to back (`timed`), and, for a figure measured at a low offered rate, also paced at that
rate (`paced`): between two requests every process involved goes idle, and the next request pays for waking
them (a halted vCPU, cold caches). On this 2-core VM that alone makes a bare request or commit about 3 × slower at
5/s than back to back (bench/RESULTS.md, run Q), so a paced figure is divided by floors paced the same way."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import nats

from shared.bus import Bus
from shared.testing import free_port, wait_port


def summarise(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return {
        "n": len(s),
        "p50_ms": round(pick(0.50) * 1000, 3),
        "p99_ms": round(pick(0.99) * 1000, 3),
        "mean_ms": round(statistics.fmean(s) * 1000, 3),
        "per_second": round(len(s) / sum(s), 1) if sum(s) else 0.0,
    }


async def timed(n: int, op: Callable[[], Awaitable[Any]], warmup: int = 20) -> dict[str, float]:
    for _ in range(warmup):
        await op()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        await op()
        samples.append(time.perf_counter() - t)
    return summarise(samples)


def python_speed(repeat: int = 3) -> float:
    """Milliseconds of a fixed pure-Python workload (dict stores and int-to-str), the best of `repeat`: how fast the
    shared machine runs Python at this moment. Not a floor any figure is divided by: `--rounds` notes it before
    each side so that a host that slowed down between ours and the peer's run shows as such."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        d: dict[int, str] = {}
        for i in range(200_000):
            d[i & 1023] = str(i)
        best = min(best, time.perf_counter() - t)
    return round(best * 1000, 1)


async def paced(n: int, op: Callable[[], Awaitable[Any]], rate: float, warmup: int = 3) -> dict[str, float]:
    """`op` at an offered `rate` per second, one at a time (start i at i / rate), as an open-loop step of that
    rate meets a request when the machine is otherwise quiet."""
    for _ in range(warmup):
        await op()
    samples = []
    start = time.perf_counter()
    for i in range(n):
        delay = start + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        t = time.perf_counter()
        await op()
        samples.append(time.perf_counter() - t)
    return summarise(samples)


async def nats_round_trip(url: str, n: int) -> dict[str, float]:
    nc = await nats.connect(url)
    subject = "bench.echo." + secrets.token_hex(4)

    async def echo(msg: Any) -> None:
        await msg.respond(msg.data)

    await nc.subscribe(subject, cb=echo)
    try:
        return await timed(n, lambda: nc.request(subject, b"x" * 256, timeout=5))
    finally:
        await nc.close()


async def jetstream_publish(url: str, n: int) -> dict[str, float]:
    bus = Bus(url, prefix="bench" + secrets.token_hex(3))
    await bus.connect(attempts=3)
    payload = b"x" * 512
    try:
        return await timed(n, lambda: bus.publish_raw(bus.names.subject("yimen.bench.x"), payload, secrets.token_hex(8)))
    finally:
        await bus.js.delete_stream(bus.names.stream)
        await bus.js.delete_stream(bus.names.dead_letter_stream)
        await bus.close()


async def database_commit(url: str, n: int, rate: float | None = None) -> dict[str, float]:
    """Floor C: one-row INSERT and COMMIT through `shared.db`, back to back, or paced at `rate` per second."""
    from sqlalchemy import Column, Integer, MetaData, String, Table

    from shared.db import Database

    md = MetaData()
    t = Table("bench_commit", md, Column("id", Integer, primary_key=True), Column("v", String(50)))
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(md.drop_all)
        await conn.run_sync(md.create_all)

    async def one() -> None:
        async with db.transaction() as s:
            await s.execute(t.insert().values(v="x"))

    try:
        return await (timed(n, one) if rate is None else paced(n, one, rate))
    finally:
        async with db.engine.begin() as conn:
            await conn.run_sync(md.drop_all)
        await db.dispose()


BARE_APP = """
from fastapi import FastAPI
app = FastAPI()
@app.get("/ping")
async def ping():
    return {"ok": True}
"""


class BareFastAPI:
    """A one-route FastAPI app under uvicorn in its own process, like every service runs."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BareFastAPI:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", BARE_APP + f"\nimport uvicorn; uvicorn.run(app, port={self.port}, log_level='warning', access_log=False)"],
        )
        wait_port("127.0.0.1", self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)


async def http_get_loop(url: str, n: int, rate: float | None = None) -> dict[str, float]:
    """Floor H: GETs on one keep-alive connection, back to back, or paced at `rate` per second."""
    async with httpx.AsyncClient() as c:
        return await (timed(n, lambda: c.get(url)) if rate is None else paced(n, lambda: c.get(url), rate))


async def http_throughput(url: str, seconds: float, concurrency: int) -> float:
    """Requests per second with `concurrency` clients for `seconds`."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(c: httpx.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await c.get(url)
            done += 1

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as c:
        t = time.perf_counter()
        await asyncio.gather(*(worker(c) for _ in range(concurrency)))
        return round(done / (time.perf_counter() - t), 1)


async def http_rate_light(host: str, port: int, paths: list[str], seconds: float, concurrency: int
                          ) -> tuple[float, int]:
    """Requests per second (and how many answers were not 200) with `concurrency` keep-alive connections for
    `seconds`, each asking `paths` in turn, from a load generator that costs far less than the server it measures.

    httpx spends about 2,300 Python calls on one GET (2,450–3,000 on the platform's reads: each response header
    it parses is a few dozen more) where the bare app's server spends 292, so on this 2-core machine a rate
    measured with it is mostly the client's own CPU, and a read with more response headers or a query given as
    `params=` looks slower for the client's sake. Like `wrk`, this writes the request bytes prepared once and reads
    the answer by its `Content-Length` (every route measured sends one; none is chunked)."""
    done = bad = 0
    stop = time.perf_counter() + seconds
    prepared = [f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode() for p in paths]

    async def worker(w: int) -> None:
        nonlocal done, bad
        reader, writer = await asyncio.open_connection(host, port)
        i = w * 7919
        try:
            while time.perf_counter() < stop:
                writer.write(prepared[i % len(prepared)])
                i += 1
                head = await reader.readuntil(b"\r\n\r\n")
                at = head.lower().find(b"\r\ncontent-length:")
                if at < 0:
                    raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
                length = int(head[at + 17:head.index(b"\r\n", at + 2)])
                await reader.readexactly(length)
                done += 1
                bad += head[9:12] != b"200"
        finally:
            writer.close()

    t = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return round(done / (time.perf_counter() - t), 1), bad
