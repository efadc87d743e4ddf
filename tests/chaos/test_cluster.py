"""Beyond one machine's processes: every service at two replicas behind the gateway, the bus a three-node
JetStream cluster with the platform's streams at three replicas, and faults on both.

- `test_a_stream_leader_killed_under_load` (in `make test` and CI: about two minutes): 20 cases while the
  platform stream's leader is killed with -9 and restarted.
- `test_cluster_faults_under_load` (`make chaos`; 200 cases with `YIMEN_CHAOS_CASES=200`): the JetStream meta
  leader killed, then the stream leader, then one replica of every service, then one NATS node's routes cut
  for a while (tests/chaos/cluster.py: every route goes through relays that are closed, and no node advertises
  an address round them; the cut node is asserted to have no route left).

Afterwards every case is delivered exactly once, nothing is dead-lettered, and the cluster is whole again
(a meta leader, both streams with every peer current). Both run on the run's databases: PostgreSQL with
`YIMEN_TEST_POSTGRES_URL`, else the embedded SQLite files (the replicas of a service share one file)."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import SERVICES
from shared.testing import free_port
from tests.chaos.cases import draft, exactly_once, prepared, submit, wait_final
from tests.chaos.cluster import (
    ClusterLauncher,
    backlog,
    cluster_healed,
    cpu_seconds,
    dead_letters,
    jetstream_figures,
    operator_view,
    ops_command,
    postgres_figures,
    stream_leader,
)
from tests.chaos.harness import Patient, consumers_drained, platform_env

#: Cases in the full cluster test (`make chaos`): like the kill test, 40 unless `YIMEN_CHAOS_CASES` says more.
CHAOS_CASES = int(os.environ.get("YIMEN_CHAOS_CASES", "40"))
#: Quiet seconds before the cases, to measure what the platform costs doing nothing.
IDLE_SECONDS = 5.0
#: How long the cut-off node stays alone.
PARTITION_SECONDS = float(os.environ.get("YIMEN_CHAOS_PARTITION_SECONDS", "15"))


def cluster_platform(databases, var_dir: Path, tag: str) -> ClusterLauncher:
    prefix = f"cl{tag}{secrets.token_hex(3)}"
    # A NATS_URL nobody answers: the launcher starts its own servers (the cluster, with the accounts).
    env = platform_env(var=var_dir / f"cluster-{prefix}", nats_url=f"nats://127.0.0.1:{free_port()}",
                       prefix=prefix, database_urls={s: databases.url(s) for s in SERVICES},
                       YIMEN_WORKFLOW_WEBHOOK_ALLOW_PRIVATE="true",
                       # Fourteen service processes on one PostgreSQL (max_connections 100, shared with the suite).
                       **{f"YIMEN_{s.upper()}_DB_{k}": "3" for s in SERVICES for k in ("POOL_SIZE", "MAX_OVERFLOW")})
    launcher = ClusterLauncher(env, replicas=2)
    launcher.database_urls = {s: env[f"YIMEN_{s.upper()}_DATABASE_URL"] for s in SERVICES}
    return launcher


def test_a_stream_leader_killed_under_load(databases, var_dir: Path, figures: dict) -> None:
    launcher = cluster_platform(databases, var_dir, "s")
    try:
        launcher.start()
        figures.update(asyncio.run(_run(launcher, cases=20, faults=["stream_leader"])))
    finally:
        launcher.stop()
        launcher.close()


@pytest.mark.chaos
def test_cluster_faults_under_load(databases, var_dir: Path, figures: dict) -> None:
    launcher = cluster_platform(databases, var_dir, "c")
    try:
        launcher.start()
        figures.update(asyncio.run(_run(launcher, cases=CHAOS_CASES,
                                        faults=["meta_leader", "stream_leader", "replicas", "partition"])))
    finally:
        launcher.stop()
        launcher.close()


async def _run(launcher: ClusterLauncher, *, cases: int, faults: list[str]) -> dict[str, Any]:
    base = f"http://127.0.0.1:{launcher.port}"
    path = await asyncio.to_thread(prepared, base, launcher.admin, random.randint(0, 10**6))
    path.admin_headers = {"Authorization": f"Bearer {path.admin}"}
    p = Patient(base, budget=240)
    watch = httpx.AsyncClient(base_url=base)
    tag = secrets.token_hex(3)
    submitted: list[str] = []
    sem = asyncio.Semaphore(8)
    started = time.monotonic()
    stream = launcher.ops_bus().names.stream
    # What the cases cost (docs/SCALING.md checks its model against these): after the setup, before the cases.
    # The platform's idle cost first (pull consumers polling, relays, efficacy's clock evaluator, the gateway's
    # probes), over a few quiet seconds, so that the cost per case can be given net of it.
    idle_from, t_idle = cpu_seconds(launcher), time.monotonic()
    await asyncio.sleep(IDLE_SECONDS)
    cpu0, t0 = cpu_seconds(launcher), time.monotonic()
    idle_cores = sum(cpu0.get(k, 0) - idle_from.get(k, 0) for k in cpu0) / (t0 - t_idle)
    pg0, js0 = await postgres_figures(launcher.database_urls), await jetstream_figures(launcher)
    seen: list[dict[str, Any]] = []
    done_faults: list[dict[str, Any]] = []

    async def one(i: int) -> None:
        # Cases arrive over the first half-minute or more, so that the faults land on submissions too.
        await asyncio.sleep(i * min(0.75, 45 / cases))
        async with sem:
            app_id = await draft(p, path, tag, i)
            await submit(p, path, app_id, f"{tag}-submit-{i}")
            submitted.append(app_id)

    async def look(label: str) -> None:
        view = await operator_view(launcher, watch)
        view["label"] = label
        seen.append(view)

    async def kill_node(server_name: str, what: str) -> None:
        node = launcher.node(server_name)
        t0 = time.monotonic()
        await asyncio.to_thread(launcher.kill9, node.process)
        await look(f"{what} {node.process} killed")
        await asyncio.sleep(3)
        await look(f"{what} {node.process} down 3 s")
        await asyncio.to_thread(launcher.respawn, node.process)
        healed = await cluster_healed(launcher)
        done_faults.append({"fault": what.replace(" ", "_"), "node": node.process, "healed_in_s": round(time.monotonic() - t0, 1),
                            "meta_leader_after": healed["meta_leader"]})

    async def chaos() -> None:
        await asyncio.sleep(min(10.0, 0.25 * cases))  # some cases under way
        for fault in faults:
            if fault == "meta_leader":
                await kill_node(launcher.meta_leader(), "meta leader")
            elif fault == "stream_leader":
                await kill_node(await stream_leader(launcher, stream), "stream leader")
            elif fault == "replicas":
                # One replica of every service, at once, restarted after a moment (the gateway serves from the
                # other meanwhile).
                t0 = time.monotonic()
                victims = [n for n in launcher.instances if n.endswith("-2")]
                for name in victims:
                    await asyncio.to_thread(launcher.kill9, name)
                await look("one replica of every service killed")
                await asyncio.sleep(2)
                for name in victims:
                    await asyncio.to_thread(launcher.respawn, name)
                for name in victims:
                    await asyncio.to_thread(launcher.wait_service_ready, name)
                done_faults.append({"fault": "replicas", "killed": victims,
                                    "back_in_s": round(time.monotonic() - t0, 1)})
            elif fault == "partition":
                node = launcher.nats_nodes[-1]
                t0 = time.monotonic()
                cut = launcher.relays.cut(node.process)
                await asyncio.sleep(2)
                await look(f"{node.process} cut off")
                # The cut in the node's own view (/routez): no route left, at 2 s and at the end of the cut.
                routes_during = [await routes_of(watch, node.monitor_port)]
                await asyncio.sleep(PARTITION_SECONDS - 2)
                await look(f"{node.process} cut off {PARTITION_SECONDS:g} s")
                routes_during.append(await routes_of(watch, node.monitor_port))
                assert routes_during == [0, 0], f"{node.process} kept routes while cut off: {routes_during}"
                launcher.relays.join(node.process)
                healed = await cluster_healed(launcher)
                done_faults.append({"fault": "partition", "node": node.process, "relays_cut": cut,
                                    "routes_of_cut_node_at_2s_and_end": routes_during,
                                    "alone_s": PARTITION_SECONDS, "healed_in_s": round(time.monotonic() - t0, 1),
                                    "meta_leader_after": healed["meta_leader"]})
            await asyncio.sleep(2)

    storm = asyncio.create_task(chaos())
    try:
        await asyncio.gather(*(one(i) for i in range(cases)))
        submitted_in = time.monotonic() - started
        await asyncio.wait_for(storm, 600)
    finally:
        if not storm.done():
            storm.cancel()
    assert len(submitted) == cases
    assert [f["fault"] for f in done_faults] == faults
    last = await wait_final(p, path, submitted, timeout=300)
    stuck = {a: v["status"] for a, v in last.items() if v["status"] not in ("delivered", "closed")}
    if stuck:
        timelines = {a: [t["step"] for t in v.get("timeline", [])] for a, v in list(last.items()) if a in stuck}
        raise AssertionError(f"{len(stuck)} of {cases} cases never reached delivered: {list(stuck.items())[:5]}; "
                             f"timelines {list(timelines.items())[:3]}; consumers {await backlog(launcher)}; "
                             f"logs in {launcher.var / 'log'}")
    all_done = time.monotonic() - started
    # Delivered is what the applicant sees; efficacy (every event's clock keeper) and notify may still be
    # working through the backlog: the checks below wait for every consumer to be drained first.
    drained_in = await consumers_drained(launcher.ops_bus)
    cpu1, t1 = cpu_seconds(launcher), time.monotonic()
    pg1, js1 = await postgres_figures(launcher.database_urls), await jetstream_figures(launcher)
    spent = sum(cpu1.get(k, 0) - cpu0.get(k, 0) for k in cpu1)
    cost = {
        "platform_cpu_ms_per_case": round(1000 * spent / cases),
        "idle_platform_cores": round(idle_cores, 2),
        "platform_cpu_ms_per_case_net_of_idle": round(1000 * (spent - idle_cores * (t1 - t0)) / cases),
        "cpu_ms_per_case_by_process": {k: round(1000 * (cpu1[k] - cpu0.get(k, 0)) / cases) for k in sorted(cpu1)},
        "jetstream_messages_per_case": round((js1["messages"] - js0["messages"]) / cases, 1),
        "jetstream_bytes_per_case": round((js1["bytes"] - js0["bytes"]) / cases),
    }
    if pg0 and pg1:
        cost["postgres_rows_written_per_case"] = round(sum(pg1[k]["written"] - pg0[k]["written"] for k in pg1) / cases)
        cost["postgres_transactions_per_case_incl_polling_reads"] = round(
            sum(pg1[k]["xact_commit"] - pg0[k]["xact_commit"] for k in pg1) / cases)
        cost["postgres_rows_written_per_case_by_service"] = {
            k: round((pg1[k]["written"] - pg0[k]["written"]) / cases) for k in sorted(pg1)}
        cost["postgres_bytes_per_case"] = round(sum(pg1[k]["bytes"] - pg0[k]["bytes"] for k in pg1) / cases)
    checked: Counter[str] = Counter()
    problems = await exactly_once(p, path, submitted, checked)
    assert not problems, "\n".join(problems[:20])
    healed = await cluster_healed(launcher)
    letters = await dead_letters(launcher)
    assert not letters, {k: [(x["subject"], x["error"]) for x in v[:3]] for k, v in letters.items()}
    await look("after")
    after = seen[-1]
    assert all(v == 200 for v in after["readyz"].values()), after
    # The operator's command works on the cluster too, signing in as `ops` from var/.
    code, out = await asyncio.to_thread(ops_command, launcher, "dead-letters", "workflow-department-decision")
    assert code == 0, out
    await watch.aclose()
    await p.aclose()
    return {"cases": cases, "replicas": launcher.replicas, "nats_nodes": len(launcher.nats_nodes),
            "faults": done_faults, "cost": cost, "submitted_in_seconds": round(submitted_in, 1),
            "all_delivered_in_seconds": round(all_done, 1), "consumers_drained_after_s": round(drained_in, 1),
            "client_retries": p.retries, "exactly_once_problems": len(problems),
            "dead_letters": sum(map(len, letters.values())),
            "exactly_once_checked": dict(checked),
            "cluster_after": healed, "operator_saw": seen, "ops_dead_letters": out[-200:]}


async def routes_of(http: httpx.AsyncClient, monitor_port: int) -> int:
    return int((await http.get(f"http://127.0.0.1:{monitor_port}/routez", timeout=3)).json()["num_routes"])
