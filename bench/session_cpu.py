"""Client CPU of one transaction, layer by layer, on PostgreSQL and uvloop: what each layer between a service and
asyncpg adds to `BEGIN; SELECT 1; COMMIT` (and to a transaction that writes a row and an event).

    python -m bench.session_cpu [--n 4000] [--repeat 3] [--variants raw,core,...] [--baseline REV] [--tree DIR]

Each variant runs in a process of its own (so only the session hooks it imports are registered), on uvloop as the
services run, one transaction at a time on one pooled connection; its figure is `time.process_time()` per
transaction after a warm-up (connections open, statements prepared and compiled), the smallest of `--repeat`
interleaved runs (others share the machine: the smallest is the least disturbed).

Variants:
  raw            asyncpg alone: `async with conn.transaction(): await conn.fetchval("SELECT 1")`
  core           `async with engine.begin() as conn` (AsyncConnection), `SELECT 1`
  session        `async with maker() as s, s.begin()` (AsyncSession, no hooks registered), `SELECT 1`
  database       `Database.transaction()` with shared.messaging's hooks and a service's `info`, `SELECT 1`
  database_intake  the same with intake's session hooks registered too (its process has them)
  database_write `Database.transaction()` writing a row and emitting an event (the outbox insert at commit)
  database_rollback  `Database.transaction()` whose block raises after `SELECT 1` (rolled back)

What it found (December 2026, 2.1.9/asyncpg 0.32/uvloop 0.23, callgrind): core 620k instructions per `SELECT 1`
transaction, `Database.transaction()` 939k before and 819k after it stopped entering the greenlet for its begin and
close (and running a task for the close). The rest is mostly the greenlet bridge itself: the same asyncpg calls
(BEGIN, SELECT 1, COMMIT) made from inside one greenlet cost about twice the CPU of the same calls made directly
(~100 against ~50 µs on this machine), so each trip into it and each `await_` in it is a cost of its own.

`--baseline REV` also runs the database variants against `shared/` as of REV (extracted with `git archive`), in
turn with this tree's; `--tree DIR` measures the `shared/` under DIR instead of this tree's."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ADMIN = os.environ.get("YIMEN_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
VARIANTS = ["raw", "core", "session", "database", "database_intake", "database_write", "database_rollback"]
DATABASE_VARIANTS = [v for v in VARIANTS if v.startswith("database")]


# ---------------------------------------------------------------------------------------------------- the child


WARM = 500


async def _timed(n: int, one: Any) -> float:
    for _ in range(WARM):  # warm-up: connection opened, statements prepared, caches filled
        await one()
    cpu = time.process_time()
    for _ in range(n):
        await one()
    return (time.process_time() - cpu) / max(n, 1) * 1e6


async def child(variant: str, url: str, n: int) -> float:
    from sqlalchemy import text

    sa_url = url.replace("postgresql://", "postgresql+asyncpg://")
    if variant == "raw":
        import asyncpg

        conn = await asyncpg.connect(url)

        async def one_raw() -> None:
            async with conn.transaction():
                await conn.fetchval("SELECT 1")

        try:
            return await _timed(n, one_raw)
        finally:
            await conn.close()
    if variant in ("core", "session"):
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        engine = create_async_engine(sa_url, pool_size=1, max_overflow=0)
        maker = async_sessionmaker(engine, expire_on_commit=False)
        stmt = text("SELECT 1")

        async def one_core() -> None:
            async with engine.begin() as c:
                await c.execute(stmt)

        async def one_session() -> None:
            async with maker() as s, s.begin():
                await s.execute(stmt)

        try:
            return await _timed(n, one_core if variant == "core" else one_session)
        finally:
            await engine.dispose()

    from sqlalchemy import Column, Integer, String, Table, insert

    import shared.messaging  # the hooks every service process has
    from shared.db import Database, make_metadata
    from shared.events import new_event

    if variant == "database_intake":
        import services.intake.store.public_status  # noqa: F401  (its session hooks, as in intake's process)
        import services.intake.store.repository  # noqa: F401
    md = make_metadata()
    tables = shared.messaging.define_messaging_tables(md)
    thing = Table("thing", md, Column("id", Integer, primary_key=True, autoincrement=True), Column("v", String(40)))
    db = Database(sa_url, info={"messaging": tables, "service": "bench", "publishes": True}, pool_size=1)
    stmt = text("SELECT 1")
    write = insert(thing)

    class Boom(Exception):
        pass

    async def one_db() -> None:
        async with db.transaction() as s:
            await s.execute(stmt)

    async def one_write() -> None:
        async with db.transaction() as s:
            await s.execute(write, {"v": "x"})
            await shared.messaging.emit(s, new_event("bench.thing.made", source="/bench", subject="x", data={}))

    async def one_rollback() -> None:
        try:
            async with db.transaction() as s:
                await s.execute(stmt)
                raise Boom
        except Boom:
            pass

    try:
        if variant == "database_write":
            async with db.engine.begin() as c:
                await c.run_sync(md.create_all)
            return await _timed(n, one_write)
        return await _timed(n, one_rollback if variant == "database_rollback" else one_db)
    finally:
        await db.dispose()


def run_child(variant: str, url: str, n: int, warm: int) -> None:
    import uvloop

    global WARM
    WARM = warm
    print(json.dumps({"us": uvloop.run(child(variant, url, n))}))


# --------------------------------------------------------------------------------------------------- the parent


def spawn(variant: str, url: str, n: int, tree: Path | None, *, warm: int = WARM, valgrind: bool = False) -> float:
    """µs CPU per transaction; with `valgrind`, the instructions the whole process executed (callgrind's count)."""
    env = dict(os.environ)
    cwd = ROOT
    if tree is not None:  # `shared` from there, `bench` and `services` from here
        env["PYTHONPATH"] = f"{tree}{os.pathsep}{ROOT}"
        cwd = tree
    cmd = [sys.executable, "-m", "bench.session_cpu", "--child", variant, "--url", url, "--n", str(n),
           "--warm", str(warm)]
    if valgrind:
        if shutil.which("valgrind") is None:
            raise SystemExit("--ir needs valgrind on PATH (Debian: apt install valgrind); without --ir the figure is "
                             "CPU time")
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd]
    out = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    if valgrind:
        return float(re.findall(r"Collected : (\d+)", out.stderr)[-1])
    return float(json.loads(out.stdout.strip().splitlines()[-1])["us"])


