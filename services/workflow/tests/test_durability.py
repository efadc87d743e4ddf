"""Durability with the real bus and database: a restart between fan-out and fan-in, two replicas sharing
the work (no task created twice, no stage completed twice), concurrent last decisions."""

from __future__ import annotations

import asyncio
import uuid

import pytest_asyncio

from services.workflow.app import create_app
from services.workflow.store import repository as repo
from services.workflow.tests.helpers import (
    Recorder,
    application_accepted,
    case,
    define_item,
    department_decision,
    parallel_step,
    publish,
    reviewer,
    start_case,
    supervisor,
    tasks_of,
)
from shared.bus import Bus
from shared.testing import consumers_settled, emitted, eventually, running_app

DEPARTMENTS = ["LD-SCJGJ", "LD-WJJ", "LD-XFJ", "LD-STHJJ", "LD-GAJ", "LD-MZJ"]


@pytest_asyncio.fixture(scope="module")
async def bus(wf_settings):  # type: ignore[no-untyped-def]
    """A connection of the test's own, alive while the service restarts (as a department system's is)."""
    b = Bus(wf_settings.platform.nats_url, prefix=wf_settings.platform.bus_prefix, name="test-department")
    await b.connect()
    yield b
    await b.close()


@pytest_asyncio.fixture(scope="module")
async def events(bus):  # type: ignore[no-untyped-def]
    rec = await Recorder().start_on(bus)
    yield rec
    await rec.stop()


async def test_a_restart_between_fan_out_and_fan_in_still_completes_the_case_once(
    wf_settings, tokens, workflow_config, bus, events
):
    code = "RESTART-" + uuid.uuid4().hex[:6]
    async with running_app(create_app, wf_settings, tokens=tokens, config=workflow_config) as client:
        await define_item(client, tokens, code, 1, [parallel_step(DEPARTMENTS[:3])])
        c = await start_case(client, tokens, code)
        app_id = c["application_id"]
        tasks = tasks_of(c)
        await eventually(lambda: len(events.of("task.assigned", app_id)) == 3)
        r = await client.post(f"/workflow/v1/tasks/{tasks['LD-SCJGJ']['id']}/decision", json={"outcome": "approve"},
                              headers=reviewer(tokens, "LD-SCJGJ"))
        assert r.status_code == 200
    # The service is down: the departments decide on the bus anyway, one of them twice.
    late = department_decision("LD-XFJ", tasks["LD-XFJ"]["id"])
    wjj = department_decision("LD-WJJ", tasks["LD-WJJ"]["id"])
    await bus.publish(wjj)
    await bus.publish(late)
    await bus.publish(late)
    async with running_app(create_app, wf_settings, tokens=tokens, config=workflow_config) as client:
        await eventually(lambda: events.of("application.decided", app_id), timeout=15)
        done = await case(client, tokens, app_id)
        assert done["state"] == "approved"
        assert all(t["state"] == "decided" for t in tasks_of(done).values())
        # Every decision on the bus taken and acknowledged (the repeated one dropped by the inbox): the outbox now
        # holds all that this case will ever publish.
        await eventually(lambda: consumers_settled(client.app.state.bus, "workflow-department-decision"))
        assert await emitted(client.app, "yimen.workflow.application.decided", app_id) == 1
        assert await emitted(client.app, "yimen.workflow.stage.completed", app_id) == 1
        assert await emitted(client.app, "yimen.workflow.task.decided", app_id) == 3
    assert len(events.of("application.decided", app_id)) == 1
    assert len(events.of("stage.completed", app_id)) == 1
    assert len(events.of("task.decided", app_id)) == 3


