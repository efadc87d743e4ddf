"""The process engine: the use cases both entry points share (REST routes and bus consumers). Each function
runs inside the caller's transaction and writes state, events (outbox) and webhook deliveries together."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.domain.process import (
    JOINT_REVIEW,
    CaseState,
    OnReject,
    Outcome,
    StepDefinition,
    TaskDecision,
    TaskState,
    check_decision,
    due_at,
    recounted_due_at,
    resumed_due_at,
    runnable_steps,
    stage_outcome,
)
from services.workflow.events.contracts import (
    APPLICATION_DECIDED,
    STAGE_COMPLETED,
    TASK_ASSIGNED,
    TASK_CANCELLED,
    TASK_DECIDED,
    TASK_HANDLER_ASSIGNED,
    TASK_REOPENED,
    ApplicationAccepted,
    ApplicationDecided,
    DecidedBy,
    Handler,
    ItemPublished,
    ItemResult,
    MissingItem,
    StageCompleted,
    TaskAssigned,
    TaskCancelled,
    TaskDecided,
    TaskHandlerAssigned,
    TaskReopened,
    joined_reasons,
)
from services.workflow.store import repository as repo
from services.workflow.store.tables import CalendarYear, ProcessInstance, Stage, Task
from shared.errors import Conflict, FieldError, Forbidden, NotFound, ValidationProblem
from shared.events import Event
from shared.messaging import publish
from shared.types import utcnow
from shared.workdays import WorkCalendar, YearTable

CALENDAR = WorkCalendar()


class DefinitionNotYetKnown(Exception):
    """The accepted item version has not reached us yet; raising makes the bus deliver the event again."""


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


async def start_case(session: AsyncSession, accepted: ApplicationAccepted) -> ProcessInstance | None:
    """Start the case under the item version it was accepted with; None when it had started already."""
    definition = await repo.get_definition(session, accepted.item_code, accepted.item_version)
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
        await _decide_case(session, instance, "approved", [], None, now)
    else:
        await _start_stage(session, instance, 0, steps[0], start=accepted.accepted_at)
    return instance


async def _steps_of(session: AsyncSession, instance: ProcessInstance) -> list[StepDefinition]:
    definition = await repo.get_definition(session, instance.item_code, instance.item_version)
    assert definition is not None  # a case never starts without its definition
    return runnable_steps(definition.steps, item_department=instance.department)


async def _start_stage(
    session: AsyncSession, instance: ProcessInstance, index: int, step: StepDefinition, *, start: datetime
) -> Stage:
    """Fan out (并联审批): one task per department, all at once, each announced on the bus and queued for
    the department's webhook in this same transaction."""
    now = utcnow()
    stage = await repo.add(
        session,
        Stage(
            instance_id=instance.id, step_index=index, step_key=step.key, step_name=step.name, kind=step.kind,
            lead_department=step.lead_department, on_reject=step.on_reject.value, limit_days=step.limit_days,
            deemed_approval_on_timeout=step.deemed_approval_on_timeout, tasks_total=len(step.task_departments),
            decided=0, started_at=now,
        ),
    )
    await repo.advance_instance(session, instance.id, index)
    # Due dates count from acceptance for the first step and from assignment for later ones; each department
    # has its own limit within the step's when the item gives one (明确部门办理时限).
    for department in step.task_departments:
        limit = step.limit_for(department)
        due = due_at(start, limit, CALENDAR)
        task = await repo.add(
            session,
            Task(
                id=uuid.uuid4().hex, stage_id=stage.id, instance_id=instance.id,
                application_id=instance.application_id, receipt_number=instance.receipt_number,
                item_code=instance.item_code, department=department, step_key=step.key, step_name=step.name,
                stage_kind=step.kind, lead=department == step.lead_department, limit_days=limit,
                state=TaskState.OPEN, assigned_at=now, due_at=due, reasons=[], missing=[], deemed=False,
            ),
        )
        event = await publish(
            session, TASK_ASSIGNED, subject=task.id,
            data=TaskAssigned(
                task_id=task.id, application_id=task.application_id, receipt_number=task.receipt_number,
                item_code=task.item_code, department=department, step_key=step.key, step_name=step.name,
                stage_kind=step.kind, lead=task.lead, limit_days=limit, due_at=due, assigned_at=now,
            ),
        )
        if step.kind == JOINT_REVIEW:
            # The lead's system hears of the joint review itself (opened, then opinions), not of a task to decide.
            from services.workflow.service import joint_reviews

            await joint_reviews.open_review(session, instance, task, step)
            continue
        await queue_webhook(session, department, event, task_id=task.id)
    return stage


async def queue_webhook(session: AsyncSession, department: str, event: Event, *, task_id: str | None) -> None:
    """Write the delivery with the task (an outbox of deliveries). Without an enabled endpoint it is kept
    as `missed`, so the department can replay it once it registers or re-enables one."""
    hook = await repo.get_webhook(session, department)
    now = utcnow()
    await repo.add_delivery(
        session, department=department, event_id=event.id, event_type=event.type, task_id=task_id,
        payload=event.to_json().decode(), state="pending" if hook is not None and hook.enabled else "missed",
        attempts=0, next_attempt_at=now, created_at=now,
    )


