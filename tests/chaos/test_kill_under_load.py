"""Cases run through the full cycle while service processes are killed with SIGKILL every few seconds (their
outbox relays and durable consumers with them: they run inside the service processes) and the NATS server
is killed once and restarted on the same port and store; every case still ends delivered, exactly once."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from pathlib import Path

import pytest

from shared.bus import Bus
from shared.testing import EmbeddedNats, delete_streams
from tests.chaos.cases import draft, exactly_once, prepared, submit, wait_final
from tests.chaos.conftest import CASES
from tests.chaos.harness import (
    KILLABLE,
    ChaosLauncher,
    Patient,
    consumers_drained,
    dead_letters,
    platform_env,
)

pytestmark = pytest.mark.chaos

KILL_EVERY = 3.0          # seconds between kills
MIN_KILLS = 8             # kills before the storm may end (more with more cases)


@pytest.fixture
def own_nats():
    server = EmbeddedNats().start()
    yield server
    server.cleanup()


def test_every_case_is_delivered_exactly_once_through_kills(databases, var_dir: Path, own_nats: EmbeddedNats,
                                                             figures: dict) -> None:
    prefix = "chaos" + secrets.token_hex(3)
    env = platform_env(var=var_dir / f"kill-{prefix}", nats_url=own_nats.url, prefix=prefix,
                       database_urls={s: databases.url(s) for s in KILLABLE})
    launcher = ChaosLauncher(env)
    rng = random.Random()
    try:
        launcher.start()
        base = f"http://127.0.0.1:{launcher.port}"
        path = prepared(base, launcher.admin, seed=rng.randint(0, 10**6))
        path.admin_headers = {"Authorization": f"Bearer {path.admin}"}
        figures.update(asyncio.run(_storm(launcher, own_nats, path, base, rng, prefix)))
    finally:
        launcher.stop()
        asyncio.run(delete_streams(own_nats.url, "YIMEN_" + prefix.upper()))


async def _storm(launcher: ChaosLauncher, nats: EmbeddedNats, path, base: str, rng: random.Random,
                 prefix: str) -> dict:
    p = Patient(base, budget=180)
    tag = secrets.token_hex(3)
    submitted: list[str] = []
    done = asyncio.Event()
    sem = asyncio.Semaphore(8)
    started = time.monotonic()

    async def one(i: int) -> None:
        # Cases arrive over the first half-minute or so, so that kills land on submissions too.
        await asyncio.sleep(i * min(0.75, 60 / CASES))
        async with sem:
            app_id = await draft(p, path, tag, i)
            await submit(p, path, app_id, f"{tag}-submit-{i}")
            submitted.append(app_id)

    async def chaos() -> dict:
        # workflow and intake first (their consumers and relays are busy from the first case on), then any
        # service at random; NATS once, midway.
        order = ["workflow", "intake"]
        kills: list[str] = []
        nats_down = 0.0
        min_kills = max(MIN_KILLS, CASES // 5)
        for n in range(10_000):
            await asyncio.sleep(KILL_EVERY)
            if done.is_set() and len(kills) >= min_kills:
                break
            if n == 4:
                t0 = time.monotonic()
                nats.kill()
                await asyncio.sleep(2)
                await asyncio.to_thread(nats.start)
                nats_down = time.monotonic() - t0
                kills.append("nats")
                continue
            name = order[n] if n < len(order) else rng.choice(KILLABLE)
            await asyncio.to_thread(launcher.kill9, name)
            await asyncio.sleep(0.3)
            await asyncio.to_thread(launcher.respawn, name)
            await asyncio.to_thread(launcher.wait_service_ready, name)
            kills.append(name)
        return {"kills": kills, "nats_down_seconds": round(nats_down, 1)}

    storm = asyncio.create_task(chaos())
    try:
        await asyncio.gather(*(one(i) for i in range(CASES)))
        submitted_at = time.monotonic() - started
    finally:
        done.set()
    killed = await asyncio.wait_for(storm, 300)
    assert len(submitted) == CASES
    assert {"workflow", "intake", "nats"} <= set(killed["kills"])
    last = await wait_final(p, path, submitted, timeout=240)
    stuck = {a: v["status"] for a, v in last.items() if v["status"] not in ("delivered", "closed")}
    assert not stuck, f"{len(stuck)} of {CASES} cases never reached delivered: {list(stuck.items())[:5]}"
    all_done = time.monotonic() - started
    # A case is delivered while a consumer of a service killed meanwhile (efficacy's clocks, intake's review
    # steps) may still wait for the events it had fetched to come again: the checks read the state once every
    # consumer has caught up, which a lost event never makes right.
    drained_in = await consumers_drained(
        lambda: Bus(nats.url, prefix=prefix, name="chaos-ops", manage_streams=False))
    checked: Counter[str] = Counter()
    problems = await exactly_once(p, path, submitted, checked)
    assert not problems, "\n".join(problems[:20])
    letters = await dead_letters(nats.url, prefix)
    assert not letters, {k: [(x["subject"], x["error"]) for x in v[:3]] for k, v in letters.items()}
    await p.aclose()
    recover = [t for ts in launcher.recoveries.values() for t in ts]
    return {"cases": CASES, **killed, "kill_count": len(killed["kills"]),
            "submitted_in_seconds": round(submitted_at, 1), "all_delivered_in_seconds": round(all_done, 1),
            "consumers_drained_after_s": round(drained_in, 1), "client_retries": p.retries, "clients_at_once": 8,
            "lost_cases": len(stuck), "exactly_once_problems": len(problems),
            "dead_letters": sum(map(len, letters.values())),
            "exactly_once_checked": dict(checked),
            "restart_to_ready_seconds_max": round(max(recover), 1) if recover else None,
            "restart_to_ready_seconds_mean": round(sum(recover) / len(recover), 1) if recover else None}
