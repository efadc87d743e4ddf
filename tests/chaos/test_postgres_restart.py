"""PostgreSQL restarted under load: the services run on a private cluster, which is stopped (immediate mode,
a crash) while cases run and started again. Meanwhile every `/readyz` says 503 with the database down; after,
200 without anyone touching the services; every case completes, exactly once."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter

import httpx
import pytest

from shared.settings import SERVICES
from shared.testing import delete_streams
from tests.chaos.cases import draft, exactly_once, prepared, submit, wait_final
from tests.chaos.harness import ChaosLauncher, Patient, dead_letters, platform_env
from tests.chaos.pgcluster import PrivateCluster

pytestmark = pytest.mark.chaos

CASES = 20
DOWN_SECONDS = 6


@pytest.fixture
def cluster():
    c = PrivateCluster().init()
    c.start()
    yield c
    c.cleanup()


def test_services_recover_from_a_postgres_restart_and_readyz_tells_the_truth(cluster: PrivateCluster, nats_url: str,
                                                                             var_dir, bus_prefix: str,
                                                                             figures: dict) -> None:
    prefix = f"{bus_prefix}p{secrets.token_hex(2)}"
    urls = {s: cluster.create_database(f"yimen_chaos_{s}") for s in SERVICES}
    env = platform_env(var=var_dir / f"pg-{prefix}", nats_url=nats_url, prefix=prefix, database_urls=urls)
    launcher = ChaosLauncher(env)
    try:
        launcher.start()
        figures.update(asyncio.run(_run(launcher, cluster, nats_url, prefix)))
    finally:
        launcher.stop()
        asyncio.run(delete_streams(nats_url, "YIMEN_" + prefix.upper()))


async def readiness(launcher: ChaosLauncher) -> dict[str, tuple[int, dict]]:
    async with httpx.AsyncClient(timeout=10) as http:
        async def one(name: str) -> tuple[int, dict]:
            try:
                r = await http.get(f"{launcher.url(name)}/{name}/readyz")
                return r.status_code, r.json()
            except httpx.HTTPError as exc:
                return 0, {"error": repr(exc)}

        answers = await asyncio.gather(*(one(s) for s in SERVICES))
    return dict(zip(SERVICES, answers, strict=True))


async def _run(launcher: ChaosLauncher, cluster: PrivateCluster, nats_url: str, prefix: str) -> dict:
    base = f"http://127.0.0.1:{launcher.port}"
    path = await asyncio.to_thread(prepared, base, launcher.admin, 4)
    path.admin_headers = {"Authorization": f"Bearer {path.admin}"}
    p = Patient(base, budget=120)
    tag = secrets.token_hex(3)
    started = time.monotonic()
    submitted: list[str] = []

    async def one(i: int) -> None:
        await asyncio.sleep(i * 0.4)  # arrivals spread over the outage
        app_id = await draft(p, path, tag, i)
        await submit(p, path, app_id, f"{tag}-submit-{i}")
        submitted.append(app_id)

    cases = asyncio.gather(*(one(i) for i in range(CASES)))
    await asyncio.sleep(3)
    await asyncio.to_thread(cluster.stop, "immediate")
    stopped = time.monotonic()
    seen_down: dict[str, dict] = {}
    for _ in range(100):  # ≤ DOWN_SECONDS: every readyz must say 503, the database down
        for name, (code, body) in (await readiness(launcher)).items():
            if code == 503 and body["checks"]["database"] != "ok":
                seen_down[name] = body["checks"]
            elif code == 200:
                raise AssertionError(f"{name} says ready while PostgreSQL is down: {body}")
        if time.monotonic() - stopped >= DOWN_SECONDS:
            break
        await asyncio.sleep(0.5)
    assert set(seen_down) == set(SERVICES), seen_down
    await asyncio.to_thread(cluster.start)
    restarted = time.monotonic()
    ready_after: dict[str, float] = {}
    for _ in range(600):  # ≤ 60 s, nobody touches the services
        for name, (code, _body) in (await readiness(launcher)).items():
            if code == 200:
                ready_after.setdefault(name, time.monotonic() - restarted)
        if len(ready_after) == len(SERVICES):
            break
        await asyncio.sleep(0.1)
    assert set(ready_after) == set(SERVICES), await readiness(launcher)
    assert all(proc.poll() is None for _n, proc in launcher.procs), "no process died"
    await asyncio.wait_for(cases, 180)
    last = await wait_final(p, path, submitted, timeout=60)
    stuck = {a: v["status"] for a, v in last.items() if v["status"] not in ("delivered", "closed")}
    letters = await dead_letters(nats_url, prefix)
    parked = {k: [(x["subject"], x["error"]) for x in v[:2]] for k, v in letters.items()}
    # An outage of a few seconds must not park events: replaying them would be a manual step.
    assert not stuck and not letters, (f"{len(stuck)} of {CASES} cases stuck: {stuck}",
                                       f"{sum(map(len, letters.values()))} dead letters: {parked}")
    checked: Counter[str] = Counter()
    problems = await exactly_once(p, path, submitted, checked)
    assert not problems, "\n".join(problems[:20])
    await p.aclose()
    return {"cases": CASES, "postgres_down_seconds": round(restarted - stopped, 1),
            "ready_again_seconds_max": round(max(ready_after.values()), 1),
            "readyz_503_database_down_seen_on": len(seen_down), "ready_again_without_a_hand_on": len(ready_after),
            "ready_again_seconds_by_service": {k: round(v, 1) for k, v in sorted(ready_after.items())},
            "all_delivered_in_seconds": round(time.monotonic() - started, 1), "client_retries": p.retries,
            "lost_cases": len(stuck), "exactly_once_problems": len(problems),
            "dead_letters": sum(map(len, letters.values())),
            "exactly_once_checked": dict(checked)}