@dataclass(frozen=True)
class Decider:
    """Who decides: a department reviewer, a department system, or the system itself (deemed approval)."""

    kind: str
    id: str
    name: str | None
    department: str | None
    contact: str | None = None
    unit: str | None = None


@dataclass(frozen=True)
class DecisionInput:
    outcome: Outcome
    reasons: list[str]
    legal_basis: str | None
    missing: list[MissingItem]


async def decide_task(
    session: AsyncSession, task_id: str, decider: Decider, decision: DecisionInput, *, deemed: bool = False,
    joint: bool = False,
) -> Task:
    """The same checks for REST and bus: the task's own department (403), an open task (409), one decision
    per task (409), a rejection with reasons and legal basis (422). Every check happens before any write,
    so a refused decision leaves nothing behind."""
    task = await repo.get_task(session, task_id)
    if task is None:
        raise NotFound(f"No task {task_id}.")
    if not deemed and decider.department != task.department:
        raise Forbidden(f"Task {task_id} belongs to department {task.department}.")
    if task.state != TaskState.OPEN:
        raise Conflict(f"Task {task_id} is {task.state}; only an open task can be decided.", state=task.state)
    if task.stage_kind == JOINT_REVIEW and not joint:
        raise Conflict(f"Task {task_id} is a joint review; the lead department settles it by consolidating the "
                       "participants' opinions (POST /workflow/v1/joint-reviews/{id}/consolidation).",
                       slug="joint-review-task")
    breaks = check_decision(decision.outcome, decision.reasons, decision.legal_basis, decision.missing)
    if breaks:
        raise ValidationProblem([FieldError(field=f"body.{b.field}", rule=b.rule, message=b.message) for b in breaks])
    now = utcnow()
    pausing = decision.outcome is Outcome.REQUEST_CORRECTION
    changed = await repo.update_task_if(
        session, task.id, state=TaskState.OPEN,
        values={
            "state": TaskState.AWAITING_CORRECTION if pausing else TaskState.DECIDED,
            "outcome": decision.outcome.value,
            "reasons": [r for r in decision.reasons if r.strip()],
            "legal_basis": decision.legal_basis,
            "missing": [m.model_dump(mode="json") for m in decision.missing],
            "decided_by": {"kind": decider.kind, "id": decider.id, "name": decider.name,
                           "contact": decider.contact, "unit": decider.unit},
            "deemed": deemed,
            "decided_at": now,
            "paused_at": now if pausing else None,
        },
    )
    if not changed:
        raise Conflict(f"Task {task_id} was decided meanwhile.")
    task = await repo.get_task(session, task_id)
    assert task is not None
    await publish(
        session, TASK_DECIDED, subject=task.id,
        data=TaskDecided(
            task_id=task.id, application_id=task.application_id, receipt_number=task.receipt_number,
            department=task.department, step_key=task.step_key, outcome=decision.outcome.value,
            reasons=joined_reasons(task.reasons), legal_basis=task.legal_basis, missing=decision.missing,
            decided_by=DecidedBy(kind=decider.kind, id=decider.id, name=decider.name, contact=decider.contact,
                                 unit=decider.unit), deemed=deemed,
            decided_at=now,
        ),
    )
    if not pausing:
        await _fan_in(session, task.stage_id)
    return task


async def _fan_in(session: AsyncSession, stage_id: int) -> None:
    """Count the decision under the stage row's lock; the transaction whose count reaches the total and
    whose conditional UPDATE sets `completed_at` is the one that completes the stage — exactly once."""
    stage = await repo.count_decision(session, stage_id)
    if stage.decided < stage.tasks_total or stage.completed_at is not None:
        return
    tasks = await repo.tasks_of_stage(session, stage_id)
    decided = [t for t in tasks if t.state == TaskState.DECIDED]
    if len(decided) < stage.tasks_total:
        return
    outcome = stage_outcome(
        OnReject(stage.on_reject), stage.lead_department,
        [TaskDecision(t.department, Outcome(t.outcome or "approve")) for t in decided],
    )
    now = utcnow()
    if not await repo.complete_stage(session, stage_id, outcome=outcome, at=now):
        return
    instance = await repo.get_instance_by_id(session, stage.instance_id)
    await publish(
        session, STAGE_COMPLETED, subject=instance.application_id,
        data=StageCompleted(application_id=instance.application_id, step_key=stage.step_key, outcome=outcome,
                            completed_at=now),
    )
    steps = await _steps_of(session, instance)
    following = stage.step_index + 1
    if outcome == "approved" and following < len(steps):
        await _start_stage(session, instance, following, steps[following], start=now)
        return
    deciding = _deciding_tasks(stage, decided, outcome)
    reasons = [r for t in deciding for r in t.reasons]
    legal = "; ".join(dict.fromkeys(t.legal_basis for t in deciding if t.legal_basis)) or None
    await _decide_case(session, instance, outcome, reasons, legal, now)


