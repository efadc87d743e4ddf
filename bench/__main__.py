"""`make bench`: floors first, then every figure as a ratio to them, from one run.

Writes `bench/results/latest.json` and `bench/results/latest.md`. Quick by default (about 5 minutes on two
cores); `--full` runs larger samples and seeds 100k open cases (bench/bulk.py). PostgreSQL is used when
`YIMEN_BENCH_POSTGRES_URL` (or 127.0.0.1:5432) answers; NATS from `NATS_URL`, else a bundled nats-server is
started. With PostgreSQL the whole platform is then started as real processes (`bench/system.py`) for the
submit, full-cycle, read, department and open-case figures; `--phases` picks some of them, `--floors-only`
none, and `--platform-env KEY=VALUE` passes a setting to the platform's processes (for diagnostics).

`--baseline <git ref>` first runs the same harness on a worktree of that commit (bench/compare.py) and prints
each figure with its ratio to it; `--peer temporal` then runs the peer harness (bench/peers.py) and prints our
figures beside Temporal's (with `--rounds N`, N rounds of ours then the peer's, alternating, and the median
ratio of department tasks/s: the shared host's speed drifts by a fifth and more within minutes); `--profile`
writes py-spy flame graphs of every service during the 10-client cycle under `bench/profiles/` (the baseline's under `bench/profiles/baseline/`); `--open-cases 1000,100000`
sets the open-case levels (past 300 they are opened in bulk by the services' own code in the bench's process,
then copied: bench/bulk.py). Every platform process counts
its SQL statements and transactions (bench/inject/sitecustomize.py), reported per case beside its CPU.
bench/RESULTS.md explains a real run."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import floors
from bench.compare import beside_peer, comparison, round_figures, rounds_table, run_baseline
from bench.peers import WAL_VARIANT, run_temporal
from bench.pipeline import outbox_to_consumer
from bench.system import PHASES, run_platform
from shared.testing import EmbeddedNats

RESULTS = Path(__file__).parent / "results"
PROFILES = Path(__file__).parent / "profiles"


def progress(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def postgres_admin_url() -> str | None:
    url = os.environ.get("YIMEN_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        socket.create_connection(("127.0.0.1", 5432), 1).close()
        return url
    except OSError:
        return None


async def create_pg_database(admin_url: str) -> str:
    import asyncpg

    name = "yimen_bench_" + uuid.uuid4().hex[:6]
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name


async def drop_pg_database(admin_url: str, url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


async def run(full: bool, skip_platform: bool = False, phases: tuple[str, ...] = PHASES,
              extra_env: dict[str, str] | None = None, profile_dir: Path | None = None,
              open_targets: tuple[int, ...] = (), keep_databases: bool = False,
              keep_logs: bool = False) -> dict[str, Any]:
    n = 2000 if full else 400
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(), "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "floors": {}, "figures": {}, "load_average_at_start": os.getloadavg(),
    }
    nats_url = os.environ.get("NATS_URL")
    embedded = None
    if not nats_url:
        embedded = EmbeddedNats().start()
        nats_url = embedded.url
    tmp = Path(tempfile.mkdtemp(prefix="yimen-bench-"))
    pg_admin = postgres_admin_url()
    pg_url = None
    try:
        progress("floor R: NATS request/reply")
        report["floors"]["R_nats_round_trip"] = await floors.nats_round_trip(nats_url, n)
        progress("floor J: JetStream publish ack")
        report["floors"]["J_jetstream_publish"] = await floors.jetstream_publish(nats_url, n)
        progress("floor C: bare commit, SQLite")
        sqlite_url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
        report["floors"]["C_commit_sqlite"] = await floors.database_commit(sqlite_url, n)
        if pg_admin:
            progress("floor C: bare commit, PostgreSQL")
            pg_url = await create_pg_database(pg_admin)
            report["floors"]["C_commit_postgresql"] = await floors.database_commit(pg_url, n)
        progress("floor H: bare FastAPI request")
        with floors.BareFastAPI() as bare:
            url = f"http://127.0.0.1:{bare.port}/ping"
            report["floors"]["H_fastapi_request"] = await floors.http_get_loop(url, n)
            report["floors"]["H_fastapi_rate_10_clients"] = {"per_second": await floors.http_throughput(url, 3, 10)}
        for kind, db_url in (("sqlite", f"sqlite+aiosqlite:///{tmp / 'pipe.db'}"), ("postgresql", pg_url)):
            if not db_url:
                continue
            progress(f"outbox → relay → JetStream → consumer (inbox) on {kind}")
            fig = await outbox_to_consumer(db_url, nats_url, n=n // 2)
            c = report["floors"][f"C_commit_{kind}"]["p50_ms"]
            j = report["floors"]["J_jetstream_publish"]["p50_ms"]
            fig["ratio_p50_to_2C_plus_J"] = round(fig["p50_ms"] / (2 * c + j), 2)
            report["figures"][f"outbox_to_consumer_{kind}"] = fig
        if pg_url and pg_admin:
            await drop_pg_database(pg_admin, pg_url)
            pg_url = None
        if pg_admin and not skip_platform:
            report["python_speed_ms"] = floors.python_speed()
            await run_platform(report, nats_url, pg_admin, full, phases, extra_env, profile_dir, open_targets,
                               keep_databases, keep_logs)
        elif not pg_admin:
            progress("no PostgreSQL at 127.0.0.1:5432: the platform figures need it and are left out")
        report["load_average_at_end"] = os.getloadavg()
    finally:
        if pg_url and pg_admin:
            await drop_pg_database(pg_admin, pg_url)
        if embedded:
            embedded.cleanup()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Yimen benchmarks — {report['when']}", "", f"Machine: {report['machine']}", "",
             "## Floors", "", "| floor | p50 ms | p99 ms | per second |", "|---|---|---|---|"]
    for k, v in report["floors"].items():
        lines.append(f"| {k} | {v.get('p50_ms', '')} | {v.get('p99_ms', '')} | {v.get('per_second', '')} |")
    lines += ["", "## Figures", "", "| figure | p50 ms | p99 ms | ratio | notes |", "|---|---|---|---|---|"]
    for k, v in report["figures"].items():
        ratios = ", ".join(f"{rk}={rv}" for rk, rv in v.items() if rk.startswith("ratio"))
        notes = ", ".join(f"{nk}={nv}" for nk, nv in v.items()
                          if nk not in ("p50_ms", "p99_ms", "per_case_by_process", "sql_texts_per_case")
                          and not nk.startswith("ratio"))
        lines.append(f"| {k} | {v.get('p50_ms', '')} | {v.get('p99_ms', '')} | {ratios} | {notes} |")
    costs = {k: v["per_case_by_process"] for k, v in report["figures"].items() if v.get("per_case_by_process")}
    if costs:
        lines += ["", "## What a case costs each process", "",
                  "CPU ms, SQL statements (select / insert / update / delete) and transactions per case of the phase.",
                  "", "| phase | process | CPU ms | statements | select | insert | update | delete | transactions |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for phase, by in costs.items():
            for name, row in sorted(by.items(), key=lambda kv: -kv[1].get("cpu_ms", 0)):
                lines.append(f"| {phase} | {name} | {row.get('cpu_ms', '')} | {row.get('statements', '')} "
                             f"| {row.get('select', '')} | {row.get('insert', '')} | {row.get('update', '')} "
                             f"| {row.get('delete', '')} | {row.get('transactions', '')} |")
    if report.get("baseline"):
        lines += ["", comparison(report["baseline"], report)]
    if report.get("peer", {}).get("temporal"):
        lines += ["", beside_peer(report, report["peer"]["temporal"])]
    if report.get("rounds"):
        lines += ["", rounds_table(report["rounds"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("--full", action="store_true", help="larger samples")
    p.add_argument("--floors-only", action="store_true", help="floors and the outbox pipeline, not the platform")
    p.add_argument("--phases", default=",".join(PHASES),
                   help=f"platform phases to run, comma-separated (default all: {','.join(PHASES)})")
    p.add_argument("--platform-env", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra setting for the platform's processes (e.g. YIMEN_WORKFLOW_WEBHOOK_POLL_SECONDS=0.05)")
    p.add_argument("--baseline", metavar="GIT_REF",
                   help="first run the same harness on a worktree of this commit; print ratios to it")
    p.add_argument("--peer", choices=["temporal"], help="also run the peer's harness and print its figures beside ours")
    p.add_argument("--rounds", type=int, default=1, metavar="N",
                   help="with --peer: N rounds, ours then the peer's in each, so that a drift of the shared machine's "
                        "speed falls on both sides; round 1 is the usual run (both Temporal variants), later rounds "
                        "run our phases again and then Temporal with WAL only; prints each round's department "
                        "tasks/s and their median ratio")
    p.add_argument("--profile", nargs="?", const=str(PROFILES), metavar="DIR",
                   help=f"py-spy flame graphs of each service during the 10-client cycle (default {PROFILES})")
    p.add_argument("--open-cases", default="", metavar="N[,N…]",
                   help="open-case levels of the `open` phase (default 1000; with --full 1000,100000); past 300 "
                        "they are opened in bulk by the services' own code, then copied (bench/bulk.py)")
    p.add_argument("--sql-texts", action="store_true",
                   help="also count each statement text per case (JSON only: sql_texts_per_case), to find what to cut")
    p.add_argument("--keep-databases", action="store_true",
                   help="leave the platform's PostgreSQL databases (yimen_bench_<run>_<service>) in place at the end, "
                        "to EXPLAIN statements on the state the run left; drop them yourself afterwards")
    p.add_argument("--keep-logs", action="store_true",
                   help="keep the platform's logs (each service's, under a temporary directory the run names) at the "
                        "end, not only after errors; with --platform-env YIMEN_LOG_LEVEL=INFO they say each retry")
    p.add_argument("--out", help="write the JSON report here only (the baseline's child run)")
    args = p.parse_args()
    if args.rounds < 1 or (args.rounds > 1 and not args.peer):
        p.error("--rounds takes a whole number of 1 or more, and more than one round needs --peer")
    extra = dict(kv.split("=", 1) for kv in args.platform_env)
    if args.sql_texts:
        extra["YIMEN_BENCH_SQL_TEXTS"] = "1"
    t = time.perf_counter()
    base = None
    if args.baseline:
        child = ["--phases", args.phases] + (["--full"] if args.full else []) \
            + (["--open-cases", args.open_cases] if args.open_cases else []) \
            + (["--floors-only"] if args.floors_only else []) \
            + [a for kv in args.platform_env for a in ("--platform-env", kv)] \
            + (["--profile", str(Path(args.profile).resolve() / "baseline")] if args.profile else [])
        base = run_baseline(args.baseline, child)
    profile_dir = Path(args.profile).resolve() if args.profile else None
    targets = tuple(int(x) for x in args.open_cases.split(",") if x.strip())
    report = asyncio.run(run(args.full, args.floors_only, tuple(args.phases.split(",")), extra, profile_dir,
                             targets, args.keep_databases, args.keep_logs))
    if base:
        report["baseline"] = base
    if args.peer == "temporal":
        report.setdefault("peer", {})["temporal"] = run_temporal(args.full, smoke="smoke" in args.phases)
        if args.rounds > 1:
            report["rounds"] = [round_figures(report, report["peer"]["temporal"])]
            for i in range(2, args.rounds + 1):
                progress(f"round {i} of {args.rounds}: our phases ({args.phases}), then Temporal with WAL")
                ours = asyncio.run(run(args.full, False, tuple(args.phases.split(",")), extra,
                                       open_targets=targets))
                theirs = run_temporal(args.full, smoke="smoke" in args.phases, variants=WAL_VARIANT)
                report["rounds"].append(round_figures(ours, theirs))
                progress(rounds_table(report["rounds"]).splitlines()[-1])
    report["seconds"] = round(time.perf_counter() - t, 1)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False))
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (RESULTS / "latest.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
