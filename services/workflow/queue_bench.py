"""Pages per call of workflow's queue-shaped statements with many rows behind them:
`python -m services.workflow.queue_bench [--open 10000] [--finished 10000] [--rounds 200] [--revision REV]`.

Needs `YIMEN_TEST_POSTGRES_URL` (the pages are PostgreSQL's, from `pg_stat_statements`). A fresh database is
migrated to `--revision` (default head) and filled through workflow's own store code the way the platform
fills it: `--open` one-department cases whose task stays open (the bench's open cases: their department never
answers) and `--finished` five-department cases decided and delivered, every delivery going through the
sender's claim and `mark_delivered` in rounds, so the tables hold what a busy day leaves (dead versions of every
row that left a queue, until vacuum). Then `--rounds` five-department cases run through the statements that
grew in bench run J: the webhook claim (five deliveries due), marking them delivered, and the five decisions
(`UPDATE task … RETURNING`). Reported: shared buffers (hit or read) per call of each, from
`pg_stat_statements`, and the plan of the claim and of a decision (EXPLAIN ANALYZE, BUFFERS; the generic plan
too, which asyncpg's prepared statements get after five calls).

The measured figure is pages, not time: the server's own work, which the machine's load does not change."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy import insert
from sqlalchemy.dialects import postgresql

from services.workflow.store import repository as repo
from services.workflow.store.tables import ProcessInstance
from shared.db import Database
from shared.migrate import upgrade
from shared.types import utcnow

FIVE = ["LD-SCJGJ", "LD-WJJ", "LD-XFJ", "LD-STHJJ", "LD-GAJ"]
#: The open cases' department is one of the five (in the bench, the one-department item's).
OPEN_DEPARTMENT = FIVE[0]
LEASE = timedelta(seconds=60)


def _case(n: int, departments: list[str], now: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    app_id = f"qb{n:09d}"
    instance = dict(application_id=app_id, receipt_number=f"R{n:012d}", item_code="QB", item_version=1,
                    item_name="queue bench", department=departments[0], applicant={"kind": "person"},
                    state="running", current_step=0, accepted_at=now, started_at=now, reasons=[])
    tasks = [dict(id=uuid.uuid4().hex, application_id=app_id, receipt_number=instance["receipt_number"],
                  item_code="QB", department=d, step_key="review", step_name="review", stage_kind="parallel",
                  lead=i == 0, limit_days=5, state="open", assignee=None, assigned_at=now, due_at=now + timedelta(days=7),
                  paused_at=None, outcome=None, reasons=[], legal_basis=None, missing=[], decided_by=None,
                  deemed=False, decided_at=None) for i, d in enumerate(departments)]
    return instance, tasks


async def _start(db: Database, first: int, count: int, departments: list[str]) -> list[tuple[int, list[str]]]:
    """`count` cases from number `first`, each with one stage of `departments`' tasks and their deliveries
    queued (pending); returns (stage id, task ids) per case."""
    now = utcnow()
    out = []
    async with db.transaction() as s:
        for n in range(first, first + count):
            instance, tasks = _case(n, departments, now)
            instance_id = (await s.execute(insert(ProcessInstance.__table__).values(**instance)
                                           .returning(ProcessInstance.__table__.c.id))).scalar_one()
            stage_id = await repo.add_stage(s, instance_id=instance_id, step_index=0, step_key="review",
                                            step_name="review", kind="parallel", lead_department=departments[0],
                                            on_reject="any_rejects", limit_days=5, deemed_approval_on_timeout=False,
                                            tasks_total=len(tasks), decided=0, started_at=now)
            for t in tasks:
                t.update(stage_id=stage_id, instance_id=instance_id)
            await repo.add_tasks(s, tasks)
            await repo.add_deliveries(s, [
                dict(department=t["department"], event_id=uuid.uuid4().hex, event_type="yimen.workflow.task.assigned",
                     task_id=t["id"], payload=json.dumps({"subject": t["id"], "pad": "x" * 600}), state="pending",
                     attempts=0, next_attempt_at=now, created_at=now) for t in tasks])
            out.append((stage_id, [t["id"] for t in tasks]))
    return out


async def _send_due(db: Database) -> int:
    """One sender round as `webhooks._round` runs it, every endpoint answering 204."""
    now = utcnow()
    async with db.transaction() as s:
        due = await repo.claim_due_deliveries(s, now, LEASE)
    if due:
        async with db.transaction() as s:
            await repo.mark_delivered(s, [d.id for d in due], at=utcnow(), status=204)
    return len(due)


async def _decide(db: Database, stage_id: int, task_ids: list[str], departments: list[str]) -> None:
    """Each department decides its task in a transaction of its own, as `tasks.decide_task` does."""
    for task_id, department in zip(task_ids, departments, strict=True):
        async with db.transaction() as s:
            row = await repo.decide_task_if(s, task_id, department=department, not_kind="joint_review", values={
                "state": "decided", "outcome": "approve", "reasons": [], "legal_basis": None, "missing": [],
                "decided_by": {"kind": "system", "id": department}, "deemed": False, "decided_at": utcnow(),
                "paused_at": None})
            assert row is not None
            await repo.count_decision(s, stage_id)


async def _fill(db: Database, open_cases: int, finished: int) -> None:
    n = 0
    for first in range(0, open_cases, 500):
        count = min(500, open_cases - first)
        await _start(db, n, count, [OPEN_DEPARTMENT])
        n += count
        while await _send_due(db):
            pass
    for first in range(0, finished, 100):
        count = min(100, finished - first)
        for stage_id, task_ids in await _start(db, n, count, FIVE):
            await _decide(db, stage_id, task_ids, FIVE)
        n += count
        while await _send_due(db):
            pass


#: Statement texts as pg_stat_statements normalises them, by what they are here.
MEASURED = {
    "webhook claim": "UPDATE webhook_delivery SET next_attempt_at",
    "mark delivered": "UPDATE webhook_delivery SET state",
    "decision UPDATE task": "UPDATE task SET state",
    "count decision": "UPDATE stage SET decided",
}


async def _statements(admin: asyncpg.Connection, dbname: str) -> dict[str, dict[str, float]]:
    rows = await admin.fetch(
        "SELECT s.query, s.calls, s.shared_blks_hit + s.shared_blks_read AS pages FROM pg_stat_statements s "
        "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1", dbname)
    out: dict[str, dict[str, float]] = {}
    for name, prefix in MEASURED.items():
        calls = sum(r["calls"] for r in rows if r["query"].startswith(prefix))
        pages = sum(r["pages"] for r in rows if r["query"].startswith(prefix))
        out[name] = {"calls": calls, "pages_per_call": round(pages / calls, 1) if calls else 0.0}
    calls = sum(r["calls"] for r in rows)
    out["all statements"] = {"calls": calls, "pages": sum(r["pages"] for r in rows)}
    return out


async def _tables(url: str) -> dict[str, dict[str, int]]:
    """Live and dead rows and vacuum counts of the queue tables (the statistics view of their own database)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT relname, n_live_tup, n_dead_tup, autovacuum_count, autoanalyze_count "
                                "FROM pg_stat_user_tables WHERE relname IN ('task', 'webhook_delivery')")
    finally:
        await conn.close()
    return {r["relname"]: {k: int(v) for k, v in dict(r).items() if k != "relname"} for r in rows}


