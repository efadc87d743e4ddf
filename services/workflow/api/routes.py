"""HTTP routes of the workflow service (thin: parse, call the engine and the store, return)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from services.workflow import engine
from services.workflow.api.models import (
    AssigneeUpdate,
    AttemptRead,
    CaseRead,
    DecisionCreate,
    DeliveryRead,
    ReplayRequest,
    ReplayResult,
    StageRead,
    TaskRead,
    WebhookPut,
    WebhookRead,
    task_read,
)
from services.workflow.config import WorkflowConfig
from services.workflow.domain.process import Outcome
from services.workflow.events.contracts import Handler
from services.workflow.store import repository as repo
from services.workflow.store.tables import Task, WebhookDelivery
from services.workflow.webhooks import check_endpoint, new_secret
from shared.auth import ADMIN, DEPARTMENT_REVIEWER, SUPERVISOR, CurrentPrincipal, Principal
from shared.db import SessionDep
from shared.errors import Forbidden, NotFound
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep, paginate
from shared.types import utcnow


def _claim(principal: Principal, name: str) -> str | None:
    value = principal.claims.get(name)
    return str(value)[:100] if value else None


router = APIRouter()

TaskId = Annotated[str, Path(min_length=1, max_length=64, description="The task's id.")]
DepartmentCode = Annotated[str, Path(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                     examples=["LD-SCJGJ"])]


def _sees_all(p: Principal) -> bool:
    return p.has(SUPERVISOR, ADMIN)


def _acts_for_department(p: Principal, department: str) -> bool:
    """A reviewer of the department or the department's own system."""
    return p.department == department and (p.is_department_system or p.has(DEPARTMENT_REVIEWER))


def _config(request: Request) -> WorkflowConfig:
    return request.app.state.ctx.extras["config"]


# ---- tasks ----------------------------------------------------------------------------------------------


@router.get(
    "/tasks",
    response_model=Page[TaskRead],
    tags=["tasks"],
    summary="A department's task inbox",
    description="A department's reviewers and its system see its own tasks; supervisors and admins see all "
    "(and may filter by `department`). Filter by `state` and `item_code`; oldest first.",
    responses=problem_responses(401, 403, 422),
)
async def list_tasks(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    state: Annotated[str | None, Query(pattern="^(open|awaiting_correction|decided|cancelled)$")] = None,
    item_code: Annotated[str | None, Query(max_length=64)] = None,
    department: Annotated[str | None, Query(max_length=64, description="Supervisors and admins only.")] = None,
) -> Page[TaskRead]:
    if _sees_all(principal):
        dept = department
    elif principal.department and (principal.is_department_system or principal.is_staff):
        if department and department != principal.department:
            raise Forbidden("You see your own department's tasks only.")
        dept = principal.department
    else:
        raise Forbidden("A department's inbox is for its staff and its system.")
    rows, cursor = await paginate(
        session, repo.task_list_query(department=dept, state=state, item_code=item_code),
        key_columns=[Task.seq], params=page, key_of=lambda t: [t.seq],
    )
    return Page[TaskRead](items=[task_read(t) for t in rows], next_cursor=cursor)


async def _visible_task(session: SessionDep, principal: Principal, task_id: str) -> Task:
    task = await repo.get_task(session, task_id)
    if task is None or not (_sees_all(principal) or principal.department == task.department):
        raise NotFound(f"No task {task_id}.")
    return task


@router.get(
    "/tasks/{task_id}",
    response_model=TaskRead,
    tags=["tasks"],
    summary="One task",
    description="Visible to its department, supervisors and admins; anyone else gets 404.",
    responses=problem_responses(401, 404),
)
async def get_task(task_id: TaskId, session: SessionDep, principal: CurrentPrincipal) -> TaskRead:
    return task_read(await _visible_task(session, principal, task_id))


