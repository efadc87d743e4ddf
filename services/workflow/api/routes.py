"""HTTP routes of the workflow service (thin: parse, call the use cases in `service`, render)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from services.workflow import service
from services.workflow.api.models import (
    AssigneeUpdate,
    AttemptRead,
    CaseRead,
    DecisionCreate,
    DeliveryRead,
    DeliveryState,
    ReplayRequest,
    ReplayResult,
    StageRead,
    TaskRead,
    WebhookPut,
    WebhookRead,
    task_read,
)
from services.workflow.config import WorkflowConfig
from services.workflow.domain.process import TaskState
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.fastpath import FastGet, FastPost
from shared.http_errors import problem_responses
from shared.pagination import Page, PageDep

router = APIRouter()

TaskId = Annotated[str, Path(min_length=1, max_length=64, description="The task's id.")]
DepartmentCode = Annotated[str, Path(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                     examples=["LD-SCJGJ"])]


def _config(request: Request) -> WorkflowConfig:
    return request.app.state.ctx.extras["config"]


#: Who may call the routes whose caller is checked in `service` against the department (`domain/access.py`); the
#: roles a token must hold, any of them.
INBOX_READERS: dict[str, Any] = {"x-yimen-roles": ["admin", "supervisor", "department_reviewer", "department_system"]}
DECIDERS: dict[str, Any] = {"x-yimen-roles": ["department_reviewer", "department_system"]}
REASSIGNERS: dict[str, Any] = {"x-yimen-roles": ["department_reviewer", "department_system", "supervisor"]}
WEBHOOK_MANAGERS: dict[str, Any] = {"x-yimen-roles": ["admin", "department_reviewer", "department_system"]}
DELIVERY_READERS: dict[str, Any] = {"x-yimen-roles": ["admin", "supervisor", "department_reviewer",
                                                     "department_system"]}


# ---- tasks ----------------------------------------------------------------------------------------------


@router.get(
    "/tasks",
    openapi_extra=INBOX_READERS,
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
    state: Annotated[TaskState | None, Query(openapi_examples={
        "open": {"summary": "Tasks waiting for a decision", "value": "open"}})] = None,
    item_code: Annotated[str | None, Query(max_length=64)] = None,
    department: Annotated[str | None, Query(
        max_length=64, description="Supervisors and admins: any department; its own staff: their own.",
        openapi_examples={"market": {"summary": "罗定市市场监督管理局", "value": "LD-SCJGJ"}})] = None,
) -> Page[TaskRead]:
    rows, cursor = await service.list_tasks(session, principal, department=department,
                                            state=state.value if state else None, item_code=item_code, page=page)
    return Page[TaskRead](items=[task_read(t) for t in rows], next_cursor=cursor)


@router.get(
    "/tasks/{task_id}",
    response_model=TaskRead,
    tags=["tasks"],
    summary="One task",
    description="Visible to its department, supervisors and admins; anyone else gets 404.",
    responses=problem_responses(401, 404),
)
async def get_task(task_id: TaskId, session: SessionDep, principal: CurrentPrincipal) -> TaskRead:
    return task_read(await service.get_task(session, principal, task_id))


@router.post(
    "/tasks/{task_id}/decision",
    openapi_extra=DECIDERS,
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
    task = await service.decide(
        session, principal, task_id,
        service.DecisionInput(body.outcome, body.reasons, body.legal_basis, body.missing),
    )
    return task_read(task)


#: `TaskId`'s bounds, which the fast answer checks as the route does.
_TASK_ID_MAX = 64


async def fast_decide(request: Request, params: dict[str, str]) -> Response | None:
    """`decide` without FastAPI's router and dependency machinery (shared/fastpath.py): a department's decision is
    most of workflow's requests (the parallel stage's REST departments and every stage's lead). The same token check,
    the same body model and the same use case in the same kind of transaction as the route; the answer is built
    before the commit. Anything the route would refuse (no or a bad token, a body that is not a JSON decision, a
    refused decision) raises or declines before the transaction commits, so nothing is acted on, and the route
    meets the request again and answers its problem+json."""
    task_id = params["task_id"]
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not 0 < len(task_id) <= _TASK_ID_MAX or scheme.lower() != "bearer" or not token \
            or content_type != "application/json":
        return None
    principal = await request.app.state.verifier.verify(token)
    request.state.principal = principal
    body = DecisionCreate.model_validate_json(await request.body())
    decision = service.DecisionInput(body.outcome, body.reasons, body.legal_basis, body.missing)
    async with request.app.state.db.transaction() as session:
        session.info["request"] = request
        task = await service.decide(session, principal, task_id, decision)
        answer = task_read(task).model_dump_json()
    return Response(answer, media_type="application/json")


@router.post(
    "/tasks/{task_id}/assignee",
    openapi_extra=REASSIGNERS,
    response_model=TaskRead,
    tags=["tasks"],
    summary="Give a task to a handler of its department (经办人)",
    description="Emits `yimen.workflow.task.handler_assigned` with the handler's name, office phone and unit, which the "
                "applicant's timeline shows (谁在办). Assigning oneself takes them from one's token (`name`, `phone`, "
                "`unit`); for a colleague, give them in the body.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def reassign(task_id: TaskId, body: AssigneeUpdate, session: SessionDep, principal: CurrentPrincipal) -> TaskRead:
    task = await service.reassign(session, principal, task_id, assignee=body.assignee, name=body.name,
                                  office_phone=body.office_phone, unit=body.unit)
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
    view = await service.get_case(session, principal, application_id)
    instance = view.instance
    return CaseRead(
        application_id=instance.application_id, receipt_number=instance.receipt_number,
        item_code=instance.item_code, item_version=instance.item_version, item_name=instance.item_name,
        department=instance.department, state=instance.state, outcome=instance.outcome,  # type: ignore[arg-type]
        reasons=instance.reasons or [], legal_basis=instance.legal_basis, accepted_at=instance.accepted_at,
        decided_at=instance.decided_at,
        stages=[
            StageRead(
                step_key=s.step_key, step_name=s.step_name, kind=s.kind,  # type: ignore[arg-type]
                lead_department=s.lead_department, on_reject=s.on_reject,  # type: ignore[arg-type]
                deemed_approval_on_timeout=s.deemed_approval_on_timeout, started_at=s.started_at,
                completed_at=s.completed_at, outcome=s.outcome,  # type: ignore[arg-type]
                tasks=[task_read(t) for t in tasks],
            )
            for s, tasks in view.stages
        ],
    )


# ---- department webhooks --------------------------------------------------------------------------------


@router.put(
    "/departments/{code}/webhook",
    openapi_extra=WEBHOOK_MANAGERS,
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
    hook = await service.put_webhook(session, principal, code, url=body.url, enabled=body.enabled,
                                     rotate_secret=body.rotate_secret,
                                     allow_private=_config(request).webhook_allow_private)
    return WebhookRead(department=code, url=hook.url, enabled=hook.enabled, secret=hook.secret,
                       updated_at=hook.updated_at)


@router.get(
    "/departments/{code}/webhook",
    openapi_extra=WEBHOOK_MANAGERS,
    response_model=WebhookRead,
    tags=["webhooks"],
    summary="A department's registered webhook (with its signing secret)",
    responses=problem_responses(401, 403, 404),
)
async def get_webhook(code: DepartmentCode, session: SessionDep, principal: CurrentPrincipal) -> WebhookRead:
    hook = await service.get_webhook(session, principal, code)
    return WebhookRead(department=code, url=hook.url, enabled=hook.enabled, secret=hook.secret,
                       updated_at=hook.updated_at)


@router.get(
    "/departments/{code}/deliveries",
    openapi_extra=DELIVERY_READERS,
    response_model=Page[DeliveryRead],
    tags=["webhooks"],
    summary="A department's webhook deliveries and their attempts",
    description="Newest first; each with every attempt's status code, error and duration. A successful attempt is "
                "recorded within `WEBHOOK_RECORD_SECONDS` (1 s by default) of its answer, together with others; until "
                "then its delivery still shows `pending`. A failed attempt is recorded at once.",
    responses=problem_responses(401, 403, 422),
)
async def list_deliveries(
    code: DepartmentCode, session: SessionDep, principal: CurrentPrincipal, page: PageDep,
    state: DeliveryState | None = None,
) -> Page[DeliveryRead]:
    views, cursor = await service.list_deliveries(session, principal, code, state=state.value if state else None,
                                                  page=page)
    items = [
        DeliveryRead(
            id=d.id, event_id=d.event_id, event_type=d.event_type, task_id=d.task_id, state=d.state,  # type: ignore[arg-type]
            attempts=d.attempts, next_attempt_at=d.next_attempt_at, created_at=d.created_at,
            delivered_at=d.delivered_at, last_status=d.last_status, last_error=d.last_error,
            attempt_log=[AttemptRead.model_validate(a) for a in attempts],
        )
        for d, attempts in ((v.delivery, v.attempts) for v in views)
    ]
    return Page[DeliveryRead](items=items, next_cursor=cursor)


@router.post(
    "/departments/{code}/deliveries/replay",
    openapi_extra=WEBHOOK_MANAGERS,
    response_model=ReplayResult,
    tags=["webhooks"],
    summary="Queue missed and failed deliveries again",
    responses=problem_responses(401, 403, 409, 422),
)
async def replay(code: DepartmentCode, body: ReplayRequest, session: SessionDep,
                 principal: CurrentPrincipal) -> ReplayResult:
    return ReplayResult(replayed=await service.replay(session, principal, code, since=body.since))


FAST: list[FastGet] = [FastPost(router, decide, fast_decide)]