def _positional(statement: Any, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """The statement's text as workflow sends it to PostgreSQL, and its parameters in order."""
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect())
    params = compiled.construct_params(values)
    return str(compiled), [params[name] for name in compiled.positiontup or ()]


async def _plans(url: str) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the claim and of one decision as workflow builds them, in a custom and a
    generic plan (asyncpg prepares each statement: after five runs PostgreSQL may keep a generic plan), each in
    a transaction rolled back."""
    conn = await asyncpg.connect(url)
    plans: dict[str, str] = {}
    try:
        task = await conn.fetchrow("SELECT id, department FROM task WHERE state = 'open' AND department = $1 "
                                   "ORDER BY seq DESC LIMIT 1", OPEN_DEPARTMENT)
        await conn.execute("INSERT INTO webhook_delivery (department, event_id, event_type, payload, state, attempts, "
                           "next_attempt_at, created_at) VALUES ('LD-WJJ', 'qb-plan', 't', '{}', 'pending', 0, "
                           "now(), now())")
        now = utcnow() + timedelta(seconds=1)
        statements = {
            "claim": _positional(repo._claim_statement("postgresql", repo.CLAIM_LIMIT),
                                 {"w_now": now, "w_until": now + LEASE}),
            "decision": _positional(repo._decide_statement(True, True, ("state",)),
                                    {"state": "decided", "w_task_id": task["id"], "w_department": task["department"],
                                     "w_not_kind": "joint_review"}),
        }
        for name, (sql, args) in statements.items():
            await conn.execute(f"PREPARE qb_{name} AS {sql}")
            for mode in ("force_custom_plan", "force_generic_plan"):
                await conn.execute(f"SET plan_cache_mode = {mode}")
                tr = conn.transaction()
                await tr.start()
                try:
                    values = ", ".join(str(a) if isinstance(a, int) else "'" + str(a).replace("'", "''") + "'"
                                       for a in args)  # EXECUTE takes no protocol parameters
                    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) "
                                            f"EXECUTE qb_{name}({values})")
                    plans[f"{name}, {mode.split('_')[1]} plan"] = "\n".join(r[0] for r in rows)
                finally:
                    await tr.rollback()
    finally:
        await conn.close()
    return plans


async def main(open_cases: int, finished: int, rounds: int, revision: str, settle: float,
               keep: bool = False, vacuum: bool = False) -> dict[str, Any]:
    admin_url = os.environ.get("YIMEN_TEST_POSTGRES_URL", "")
    if not admin_url:
        raise SystemExit("YIMEN_TEST_POSTGRES_URL is needed: the figure is PostgreSQL's pages")
    dbname = f"yimen_queue_bench_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{dbname}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + dbname
    sa_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    db = Database(sa_url, pool_size=2)
    report: dict[str, Any] = {"open_cases": open_cases, "finished_cases": finished, "rounds": rounds,
                              "revision": revision}
    try:
        await asyncio.to_thread(upgrade, "workflow", sa_url, revision)
        t = time.perf_counter()
        await _fill(db, open_cases, finished)
        report["fill_seconds"] = round(time.perf_counter() - t, 1)
        if settle:
            await asyncio.sleep(settle)  # autovacuum's turn, as between two bursts on a real day
        if vacuum:  # what autovacuum does once its threshold is crossed (a server with autovacuum off never does)
            conn = await asyncpg.connect(url)
            try:
                await conn.execute("VACUUM ANALYZE task, webhook_delivery")
            finally:
                await conn.close()
        report["tables_after_fill"] = await _tables(url)
        await db.dispose()  # fresh connections: their prepared statements start with the tables as they are now
        db = Database(sa_url, pool_size=2)
        await admin.execute("SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = $1), 0)",
                            dbname)
        n = open_cases + finished
        for i in range(rounds):
            ((stage_id, task_ids),) = await _start(db, n + i, 1, FIVE)
            assert await _send_due(db) == len(FIVE)
            await _decide(db, stage_id, task_ids, FIVE)
        report["per_call"] = await _statements(admin, dbname)
        report["tables_after_rounds"] = await _tables(url)
        report["pages_per_round"] = round(report["per_call"].pop("all statements")["pages"] / rounds, 1)
        report["plans"] = await _plans(url)
    finally:
        await db.dispose()
        if keep:
            report["kept_database"] = dbname
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await admin.close()
    return report


def cli() -> None:
    p = argparse.ArgumentParser(prog="python -m services.workflow.queue_bench", description=__doc__.split("\n")[0])
    p.add_argument("--open", type=int, default=10_000, help="open one-department cases (their task stays open)")
    p.add_argument("--finished", type=int, default=2_000, help="decided and delivered five-department cases")
    p.add_argument("--rounds", type=int, default=200, help="five-department cases measured")
    p.add_argument("--revision", default="head", help="workflow's schema revision to measure")
    p.add_argument("--settle", type=float, default=0.0, help="seconds to wait after filling (autovacuum's turn)")
    p.add_argument("--plans", action="store_true", help="print the plans too")
    p.add_argument("--keep", action="store_true", help="keep the database (to look at it; drop it yourself)")
    p.add_argument("--vacuum", action="store_true", help="VACUUM ANALYZE the queue tables after filling")
    args = p.parse_args()
    report = asyncio.run(main(args.open, args.finished, args.rounds, args.revision, args.settle, args.keep,
                              args.vacuum))
    plans = report.pop("plans")
    print(json.dumps(report, indent=2, default=str))
    if args.plans:
        for name, plan in plans.items():
            print(f"--- {name}\n{plan}")


if __name__ == "__main__":
    cli()
