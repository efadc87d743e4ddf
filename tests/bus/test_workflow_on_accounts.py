"""Workflow on a bus with the platform's accounts: it runs with its own credentials, and it applies a decision
sent on the bus only when the subject's department — the one NATS vouched for — is the task's department.
A department that wraps another department's decision in its own subject is dead-lettered, never applied."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio

from services.workflow.app import create_app
from services.workflow.config import WorkflowConfig
from services.workflow.store import repository as repo
from services.workflow.tests.helpers import (
    Recorder,
    application_accepted,
    department_decision,
    item_published,
    parallel_step,
    supervisor,
    tasks_of,
)
from shared.bus import Bus
from shared.testing import TokenIssuer, eventually, make_settings, running_app
from tests.bus.conftest import SecuredNats


@pytest_asyncio.fixture(scope="module")
async def workflow(secured_nats: SecuredNats, databases, var_dir, tokens: TokenIssuer) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    settings = make_settings(
        "workflow", database_url=databases.url("workflow"), nats_url=secured_nats.url,
        bus_prefix=secured_nats.prefix, var_dir=var_dir,
        nats_user="workflow", nats_password=secured_nats.bundle.passwords["workflow"],
    )
    config = WorkflowConfig(webhook_allow_private=True, webhook_poll_seconds=0.05, deemed_check_seconds=0.2)
    async with running_app(create_app, settings, tokens=tokens, config=config) as client:
        yield client


async def connected(secured: SecuredNats, user: str, **kw: Any) -> Bus:
    bus = secured.bus(user, **kw)
    await bus.connect(attempts=5)
    return bus


async def case(client: httpx.AsyncClient, tokens: TokenIssuer, app_id: str) -> dict[str, Any] | None:
    r = await client.get(f"/workflow/v1/cases/{app_id}", headers=supervisor(tokens))
    return r.json() if r.status_code == 200 and r.json()["stages"] else None


async def test_workflow_applies_a_bus_decision_only_from_the_tasks_own_department(
    secured_nats: SecuredNats, workflow: httpx.AsyncClient, tokens: TokenIssuer,
) -> None:
    recorder = await Recorder().start(workflow)  # workflow's own connection may read every platform event
    catalog = await connected(secured_nats, "catalog", service="catalog")
    intake = await connected(secured_nats, "intake", service="intake")
    wjj, xfj = await connected(secured_nats, "LD-WJJ"), await connected(secured_nats, "LD-XFJ")
    ops = await connected(secured_nats, "ops")
    try:
        # The case arrives as catalog and intake publish it, each with its own credentials.
        code = "BUS-" + uuid.uuid4().hex[:8]
        await catalog.publish(item_published(code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"])]))

        async def held() -> bool:
            async with workflow.app.state.db.transaction() as s:  # type: ignore[attr-defined]
                return await repo.get_definition(s, code, 1) is not None

        await eventually(held, timeout=30)
        accepted = application_accepted(code, 1)
        await intake.publish(accepted)
        app_id = accepted.data["application_id"]
        tasks = tasks_of(await eventually(lambda: case(workflow, tokens, app_id), timeout=30))
        wjj_task = tasks["LD-WJJ"]["id"]

        # LD-XFJ may only publish on its own subject; inside it, a decision dressed as LD-WJJ's.
        forged = department_decision("LD-WJJ", wjj_task)
        await xfj.publish_raw(xfj.names.subject("yimen.department.LD-XFJ.decision"), forged.to_json(), forged.id)
        letters = await eventually(lambda: ops.dead_letters("workflow-department-decision"), timeout=30)
        assert letters[0]["subject"] == xfj.names.subject("yimen.department.LD-XFJ.decision")
        assert "undeliverable" in letters[0]["error"] and forged.id in letters[0]["data"]

        # LD-XFJ's own decision about LD-WJJ's task: the subject's department is not the task's → refused.
        await xfj.publish(department_decision("LD-XFJ", wjj_task))
        refused = await eventually(lambda: [e for e in recorder.of("decision.refused")
                                            if e.data["task_id"] == wjj_task], timeout=30)
        assert refused[0].data["status"] == 403 and refused[0].data["department"] == "LD-XFJ"
        current = await case(workflow, tokens, app_id)
        assert current is not None and tasks_of(current)["LD-WJJ"]["state"] == "open"
        assert recorder.of("task.decided", app_id) == []

        # The task's own department, on its own subject: applied.
        await wjj.publish(department_decision("LD-WJJ", wjj_task))
        decided = await eventually(lambda: recorder.of("task.decided", app_id), timeout=30)
        assert [e.data["department"] for e in decided] == ["LD-WJJ"]
        assert decided[0].data["decided_by"]["kind"] == "department_system"
        assert len(await ops.dead_letters("workflow-department-decision")) == 1
    finally:
        await recorder.stop()
        for bus in (catalog, intake, wjj, xfj, ops):
            await bus.close()