async def test_two_replicas_create_each_task_once_and_complete_each_stage_once(
    wf_settings, tokens, workflow_config, bus, events
):
    code = "REPLICA-" + uuid.uuid4().hex[:6]
    async with (
        running_app(create_app, wf_settings, tokens=tokens, config=workflow_config) as a,
        running_app(create_app, wf_settings, tokens=tokens, config=workflow_config) as b,
    ):
        await define_item(a, tokens, code, 1, [parallel_step(DEPARTMENTS)])
        accepted = [application_accepted(code, 1) for _ in range(4)]
        ids = [e.data["application_id"] for e in accepted]
        # Each accepted event published twice (a retrying publisher): the replicas share the durable consumer.
        again = [application_accepted(code, 1, application_id=e.data["application_id"]) for e in accepted]
        for e, e2 in zip(accepted, again, strict=True):
            await publish(a, e)
            await publish(b, e2)
        cases = [await start_case(a, tokens, code)]  # a marker processed after them
        for app_id in ids:
            await eventually(lambda app_id=app_id: _started(a, tokens, app_id))
        # Both copies of every acceptance taken and acknowledged (the second dropped): the cases are final.
        await eventually(lambda: consumers_settled(a.app.state.bus, "workflow-application-accepted"))
        cases = [await _started(a, tokens, c) for c in [cases[0]["application_id"], *ids]]
        for c in cases:
            assert len(c["stages"]) == 1 and len(c["stages"][0]["tasks"]) == len(DEPARTMENTS)
            assert await emitted(a.app, "yimen.workflow.task.assigned", c["application_id"]) == len(DEPARTMENTS)
            await eventually(lambda c=c: len(events.of("task.assigned", c["application_id"])) == len(DEPARTMENTS))

        # All but two decide; the last two decide at the same instant on different replicas (REST).
        for c in cases[:3]:
            tasks = list(tasks_of(c).values())
            for t in tasks[:-2]:
                r = await a.post(f"/workflow/v1/tasks/{t['id']}/decision", json={"outcome": "approve"},
                                 headers=reviewer(tokens, t["department"]))
                assert r.status_code == 200
            x, y = tasks[-2:]
            rx, ry = await asyncio.gather(
                a.post(f"/workflow/v1/tasks/{x['id']}/decision", json={"outcome": "approve"},
                       headers=reviewer(tokens, x["department"])),
                b.post(f"/workflow/v1/tasks/{y['id']}/decision", json={"outcome": "approve"},
                       headers=reviewer(tokens, y["department"])),
            )
            assert (rx.status_code, ry.status_code) == (200, 200), (rx.text, ry.text)
        # The other cases: every department decides on the bus at once, both replicas consuming.
        for c in cases[3:]:
            await asyncio.gather(*(bus.publish(department_decision(d, t["id"])) for d, t in tasks_of(c).items()))
        # The same task decided at once on both replicas: exactly one wins.
        race = await start_case(a, tokens, code)
        t = tasks_of(race)["LD-WJJ"]
        r1, r2 = await asyncio.gather(
            a.post(f"/workflow/v1/tasks/{t['id']}/decision", json={"outcome": "approve"}, headers=reviewer(tokens, "LD-WJJ")),
            b.post(f"/workflow/v1/tasks/{t['id']}/decision", json={"outcome": "approve"}, headers=reviewer(tokens, "LD-WJJ")),
        )
        assert sorted([r1.status_code, r2.status_code]) == [200, 409]

        for c in cases:
            await eventually(lambda c=c: events.of("application.decided", c["application_id"]), timeout=15)
        # Every decision on the bus taken and acknowledged: nothing more can complete a stage or a case.
        await eventually(lambda: consumers_settled(a.app.state.bus, "workflow-department-decision"))
        for c in cases:
            assert await emitted(a.app, "yimen.workflow.application.decided", c["application_id"]) == 1
            assert await emitted(a.app, "yimen.workflow.stage.completed", c["application_id"]) == 1
        async with a.app.state.db.transaction() as s:
            for c in cases:
                app_id = c["application_id"]
                assert len(events.of("application.decided", app_id)) == 1, app_id
                assert len(events.of("stage.completed", app_id)) == 1, app_id
                instance = await repo.get_instance(s, app_id)
                assert instance is not None and instance.state == "approved"
                (stage,) = await repo.stages_of(s, instance.id)
                assert stage.decided == stage.tasks_total == len(DEPARTMENTS)
                assert stage.completed_at is not None


async def _started(client, tokens, app_id):  # type: ignore[no-untyped-def]
    r = await client.get(f"/workflow/v1/cases/{app_id}", headers=supervisor(tokens))
    return r.json() if r.status_code == 200 and r.json()["stages"] else None
