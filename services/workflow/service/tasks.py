"""Department tasks: the inbox, decisions (by a reviewer, a department system on the bus, or the law on
timeout), fan-in of a stage's decisions, reopening after a correction (补正), giving a task to a handler."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.domain.access import claim, inbox_department, may_decide, may_reassign, sees_task
from services.workflow.domain.process import (
    JOINT_REVIEW,
    OnReject,
    Outcome,
    TaskDecision,
    TaskState,
    check_decision,
    resumed_due_at,
    stage_outcome,
)
from services.workflow.events.contracts import (
    DECISION_REFUSED,
    STAGE_COMPLETED,
    TASK_DECIDED,
    TASK_HANDLER_ASSIGNED,
    TASK_REOPENED,
    DecidedBy,
    DecisionRefused,
    DepartmentDecision,
    Handler,
    MissingItem,
    StageCompleted,
    TaskDecided,
    TaskHandlerAssigned,
    TaskReopened,
    joined_reasons,
)
from services.workflow.service import calendar
from services.workflow.service.cases import (
    LONE_TASKS,
    StageCompletedElsewhere,
    announce_case_decided,
    case_decision,
    start_stage,
    steps_of,
)
from services.workflow.service.deliveries import queue_webhook
from services.workflow.store import repository as repo
from services.workflow.store.tables import Task
from shared.db import dialect_of
from shared.errors import Conflict, FieldError, Forbidden, NotFound, Problem, ValidationProblem
from shared.events import Event
from shared.messaging import outbox_row, publish, service_event
from shared.pagination import PageParams, paginate
from shared.principal import Principal
from shared.types import utcnow

log = logging.getLogger("yimen.workflow")


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


SYSTEM_DECIDER = Decider(kind="system", id="workflow", name="逾期视为同意 (deemed approval on timeout)",
                         department=None)


# ---- reading -----------------------------------------------------------------------------------------


async def list_tasks(session: AsyncSession, principal: Principal, *, department: str | None, state: str | None,
                     item_code: str | None, page: PageParams) -> tuple[list[Task], str | None]:
    """A department's inbox, oldest first; supervisors and admins see every department's."""
    dept = inbox_department(principal, department)
    return await paginate(
        session, repo.task_list_query(department=dept, state=state, item_code=item_code),
        key_columns=[Task.seq], params=page, key_of=lambda t: [t.seq],
    )


async def get_task(session: AsyncSession, principal: Principal, task_id: str) -> Task:
    """Visible to its department, supervisors and admins; anyone else is told there is none."""
    task = await repo.get_task(session, task_id)
    if task is None or not sees_task(principal, task.department):
        raise NotFound(f"No task {task_id}.")
    return task


# ---- deciding ----------------------------------------------------------------------------------------


async def decide(session: AsyncSession, principal: Principal, task_id: str, decision: DecisionInput) -> Row[Any]:
    """A reviewer of the task's department or the department's system decides over REST."""
    if not may_decide(principal):
        raise Forbidden("Only a department reviewer or a department system decides tasks.")
    decider = Decider(kind=principal.kind, id=principal.subject, name=principal.name, department=principal.department,
                      contact=claim(principal, "phone"), unit=claim(principal, "unit"))
    db = session.info.get("database")
    if (db is not None and dialect_of(session) == "postgresql" and decider.department is not None
            and task_id not in LONE_TASKS
            and not check_decision(decision.outcome, decision.reasons, decision.legal_basis, decision.missing)):
        # The decision is all the request's transaction does: unless it completes its stage (then fan-in moves the
        # case on in the same transaction, below), it is one statement that is its own transaction.
        values, event, marks = _decision(session, task_id, decider, decision, deemed=False)
        async with db.engine.connect() as conn:
            alone = await conn.execution_options(isolation_level="AUTOCOMMIT")
            task = await repo.decide_alone(alone, task_id, department=decider.department, not_kind=JOINT_REVIEW,
                                           values=values, event=event, marks=marks)
        if task is not None:
            return task  # type: ignore[no-any-return]
    return await decide_task(session, task_id, decider, decision)


def department_of(event: Event) -> str:
    """`yimen.department.<code>.decision` → `<code>`."""
    parts = event.type.split(".")
    return parts[2] if len(parts) == 4 and parts[0] == "yimen" and parts[1] == "department" else ""


async def decide_on_bus(session: AsyncSession, event: Event) -> Row[Any] | None:
    """A department system decides by event: the department in the subject must be the task's. The subject
    is what NATS vouches for (a department's credentials publish only `yimen.department.<its code>.decision`)
    and the event's type is that subject (`shared.messaging.InboxConsumer` dead-letters any other), so the
    department read here is the one that spoke. A refused decision is answered with
    `workflow.decision.refused` (there is no HTTP status on the bus) and not retried: retrying cannot make
    it valid. None when refused."""
    department = department_of(event)
    task_id = str(event.data.get("task_id", ""))
    try:
        decision = DepartmentDecision.model_validate(event.data)
        if event.source not in (f"/department/{department}", ""):
            raise Forbidden(f"Event source {event.source} does not match department {department}.")
        return await decide_task(
            session, decision.task_id,
            Decider(kind="department_system", id=f"department:{department}", name=decision.decided_by.name,
                    department=department, contact=decision.decided_by.contact, unit=decision.decided_by.unit),
            DecisionInput(Outcome(decision.outcome), decision.reasons, decision.legal_basis, decision.missing),
        )
    except Problem as problem:
        await _refuse(session, event, task_id, department, problem.status, str(problem))
    except ValueError as exc:  # pydantic's ValidationError: a malformed payload
        await _refuse(session, event, task_id, department, 422, str(exc)[:500])
    return None


async def _refuse(session: AsyncSession, event: Event, task_id: str, department: str, status: int,
                  reason: str) -> None:
    log.warning("decision event %s for task %s refused: %s %s", event.id, task_id, status, reason)
    task = await repo.task_guard(session, task_id) if task_id else None
    await publish(
        session, DECISION_REFUSED, subject=task_id or None,
        data=DecisionRefused(task_id=task_id, application_id=task.application_id if task else None,
                             department=department, status=status, reason=reason, event_id=event.id,
                             refused_at=utcnow()),
    )


async def decide_task(
    session: AsyncSession, task_id: str, decider: Decider, decision: DecisionInput, *, deemed: bool = False,
    joint: bool = False,
) -> Row[Any]:
    """The same checks for REST and bus: the task's own department (403), an open task (409), one decision
    per task (409), a rejection with reasons and legal basis (422). The checks of the task are the conditions
    of the one UPDATE that records the decision, so a refused decision leaves nothing behind."""
    breaks = check_decision(decision.outcome, decision.reasons, decision.legal_basis, decision.missing)
    if breaks:
        await _check_decidable(session, task_id, decider, deemed=deemed, joint=joint)
        raise ValidationProblem([FieldError(field=f"body.{b.field}", rule=b.rule, message=b.message) for b in breaks])
    if not deemed and decider.department is None:
        await _check_decidable(session, task_id, decider, deemed=deemed, joint=joint)
        raise Forbidden(f"Task {task_id} belongs to another department.")
    values, event, marks = _decision(session, task_id, decider, decision, deemed=deemed)
    # The checks that need the task are the UPDATE's own conditions: the happy path is one statement (the
    # decision, its event and, for a final one, its count in the stage), and only a refused decision reads the
    # task to say why. The count locks the stage row, which the stage's other decisions wait for: it comes
    # last, and only a final decision counts (a correction request pauses the task).
    task, stage, case, stage_tasks = await repo.decide_and_count(
        session, task_id, department=None if deemed else decider.department,
        not_kind=None if joint else JOINT_REVIEW, values=values, event=event, marks=marks,
    )
    if task is None:
        await _check_decidable(session, task_id, decider, deemed=deemed, joint=joint)
        raise Conflict(f"Task {task_id} was decided meanwhile.")
    if stage is not None:
        await _fan_in(session, stage, case, stage_tasks)
    return task


def _decision(session: AsyncSession, task_id: str, decider: Decider, decision: DecisionInput, *,
              deemed: bool) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """What the decision's statement writes: the task's values, its event's outbox row and the marks in it."""
    now = utcnow()
    pausing = decision.outcome is Outcome.REQUEST_CORRECTION
    reasons = [r for r in decision.reasons if r.strip()]
    decided_by = DecidedBy(kind=decider.kind, id=decider.id, name=decider.name, contact=decider.contact,
                           unit=decider.unit)
    # The event is built before the task is read: what it says of the task (its case, receipt, department and
    # step) are marks the decision's statement fills in from the row it decides (`repo.decide_and_count`).
    marks = repo.decision_marks()
    event = service_event(
        session, TASK_DECIDED, subject=task_id,
        data=TaskDecided(
            task_id=task_id, application_id=marks["application_id"], receipt_number=marks["receipt_number"],
            department=marks["department"], step_key=marks["step_key"], outcome=decision.outcome.value,
            reasons=joined_reasons(reasons), legal_basis=decision.legal_basis, missing=decision.missing,
            decided_by=decided_by, deemed=deemed, decided_at=now,
        ),
    )
    values = {
        "state": TaskState.AWAITING_CORRECTION if pausing else TaskState.DECIDED,
        "outcome": decision.outcome.value,
        "reasons": reasons,
        "legal_basis": decision.legal_basis,
        "missing": [m.model_dump(mode="json") for m in decision.missing],
        "decided_by": decided_by.model_dump(mode="json"),
        "deemed": deemed,
        "decided_at": now,
        "paused_at": now if pausing else None,
    }
    return values, outbox_row(session, event), marks


async def _check_decidable(session: AsyncSession, task_id: str, decider: Decider, *, deemed: bool,
                           joint: bool) -> None:
    """Raise what refuses a decision on the task as it is now, in the order the checks are documented:
    none (404), another department's (403), not open (409), a joint review's (409)."""
    task = await repo.task_guard(session, task_id)
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


async def _fan_in(session: AsyncSession, stage: Any, case: Any, stage_tasks: list[Any] | None) -> None:
    """`stage` as the decision counted it under the stage row's lock; the transaction whose count reaches the
    total and whose conditional UPDATE sets `completed_at` is the one that completes the stage — exactly once.
    `case` and `stage_tasks` (its decided tasks) are what the decision brought along (PostgreSQL, from the stage
    row's `decisions`), else read here: on SQLite, and for a stage counted before that column existed."""
    if stage.decided < stage.tasks_total or stage.completed_at is not None:
        return
    decided = stage_tasks
    if decided is None or len(decided) < stage.tasks_total:
        decided = await repo.decided_tasks_of_stage(session, stage.id)
    if len(decided) < stage.tasks_total:
        return
    outcome = stage_outcome(
        OnReject(stage.on_reject), stage.lead_department,
        [TaskDecision(t.department, Outcome(t.outcome or "approve")) for t in decided],
    )
    now = utcnow()
    instance = case if case is not None else await repo.instance_row(session, stage.instance_id)
    steps = await steps_of(session, instance)
    following = stage.step_index + 1
    # The completion is certain here (the count holds the stage row's lock, `StageCompletedElsewhere`), so what it
    # announces is emitted first and written in the completion's own statement where the database allows.
    await _announce_stage(session, instance, stage, outcome, now)
    if outcome == "approved" and following < len(steps):
        await start_stage(session, instance, following, steps[following], start=now,
                          completing=repo.Completion(stage.id, outcome, now))
        return
    deciding = _deciding_tasks(stage, decided, outcome)
    reasons = [r for t in deciding for r in t.reasons]
    legal = "; ".join(dict.fromkeys(t.legal_basis for t in deciding if t.legal_basis)) or None
    # A case still undecided when its last stage completes: it is decided by a transaction that holds its open
    # tasks' locks, and a withdrawal waits for them (or deadlocks and one of the two rolls back).
    await announce_case_decided(session, instance, outcome, reasons, legal, now)
    # The stage and the case it decides change together (one statement where the database allows).
    completed, finished = await repo.complete_stage_and_case(
        session, stage.id, instance.id, outcome=outcome, at=now, case=case_decision(outcome, reasons, legal, now))
    if not (completed and finished):
        raise StageCompletedElsewhere(f"stage {stage.id} of case {instance.id}")


async def _announce_stage(session: AsyncSession, instance: Any, stage: Any, outcome: str, now: datetime) -> None:
    await publish(
        session, STAGE_COMPLETED, subject=instance.application_id,
        data=StageCompleted(application_id=instance.application_id, step_key=stage.step_key, outcome=outcome,
                            completed_at=now),
    )


def _deciding_tasks(stage: Any, decided: list[Any], outcome: str) -> list[Any]:
    if outcome == "approved":
        return [t for t in decided if t.department == stage.lead_department]
    if stage.on_reject == OnReject.LEAD_ARBITRATES:
        return [t for t in decided if t.department == stage.lead_department]
    return [t for t in decided if t.outcome == Outcome.REJECT]


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


# ---- corrections and handlers ------------------------------------------------------------------------


async def reopen_task(session: AsyncSession, task_id: str, application_id: str) -> Task | None:
    """The applicant answered a correction request (补正): the task opens again with the working days it had
    left, and the department decides again. None when there is nothing to reopen (unknown or not paused)."""
    task = await repo.get_task(session, task_id)
    if task is None or task.application_id != application_id or task.state != TaskState.AWAITING_CORRECTION:
        return None
    now = utcnow()
    due = resumed_due_at(task.due_at, task.paused_at or now, now, calendar.current())
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


async def reassign(session: AsyncSession, principal: Principal, task_id: str, *, assignee: str,
                   name: str | None = None, office_phone: str | None = None, unit: str | None = None) -> Task:
    """Give a task to a handler of its department (经办人). Taking a task oneself: name, office phone and unit
    come from one's own token unless given; for a colleague, only from what is given."""
    task = await get_task(session, principal, task_id)
    if not may_reassign(principal, task.department):
        raise Forbidden("Only the task's own department reassigns it.")
    own = assignee == principal.subject
    handler = Handler(
        id=assignee, name=name or (principal.name if own else None),
        office_phone=office_phone or (claim(principal, "phone") if own else None),
        unit=unit or (claim(principal, "unit") if own else None),
    )
    return await assign_handler(session, task, handler)


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
