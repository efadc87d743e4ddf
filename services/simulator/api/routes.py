"""The simulator's routes: webhooks from workflow in, department rules, and what it decided."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from services.simulator.api.models import DecisionList, DecisionRead, DepartmentRead, WebhookAck
from services.simulator.domain.rules import Rule
from services.simulator.domain.webhooks import Refusal, WebhookRefused
from services.simulator.runtime import (
    Ack,
    BadTaskEvent,
    Department,
    NotRegistered,
    Simulator,
    UnknownDepartment,
)
from shared.auth import ADMIN, Principal, require_roles
from shared.errors import NotFound, Problem, invalid
from shared.fastpath import FastPost
from shared.http_errors import problem_responses

router = APIRouter()

DepartmentCode = Annotated[str, Path(description="Department code, e.g. `LD-SCJGJ`.", max_length=40)]

_REFUSAL_STATUS = {
    Refusal.MISSING_HEADERS: 400,
    Refusal.MALFORMED_TIMESTAMP: 400,
    Refusal.REPLAYED: 400,
    Refusal.TIMESTAMP_SKEW: 401,
    Refusal.BAD_SIGNATURE: 401,
}


def _simulator(request: Request) -> Simulator:
    return request.app.state.simulator


def _department(sim: Simulator, code: str) -> Department:
    try:
        return sim.department(code)
    except UnknownDepartment:
        raise NotFound(f"The simulator plays no department {code}.") from None


def _read(dept: Department) -> DepartmentRead:
    return DepartmentRead(
        code=dept.code, name=dept.name, rule=dept.rule, registered=dept.registered, webhook_url=dept.webhook_url
    )


@router.post(
    "/webhooks/{department}",
    tags=["webhooks"],
    summary="Receive a task from workflow (a signed Standard Webhooks delivery)",
    description="The body is the CloudEvent of `yimen.workflow.task.assigned` (or `.task.reopened`), signed "
    "with the department's `whsec_…` secret. Missing headers or a replay → 400; a wrong signature or a "
    "timestamp more than 5 minutes off → 401; nothing is decided then. A retry of a delivery already taken "
    "(same `webhook-id`, signed afresh) is acknowledged as `duplicate` and decided only once.",
    response_model=WebhookAck,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(400, 401, 404, 422, 503),
)
async def receive_webhook(department: DepartmentCode, request: Request, response: Response) -> WebhookAck:
    sim = _simulator(request)
    _department(sim, department)
    body = await request.body()
    try:
        ack = sim.receive(department, body, dict(request.headers))
    except NotRegistered:
        raise Problem(
            f"{department} has no webhook secret yet; registration is still running.",
            status=503, slug="department-not-registered", title="Department not registered yet",
            headers={"Retry-After": "5"},
        ) from None
    except WebhookRefused as exc:
        raise Problem(
            exc.message, status=_REFUSAL_STATUS[exc.refusal], slug=f"webhook-{exc.refusal.value.replace('_', '-')}",
            title="Webhook delivery refused", rule=exc.refusal.value,
        ) from None
    except BadTaskEvent as exc:
        raise invalid(exc.field, exc.rule, exc.message) from None
    if ack.status != "scheduled":
        response.status_code = status.HTTP_200_OK
    return _ack(ack)


def _ack(ack: Ack) -> WebhookAck:
    return WebhookAck(status=ack.status, decision=DecisionRead.model_validate(ack.decision) if ack.decision else None)


#: `DepartmentCode`'s bound, which the fast answer checks as the route does.
_CODE_MAX = 40


async def fast_receive_webhook(request: Request, params: dict[str, str]) -> Response | None:
    """`receive_webhook` without FastAPI's router and dependency machinery: a delivery is most of the simulator's
    requests. Every refusal (unknown department, not registered, a bad signature or event) is raised by
    `Simulator.receive` before it takes the delivery, and is declined here for the route to answer as its
    problem; a delivery taken is remembered by its `webhook-id`, so the route meeting it again (after a failure
    here) only acknowledges a duplicate."""
    department = params["department"]
    sim = _simulator(request)
    if len(department) > _CODE_MAX or department not in sim.departments:
        return None
    try:
        ack = sim.receive(department, await request.body(), dict(request.headers))
    except (NotRegistered, WebhookRefused, BadTaskEvent):
        return None
    return Response(_ack(ack).model_dump_json(), media_type="application/json",
                         status_code=status.HTTP_202_ACCEPTED if ack.status == "scheduled" else status.HTTP_200_OK)


@router.get("/departments", tags=["departments"], summary="The departments the simulator plays, with their rules")
async def list_departments(request: Request) -> list[DepartmentRead]:
    return [_read(d) for d in _simulator(request).departments.values()]


@router.get(
    "/departments/{code}", tags=["departments"], summary="One simulated department",
    responses=problem_responses(404),
)
async def get_department(code: DepartmentCode, request: Request) -> DepartmentRead:
    return _read(_department(_simulator(request), code))


@router.put(
    "/departments/{code}/rule",
    tags=["departments"],
    summary="Change how a department answers",
    description="Takes effect for tasks received from now on; decisions already scheduled keep their rule. "
                "Needs an admin's token: whoever sets the rules decides the simulated departments' cases.",
    responses=problem_responses(401, 403, 404, 422),
)
async def put_rule(code: DepartmentCode, rule: Rule, request: Request,
                   _admin: Principal = require_roles(ADMIN)) -> DepartmentRead:
    sim = _simulator(request)
    _department(sim, code)
    return _read(sim.set_rule(code, rule))


@router.get("/decisions", tags=["decisions"], summary="What the simulator decided, newest first")
async def list_decisions(
    request: Request,
    department: Annotated[str | None, Query(max_length=40)] = None,
    task_id: Annotated[str | None, Query(max_length=100)] = None,
    application_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DecisionList:
    items = []
    for record in reversed(_simulator(request).decisions):
        if department and record.department != department:
            continue
        if task_id and record.task_id != task_id:
            continue
        if application_id and record.application_id != application_id:
            continue
        items.append(DecisionRead.model_validate(record))
        if len(items) >= limit:
            break
    return DecisionList(items=items)


FAST = [FastPost(router, receive_webhook, fast_receive_webhook)]