def instructions(variant: str, url: str, n: int, tree: Path | None) -> float:
    """Instructions per transaction under callgrind: the difference of a run of 100 + `n` transactions and one of
    100 (both after the same 100 of warm-up), so start-up and imports cancel out. Unlike CPU time it does not
    move with what else the machine runs; it counts no kernel time and no cache misses."""
    short = spawn(variant, url, 100, tree, warm=100, valgrind=True)
    long = spawn(variant, url, 100 + n, tree, warm=100, valgrind=True)
    return (long - short) / n


async def make_database() -> tuple[str, Any]:
    import asyncpg

    name = "yimen_bench_sess_" + uuid.uuid4().hex[:6]
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return ADMIN.rsplit("/", 1)[0] + "/" + name, name


async def drop_database(name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=4000, help="transactions per measured run")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--baseline", help="a git revision whose shared/ the database variants are also measured with")
    p.add_argument("--tree", help="a directory whose shared/ is measured instead of this tree's")
    p.add_argument("--ir", action="store_true",
                   help="instructions per transaction under valgrind's callgrind (slow, but steady on a busy machine)")
    p.add_argument("--warm", type=int, default=WARM)
    p.add_argument("--child")
    p.add_argument("--url")
    a = p.parse_args()
    if a.child:
        run_child(a.child, a.url, a.n, a.warm)
        return
    variants = a.variants.split(",")
    url, name = asyncio.run(make_database())
    trees: dict[str, Path | None] = {"this": Path(a.tree).resolve() if a.tree else None}
    tmp = None
    try:
        if a.baseline:
            tmp = tempfile.TemporaryDirectory(prefix="session_cpu_")
            archive = subprocess.run(["git", "archive", a.baseline, "shared"], cwd=ROOT, check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp.name], input=archive, check=True)
            trees = {"base": Path(tmp.name), **trees}
        runs: dict[tuple[str, str], list[float]] = {}
        for _ in range(a.repeat):
            for v in variants:
                for label, tree in trees.items():
                    if label == "base" and v not in DATABASE_VARIANTS:
                        continue
                    figure = instructions(v, url, a.n, tree) if a.ir else spawn(v, url, a.n, tree)
                    runs.setdefault((v, label), []).append(figure)
                    print(f"  ({v} [{label}]: {figure / (1000 if a.ir else 1):.1f})", file=sys.stderr, flush=True)
        if a.ir:
            print(f"instructions per transaction (callgrind; PostgreSQL, uvloop; min of {a.repeat} differences of "
                  f"{a.n}; median, all in thousands)")
        else:
            print(f"µs client CPU per transaction (PostgreSQL, uvloop; min of {a.repeat} runs of {a.n}; median, all)")
        scale = 1000 if a.ir else 1
        for (v, label), us in runs.items():
            tag = f"{v} [{label}]" if len(trees) > 1 and v in DATABASE_VARIANTS else v
            print(f"  {tag:28} {min(us) / scale:7.1f}   {statistics.median(us) / scale:7.1f}   "
                  + " ".join(f"{u / scale:.0f}" for u in us), flush=True)
    finally:
        asyncio.run(drop_database(name))
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
