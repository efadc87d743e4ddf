"""The workflow service as a real process, killed with SIGKILL between fan-out and fan-in while decisions
are arriving, then restarted: the case completes, once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest_asyncio
from sqlalchemy import select

from services.workflow.store.tables import messaging
from services.workflow.tests.helpers import (
    Recorder,
    application_accepted,
    department_decision,
    item_published,
    parallel_step,
)
from shared.bus import Bus
from shared.db import Database
from shared.settings import ROOT, ServiceSettings
from shared.testing import consumers_settled, emitted, eventually, free_port

DEPARTMENTS = ["LD-SCJGJ", "LD-WJJ", "LD-XFJ", "LD-STHJJ"]


async def drained(bus: Bus, consumer: str) -> bool:
    """The service's durable consumer has nothing left to deliver and nothing awaiting its acknowledgement."""
    info = await bus.js.consumer_info(bus.names.stream, bus.names.durable(consumer))
    return info.num_pending == 0 and info.num_ack_pending == 0


async def relayed(settings, application_id: str) -> set[str] | None:  # type: ignore[no-untyped-def]
    """The ids of the events the service wrote about the application, once its relay has published them all."""
    db = Database(settings.database_url)
    try:
        outbox = messaging.outbox
        async with db.transaction() as s:
            rows = (await s.execute(select(outbox.c.event_id, outbox.c.published_at)
                                    .where(outbox.c.payload.contains(application_id)))).all()
    finally:
        await db.dispose()
    return {r.event_id for r in rows} if rows and all(r.published_at for r in rows) else None


class WorkflowProcess:
    def __init__(self, settings, var_dir: Path) -> None:  # type: ignore[no-untyped-def]
        self.port = free_port()
        platform = settings.platform
        self.env = {
            **os.environ,
            "YIMEN_WORKFLOW_DATABASE_URL": settings.database_url,
            "YIMEN_WORKFLOW_PORT": str(self.port),
            "NATS_URL": platform.nats_url,
            "YIMEN_BUS_PREFIX": platform.bus_prefix,
            "YIMEN_VAR_DIR": str(var_dir),
            "YIMEN_ACK_WAIT_SECONDS": "2",
            "YIMEN_RELAY_INTERVAL_SECONDS": "0.05",
            "YIMEN_LOG_LEVEL": "WARNING",
        }
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.workflow", cwd=ROOT, env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )

        async def ready() -> bool:
            try:
                async with httpx.AsyncClient() as c:
                    return (await c.get(f"http://127.0.0.1:{self.port}/workflow/readyz", timeout=1)).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(ready, timeout=30, interval=0.1)

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        self.proc = None

    async def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 10)
            self.proc = None


@pytest_asyncio.fixture(scope="module")
async def bus(wf_settings):  # type: ignore[no-untyped-def]
    b = Bus(wf_settings.platform.nats_url, prefix=wf_settings.platform.bus_prefix, name="test-crash")
    await b.connect()
    yield b
    await b.close()


async def test_a_killed_service_completes_the_case_once_after_restart(wf_settings, var_dir, bus):
    rec = await Recorder().start_on(bus)
    service = WorkflowProcess(wf_settings, var_dir)
    try:
        await service.start()
        code = "CRASH-" + uuid.uuid4().hex[:6]
        await bus.publish(item_published(code, 1, [parallel_step(DEPARTMENTS)]))
        await eventually(lambda: consumers_settled(bus, "workflow-item-published"))  # the item is recorded
        accepted = application_accepted(code, 1)
        app_id = accepted.data["application_id"]
        await bus.publish(accepted)
        assigned = await eventually(lambda: len(rec.of("task.assigned", app_id)) == 4 and rec.of("task.assigned", app_id))
        tasks = {e.data["department"]: e.data["task_id"] for e in assigned}
        # Two departments decide and the process dies at once, mid-flight.
        await asyncio.gather(*(bus.publish(department_decision(d, tasks[d])) for d in DEPARTMENTS[:2]))
        await service.kill()
        # While it is down the others decide, one of them twice (a retrying department system).
        third = department_decision(DEPARTMENTS[2], tasks[DEPARTMENTS[2]])
        await bus.publish(third)
        await bus.publish(department_decision(DEPARTMENTS[3], tasks[DEPARTMENTS[3]]))
        await bus.publish_raw(bus.names.subject(third.type), third.to_json(), "retry-" + third.id)
        await service.start()
        decided = await eventually(lambda: rec.of("application.decided", app_id), timeout=30)
        # Every decision taken and acknowledged by the restarted process (those the killed one held come back
        # after the ack wait; the retried one is dropped by the inbox): its outbox now holds all it will publish.
        await eventually(lambda: consumers_settled(bus, "workflow-department-decision"), timeout=30)
        assert await _emitted(wf_settings, "yimen.workflow.application.decided", app_id) == 1
        assert await _emitted(wf_settings, "yimen.workflow.stage.completed", app_id) == 1
        await eventually(lambda: len(rec.of("task.decided", app_id)) == len(DEPARTMENTS))
        assert len(rec.of("application.decided", app_id)) == 1
        assert decided[0].data["outcome"] == "approved"
        assert len(rec.of("stage.completed", app_id)) == 1
        assert sorted(e.data["department"] for e in rec.of("task.decided", app_id)) == sorted(DEPARTMENTS)
    finally:
        await service.stop()
        await rec.stop()


async def _emitted(settings: ServiceSettings, event_type: str, app_id: str) -> int:
    """What the workflow process wrote to its outbox (all it can publish), read from its database."""
    db = Database(settings.database_url)
    try:
        return await emitted(SimpleNamespace(state=SimpleNamespace(db=db, messaging=messaging)), event_type, app_id)
    finally:
        await db.dispose()