def _deciding_tasks(stage: Stage, decided: list[Task], outcome: str) -> list[Task]:
    if outcome == "approved":
        return [t for t in decided if t.department == stage.lead_department]
    if stage.on_reject == OnReject.LEAD_ARBITRATES:
        return [t for t in decided if t.department == stage.lead_department]
    return [t for t in decided if t.outcome == Outcome.REJECT]


async def _decide_case(
    session: AsyncSession, instance: ProcessInstance, outcome: str, reasons: list[str], legal_basis: str | None,
    now: datetime,
) -> None:
    if not await repo.finish_instance(
        session, instance.id, state=outcome, outcome=outcome, decided_at=now, reasons=reasons,
        legal_basis=legal_basis,
    ):
        return
    definition = await repo.get_definition(session, instance.item_code, instance.item_version)
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


async def reopen_task(session: AsyncSession, task_id: str, application_id: str) -> Task | None:
    """The applicant answered a correction request (补正): the task opens again with the working days it had
    left, and the department decides again. None when there is nothing to reopen (unknown or not paused)."""
    task = await repo.get_task(session, task_id)
    if task is None or task.application_id != application_id or task.state != TaskState.AWAITING_CORRECTION:
        return None
    now = utcnow()
    due = resumed_due_at(task.due_at, task.paused_at or now, now, CALENDAR)
    if not await repo.update_task_if(
        session, task.id, state=TaskState.AWAITING_CORRECTION,
        values={"state": TaskState.OPEN, "outcome": None, "decided_at": None, "decided_by": None, "paused_at": None,
           "due_at": due},
    ):
        return None
    event = await publish(
        session, TASK_REOPENED, subject=task.id,
        data=TaskReopened(task_id=task.id, application_id=task.application_id, department=task.department,
                          reopened_at=now, due_at=due),
    )
    if task.stage_kind == JOINT_REVIEW:
        # The owner corrected: a re-inspection of the failed points only (复验), announced as a new round.
        from services.workflow.service import joint_reviews

        await joint_reviews.reinspect(session, task)
    else:
        await queue_webhook(session, task.department, event, task_id=task.id)
    return await repo.get_task(session, task.id)


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


async def assign_handler(session: AsyncSession, task: Task, handler: Handler) -> Task:
    """Give an open task to one of its department's staff (经办人) and tell the applicant's timeline who and how
    to reach them."""
    if task.state in (TaskState.DECIDED, TaskState.CANCELLED):
        raise Conflict(f"Task {task.id} is {task.state}.")
    task.assignee = handler.id
    await session.flush()
    await publish(session, TASK_HANDLER_ASSIGNED, subject=task.id, data=TaskHandlerAssigned(
        task_id=task.id, application_id=task.application_id, receipt_number=task.receipt_number,
        department=task.department, step_key=task.step_key, step_name=task.step_name, handler=handler,
        assigned_at=utcnow()))
    return task


def calendar_of(rows: list[CalendarYear]) -> WorkCalendar:
    """The library's tables, overridden by the years efficacy loaded (the State Council's notices)."""
    return WorkCalendar().with_tables(
        YearTable(r.year, frozenset(date.fromisoformat(d) for d in r.holidays),
                  frozenset(date.fromisoformat(d) for d in r.workdays), r.source) for r in rows)


async def reload_calendar(session: AsyncSession) -> None:
    """Every replica counts with the tables in the database (a load reaches one replica's consumer)."""
    global CALENDAR
    CALENDAR = calendar_of(await repo.calendar_years(session))


async def calendar_loaded(session: AsyncSession, *, year: int, holidays: list[str], workdays: list[str], source: str,
                          loaded_at: datetime) -> int:
    """A year's official table arrived: keep it, count with it, and count again the due dates of open tasks
    that reach into that year (they were counted on the estimate, or on an older table). Returns how many
    due dates moved."""
    global CALENDAR
    old = CALENDAR
    await repo.save_calendar_year(session, year=year, holidays=holidays, workdays=workdays, source=source,
                                  loaded_at=loaded_at)
    CALENDAR = calendar_of(await repo.calendar_years(session))
    moved = 0
    for task, stage, instance in await repo.open_tasks_due_from(session, datetime(year, 1, 1, tzinfo=UTC)):
        anchor = instance.accepted_at if stage.step_index == 0 else task.assigned_at
        if anchor.astimezone(UTC).year > year:
            continue
        due = recounted_due_at(task.due_at, anchor, old, CALENDAR)
        if due != task.due_at:
            task.due_at = due
            moved += 1
    await session.flush()
    return moved


SYSTEM_DECIDER = Decider(kind="system", id="workflow", name="逾期视为同意 (deemed approval on timeout)",
                         department=None)


async def deem_overdue(session: AsyncSession, now: datetime) -> int:
    """Decide overdue tasks of stages whose legal basis deems silence approval, recorded as `deemed`."""
    count = 0
    for task in await repo.overdue_deemed_tasks(session, now):
        try:
            await decide_task(
                session, task.id, SYSTEM_DECIDER,
                DecisionInput(Outcome.APPROVE, ["逾期未作决定，依法视为准予 (deemed approved on timeout)"], None, []),
                deemed=True,
            )
            count += 1
        except Conflict:
            continue
    return count

