"""Cases (办件): the process definitions workflow keeps, starting a case under the item version it was accepted
with, fanning a stage out to its departments, deciding and withdrawing a case, reading one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.domain.access import sees_case
from services.workflow.domain.process import (
    JOINT_REVIEW,
    CaseState,
    StepDefinition,
    TaskState,
    due_at,
    runnable_steps,
)
from services.workflow.events.contracts import (
    APPLICATION_DECIDED,
    TASK_ASSIGNED,
    TASK_CANCELLED,
    ApplicationAccepted,
    ApplicationDecided,
    ItemPublished,
    ItemResult,
    TaskAssigned,
    TaskCancelled,
    joined_reasons,
)
from services.workflow.service import calendar
from services.workflow.service.deliveries import delivery_rows, queue_webhook
from services.workflow.store import repository as repo
from services.workflow.store.tables import ProcessInstance, Stage, Task
from services.workflow.webhooks import WEBHOOKS_QUEUED, claim_at_write, hand_over
from shared.errors import NotFound
from shared.events import Event
from shared.messaging import publish
from shared.principal import Principal
from shared.types import utcnow


class DefinitionNotYetKnown(Exception):
    """The accepted item version has not reached us yet; raising makes the bus deliver the event again."""


class StageCompletedElsewhere(RuntimeError):
    """A fan-in found its stage completed already. The decision that counted the stage to its total holds the
    stage row's lock until it commits, so no other transaction can have completed it; should one have, this
    aborts the transaction, so the fan-in's writes and events (emitted before the completion, to go in with it)
    never commit for a stage completed twice."""


async def record_definition(session: AsyncSession, item: ItemPublished) -> bool:
    return await repo.save_definition(
        session,
        item_code=item.code,
        item_version=item.version,
        item_name=item.name,
        department=item.department,
        steps=item.process.steps,
        result=item.result.model_dump(mode="json"),
        published_at=item.published_at,
        received_at=utcnow(),
    )


async def start_case(session: AsyncSession, accepted: ApplicationAccepted) -> Row[Any] | None:
    """Start the case under the item version it was accepted with; None when it had started already."""
    definition = await repo.definition_of(session, accepted.item_code, accepted.item_version)
    if definition is None:
        raise DefinitionNotYetKnown(f"{accepted.item_code} v{accepted.item_version}")
    now = utcnow()
    instance = await repo.create_instance(
        session,
        application_id=accepted.application_id,
        receipt_number=accepted.receipt_number,
        item_code=accepted.item_code,
        item_version=accepted.item_version,
        item_name=accepted.item_name or definition.item_name,
        department=accepted.department or definition.department,
        applicant=accepted.applicant,
        state=CaseState.RUNNING,
        current_step=0,
        accepted_at=accepted.accepted_at,
        started_at=now,
        reasons=[],
    )
    if instance is None:
        return None
    steps = runnable_steps(definition.steps, item_department=instance.department)
    if not steps or accepted.case_kind == "immediate":
        # An immediate item (即办件): acceptance at the window is the decision. Workflow records it (so
        # datashare issues the certificate) and opens no task that could decide it a second time.
        await decide_case(session, instance, "approved", [], None, now)
    else:
        await start_stage(session, instance, 0, steps[0], start=accepted.accepted_at)
    return instance


async def steps_of(session: AsyncSession, instance: Any) -> list[StepDefinition]:
    definition = await repo.definition_of(session, instance.item_code, instance.item_version)
    assert definition is not None  # a case never starts without its definition
    return runnable_steps(definition.steps, item_department=instance.department)


@dataclass(frozen=True)
class NewTask:
    """A task as the fan-out inserted it (what a joint review opening needs of it)."""

    id: str
    department: str


#: The ids of tasks this process opened alone in their stage (bounded, oldest forgotten first): a decision of one
#: completes its stage, so it is taken in a transaction at once (`tasks.decide`) rather than first tried as a statement
#: of its own that would leave it alone. A hint only: a task another replica opened, or one forgotten, costs that
#: statement (which changes nothing), and one whose stage never committed is never decided.
LONE_TASKS: dict[str, None] = {}
LONE_TASKS_KEPT = 20_000


def _remember_lone(task_id: str) -> None:
    LONE_TASKS[task_id] = None
    if len(LONE_TASKS) > LONE_TASKS_KEPT:
        del LONE_TASKS[next(iter(LONE_TASKS))]


async def start_stage(
    session: AsyncSession, instance: Any, index: int, step: StepDefinition, *, start: datetime,
    completing: repo.Completion | None = None,
) -> int:
    """Fan out (并联审批): one task per department, all at once, each announced on the bus and queued for
    the department's webhook in this same transaction. The stage, its tasks and their deliveries are a few
    multi-row inserts whatever the number of departments, in one statement with the completion of the stage
    before (`completing`, a fan-in's) where the database allows. Returns the stage's id."""
    now = utcnow()
    stage = dict(
        instance_id=instance.id, step_index=index, step_key=step.key, step_name=step.name, kind=step.kind,
        lead_department=step.lead_department, on_reject=step.on_reject.value, limit_days=step.limit_days,
        deemed_approval_on_timeout=step.deemed_approval_on_timeout, tasks_total=len(step.task_departments),
        decided=0, started_at=now,
    )
    # Due dates count from acceptance for the first step and from assignment for later ones; each department
    # has its own limit within the step's when the item gives one (明确部门办理时限).
    rows: list[dict[str, Any]] = []
    for department in step.task_departments:
        limit = step.limit_for(department)
        rows.append(dict(
            id=uuid.uuid4().hex, instance_id=instance.id,
            application_id=instance.application_id, receipt_number=instance.receipt_number,
            item_code=instance.item_code, department=department, step_key=step.key, step_name=step.name,
            stage_kind=step.kind, lead=department == step.lead_department, limit_days=limit,
            state=TaskState.OPEN, assignee=None, assigned_at=now, due_at=due_at(start, limit, calendar.current()),
            paused_at=None, outcome=None, reasons=[], legal_basis=None, missing=[], decided_by=None, deemed=False,
            decided_at=None,
        ))
    if len(rows) == 1:
        _remember_lone(rows[0]["id"])
    if step.kind == JOINT_REVIEW:
        # The lead's system hears of the joint review itself (opened, then opinions), not of a task to decide.
        from services.workflow.service import joint_reviews

        stage_id, _, completed = await repo.open_stage(session, stage, rows, [], current_step=instance.current_step,
                                                       completing=completing)
        if completing is not None and not completed:
            raise StageCompletedElsewhere(f"stage {completing.stage_id}")
        for t in rows:
            await _announce_task(session, t, step, now)
            await joint_reviews.open_review(session, instance, NewTask(t["id"], t["department"]), step)
        return stage_id
    # The events are written at commit; their ids and bodies go into the deliveries now, with the stage.
    events = [await _announce_task(session, t, step, now) for t in rows]
    # Claimed by this process's sender as they are written, where it runs one: it sends them once this
    # transaction commits, without a claim of its own (a lease that runs out should the process die first).
    claimed_until = claim_at_write(session)
    deliveries = delivery_rows([(t["department"], e, t["id"]) for t, e in zip(rows, events, strict=True)],
                               claimed_until=claimed_until)
    stage_id, pending, completed = await repo.open_stage(
        session, stage, rows, deliveries, current_step=instance.current_step, completing=completing)
    if completing is not None and not completed:
        raise StageCompletedElsewhere(f"stage {completing.stage_id}")
    if pending and claimed_until is not None:
        hand_over(session, pending, {r["event_id"]: r["payload"] for r in deliveries})
    elif pending:
        session.info[WEBHOOKS_QUEUED] = True
    return stage_id


async def _announce_task(session: AsyncSession, t: dict[str, Any], step: StepDefinition, now: datetime) -> Event:
    return await publish(
        session, TASK_ASSIGNED, subject=t["id"],
        data=TaskAssigned(
            task_id=t["id"], application_id=t["application_id"], receipt_number=t["receipt_number"],
            item_code=t["item_code"], department=t["department"], step_key=step.key, step_name=step.name,
            stage_kind=step.kind, lead=t["lead"], limit_days=t["limit_days"], due_at=t["due_at"],
            assigned_at=now,
        ),
    )


def case_decision(outcome: str, reasons: list[str], legal_basis: str | None, now: datetime) -> dict[str, Any]:
    """What deciding a case sets on it (`repository.finish_instance`)."""
    return dict(state=outcome, outcome=outcome, decided_at=now, reasons=reasons, legal_basis=legal_basis)


async def decide_case(
    session: AsyncSession, instance: Any, outcome: str, reasons: list[str], legal_basis: str | None,
    now: datetime,
) -> None:
    if await repo.finish_instance(session, instance.id, **case_decision(outcome, reasons, legal_basis, now)):
        await announce_case_decided(session, instance, outcome, reasons, legal_basis, now)


async def announce_case_decided(session: AsyncSession, instance: Any, outcome: str, reasons: list[str],
                                legal_basis: str | None, now: datetime) -> None:
    """`application.decided`, once the case's row says so (in the same transaction)."""
    definition = await repo.definition_of(session, instance.item_code, instance.item_version)
    result = ItemResult.model_validate(definition.result if definition else {})
    await publish(
        session, APPLICATION_DECIDED, subject=instance.application_id,
        data=ApplicationDecided(
            application_id=instance.application_id, receipt_number=instance.receipt_number,
            item_code=instance.item_code, item_version=instance.item_version, outcome=outcome,
            reasons=joined_reasons(reasons),
            legal_basis=legal_basis, decided_at=now, applicant=instance.applicant, department=instance.department,
            result=result,
        ),
    )


async def withdraw_case(session: AsyncSession, application_id: str) -> int:
    """The applicant withdrew (撤回): the case stops and its undecided tasks are cancelled, each announced
    so the department stops working on it. Returns how many tasks were cancelled."""
    instance = await repo.get_instance(session, application_id)
    now = utcnow()
    if instance is None or not await repo.cancel_instance(session, instance.id, now):
        return 0
    cancelled = 0
    for task in await repo.tasks_of_instance(session, instance.id):
        if task.state not in (TaskState.OPEN, TaskState.AWAITING_CORRECTION):
            continue
        if not await repo.update_task_if(session, task.id, state=task.state, values={"state": TaskState.CANCELLED}):
            continue
        event = await publish(
            session, TASK_CANCELLED, subject=task.id,
            data=TaskCancelled(task_id=task.id, application_id=application_id, department=task.department,
                               reason="application withdrawn (申请人撤回申请)", cancelled_at=now),
        )
        await queue_webhook(session, task.department, event, task_id=task.id)
        if task.stage_kind == JOINT_REVIEW:
            from services.workflow.service import joint_reviews

            await joint_reviews.cancel(session, task.id)
        cancelled += 1
    return cancelled


@dataclass(frozen=True)
class CaseView:
    """A case with its stages in order, each with its tasks."""

    instance: ProcessInstance
    stages: list[tuple[Stage, list[Task]]]


async def get_case(session: AsyncSession, principal: Principal, application_id: str) -> CaseView:
    """The applicant (or the applying organisation's agent), staff of an involved department, supervisors and
    admins see a case; anyone else is told there is none."""
    instance = await repo.get_instance(session, application_id)
    if instance is None:
        raise NotFound(f"No case for application {application_id}.")
    stages = await repo.stages_of(session, instance.id)
    tasks = await repo.tasks_of_instance(session, instance.id)
    if not sees_case(principal, instance.applicant, (t.department for t in tasks)):
        raise NotFound(f"No case for application {application_id}.")
    by_stage: dict[int, list[Task]] = {}
    for t in tasks:
        by_stage.setdefault(t.stage_id, []).append(t)
    return CaseView(instance, [(s, by_stage.get(s.id, [])) for s in stages])