@router.post(
    "/tasks/{task_id}/decision",
    response_model=TaskRead,
    tags=["tasks"],
    summary="Decide a task (approve, reject, request correction)",
    description="By a reviewer of the task's department or by the department's system. Only an open task, "
    "one decision per task. `reject` needs `reasons` and `legal_basis`; `request_correction` needs "
    "`missing` and pauses the task until the applicant's correction arrives through intake. The decision "
    "that completes the stage moves the case on.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def decide(task_id: TaskId, body: DecisionCreate, session: SessionDep, principal: CurrentPrincipal) -> TaskRead:
    if not (principal.department and (principal.is_department_system or principal.has(DEPARTMENT_REVIEWER))):
        raise Forbidden("Only a department reviewer or a department system decides tasks.")
    task = await engine.decide_task(
        session, task_id,
        engine.Decider(kind=principal.kind, id=principal.subject, name=principal.name,
                       department=principal.department, contact=_claim(principal, "phone"),
                       unit=_claim(principal, "unit")),
        engine.DecisionInput(Outcome(body.outcome), body.reasons, body.legal_basis, body.missing),
    )
    return task_read(task)


@router.post(
    "/tasks/{task_id}/assignee",
    response_model=TaskRead,
    tags=["tasks"],
    summary="Give a task to a handler of its department (经办人)",
    description="Emits `yimen.workflow.task.handler_assigned` with the handler's name, office phone and unit, which the "
                "applicant's timeline shows (谁在办). Assigning oneself takes them from one's token (`name`, `phone`, "
                "`unit`); for a colleague, give them in the body.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def reassign(task_id: TaskId, body: AssigneeUpdate, session: SessionDep, principal: CurrentPrincipal) -> TaskRead:
    task = await _visible_task(session, principal, task_id)
    if not (_acts_for_department(principal, task.department) or
            (principal.department == task.department and principal.has(SUPERVISOR))):
        raise Forbidden("Only the task's own department reassigns it.")
    # Taking a task oneself: name, office phone and unit come from one's own token; for a colleague, from the body.
    own = body.assignee == principal.subject
    handler = Handler(
        id=body.assignee, name=body.name or (principal.name if own else None),
        office_phone=body.office_phone or (_claim(principal, "phone") if own else None),
        unit=body.unit or (_claim(principal, "unit") if own else None),
    )
    task = await engine.assign_handler(session, task, handler)
    return task_read(task)


# ---- cases ----------------------------------------------------------------------------------------------


@router.get(
    "/cases/{application_id}",
    response_model=CaseRead,
    tags=["cases"],
    summary="A case's process: its stages and tasks",
    description="The applicant (or the agent of the applying organisation) sees their own case; staff of an "
    "involved department, supervisors and admins see any. Anyone else gets 404.",
    responses=problem_responses(401, 404),
)
async def get_case(
    application_id: Annotated[str, Path(min_length=1, max_length=64)], session: SessionDep,
    principal: CurrentPrincipal,
) -> CaseRead:
    instance = await repo.get_instance(session, application_id)
    if instance is None:
        raise NotFound(f"No case for application {application_id}.")
    stages = await repo.stages_of(session, instance.id)
    tasks = await repo.tasks_of_instance(session, instance.id)
    applicant = instance.applicant or {}
    applicant_ids = {str(v) for v in (applicant.get("id"), applicant.get("agent_id")) if v}
    own = bool(principal.applicant_ids & applicant_ids) or (
        principal.holder_id is not None and principal.holder_id == applicant.get("holder_id")
    )
    involved = principal.department is not None and (
        principal.is_staff or principal.is_department_system
    ) and any(t.department == principal.department for t in tasks)
    if not (own or involved or _sees_all(principal)):
        raise NotFound(f"No case for application {application_id}.")
    by_stage: dict[int, list[Task]] = {}
    for t in tasks:
        by_stage.setdefault(t.stage_id, []).append(t)
    return CaseRead(
        application_id=instance.application_id, receipt_number=instance.receipt_number,
        item_code=instance.item_code, item_version=instance.item_version, item_name=instance.item_name,
        department=instance.department, state=instance.state, outcome=instance.outcome,  # type: ignore[arg-type]
        reasons=instance.reasons or [], legal_basis=instance.legal_basis, accepted_at=instance.accepted_at,
        decided_at=instance.decided_at,
        stages=[
            StageRead(
                step_key=s.step_key, step_name=s.step_name, kind=s.kind, lead_department=s.lead_department,
                on_reject=s.on_reject, deemed_approval_on_timeout=s.deemed_approval_on_timeout,
                started_at=s.started_at, completed_at=s.completed_at, outcome=s.outcome,
                tasks=[task_read(t) for t in by_stage.get(s.id, [])],
            )
            for s in stages
        ],
    )


# ---- department webhooks --------------------------------------------------------------------------------


def _may_manage(principal: Principal, code: str) -> None:
    if not (principal.has(ADMIN) or _acts_for_department(principal, code)):
        raise Forbidden(f"Only department {code} or an admin manages its webhook.")


@router.put(
    "/departments/{code}/webhook",
    response_model=WebhookRead,
    tags=["webhooks"],
    summary="Register, change, disable or re-enable a department's webhook",
    description="Tasks assigned to the department are POSTed to `url` as CloudEvents, signed per Standard "
    "Webhooks with the returned secret. `enabled: false` stops deliveries (waiting ones become `missed`, "
    "replayable). URLs resolving to private or loopback addresses are refused unless the deployment allows "
    "them.",
    responses=problem_responses(401, 403, 422),
)
async def put_webhook(code: DepartmentCode, body: WebhookPut, request: Request, session: SessionDep,
                      principal: CurrentPrincipal) -> WebhookRead:
    _may_manage(principal, code)
    await check_endpoint(body.url, allow_private=_config(request).webhook_allow_private)
    existing = await repo.get_webhook(session, code)
    secret = existing.secret if existing is not None and not body.rotate_secret else new_secret()
    hook = await repo.save_webhook(session, department=code, url=body.url, enabled=body.enabled, secret=secret,
                                   updated_at=utcnow(), updated_by=principal.subject)
    if not body.enabled:
        await repo.miss_pending(session, code)
    return WebhookRead(department=code, url=hook.url, enabled=hook.enabled, secret=hook.secret,
                       updated_at=hook.updated_at)


@router.get(
    "/departments/{code}/webhook",
    response_model=WebhookRead,
    tags=["webhooks"],
    summary="A department's registered webhook (with its signing secret)",
    responses=problem_responses(401, 403, 404),
)
async def get_webhook(code: DepartmentCode, session: SessionDep, principal: CurrentPrincipal) -> WebhookRead:
    _may_manage(principal, code)
    hook = await repo.get_webhook(session, code)
    if hook is None:
        raise NotFound(f"Department {code} has no webhook.")
    return WebhookRead(department=code, url=hook.url, enabled=hook.enabled, secret=hook.secret,
                       updated_at=hook.updated_at)


@router.get(
    "/departments/{code}/deliveries",
    response_model=Page[DeliveryRead],
    tags=["webhooks"],
    summary="A department's webhook deliveries and their attempts",
    description="Newest first; each with every attempt's status code, error and duration.",
    responses=problem_responses(401, 403, 422),
)
async def list_deliveries(
    code: DepartmentCode, session: SessionDep, principal: CurrentPrincipal, page: PageDep,
    state: Annotated[str | None, Query(pattern="^(pending|delivered|failed|missed)$")] = None,
) -> Page[DeliveryRead]:
    if not (_sees_all(principal) or _acts_for_department(principal, code)):
        raise Forbidden(f"Only department {code}, supervisors and admins see its deliveries.")
    rows, cursor = await paginate(
        session, repo.delivery_list_query(code, state), key_columns=[WebhookDelivery.id], params=page,
        key_of=lambda d: [d.id], descending=True,
    )
    attempts = await repo.attempts_of(session, [d.id for d in rows])
    items = [
        DeliveryRead(
            id=d.id, event_id=d.event_id, event_type=d.event_type, task_id=d.task_id, state=d.state,  # type: ignore[arg-type]
            attempts=d.attempts, next_attempt_at=d.next_attempt_at, created_at=d.created_at,
            delivered_at=d.delivered_at, last_status=d.last_status, last_error=d.last_error,
            attempt_log=[AttemptRead.model_validate(a) for a in attempts[d.id]],
        )
        for d in rows
    ]
    return Page[DeliveryRead](items=items, next_cursor=cursor)


@router.post(
    "/departments/{code}/deliveries/replay",
    response_model=ReplayResult,
    tags=["webhooks"],
    summary="Queue missed and failed deliveries again",
    responses=problem_responses(401, 403, 409, 422),
)
async def replay(code: DepartmentCode, body: ReplayRequest, session: SessionDep,
                 principal: CurrentPrincipal) -> ReplayResult:
    _may_manage(principal, code)
    hook = await repo.get_webhook(session, code)
    if hook is None or not hook.enabled:
        raise engine.Conflict(f"Department {code} has no enabled webhook to replay to.")
    return ReplayResult(replayed=await repo.replay_deliveries(session, code, since=body.since, now=utcnow()))
