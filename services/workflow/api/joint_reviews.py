"""Routes of joint reviews (联合审图 / 联合验收): thin, they parse, call the use cases and render."""

from __future__ import annotations

from datetime import date as date_
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from services.workflow.domain.process import LOCAL_TZ
from services.workflow.service import joint_reviews as service
from shared.auth import CurrentPrincipal
from shared.bounds import BoundedDate
from shared.db import SessionDep
from shared.http_errors import problem_responses

router = APIRouter(tags=["joint reviews"])

ReviewId = Annotated[str, Path(min_length=1, max_length=64, description="The joint review's id.")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: The example's date: a date is refused once past, so the document shows one a week after the service started.
_A_WEEK_AHEAD = (datetime.now(LOCAL_TZ).date() + timedelta(days=7)).isoformat()


class ScheduleCreate(_Strict):
    """The lead schedules a round: the date, a meeting place or the site of an on-site inspection (现场), and the
    participating departments (first round: any of the step's, all by default; a re-inspection: exactly the
    departments whose points failed)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"date": _A_WEEK_AHEAD, "mode": "on_site", "place": "罗定市素龙街道工业园 8 号（项目现场）",
         "participants": ["LD-ZJJ", "LD-XFJ", "LD-STHJJ", "LD-WJJ"]}]})

    date: BoundedDate
    mode: Literal["meeting", "on_site"] = "on_site"
    place: str = Field(min_length=1, max_length=300)
    participants: list[str] = Field(default_factory=list, max_length=50)
    note: str | None = Field(default=None, max_length=1000)


class FailedPointIn(_Strict):
    point: str = Field(min_length=1, max_length=300, description="The point checked (审查/验收要点).")
    reason: str = Field(min_length=1, max_length=1000, description="Why it failed.")


class OpinionCreate(_Strict):
    """A participant's opinion for its department: `pass`, `pass_with_conditions` (with `conditions`) or `fail`
    (with every `failed_points` entry and its reason). In a re-inspection only the points under re-inspection may
    fail again; a point not named has passed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"verdict": "pass"},
        {"verdict": "pass_with_conditions", "conditions": ["投入使用前完成消防设施联动测试"]},
        {"verdict": "fail", "failed_points": [{"point": "消防车通道", "reason": "消防车通道净宽不足 4 米"}]}]})

    verdict: Literal["pass", "pass_with_conditions", "fail"]
    conditions: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list, max_length=20)
    failed_points: list[FailedPointIn] = Field(default_factory=list, max_length=50)
    comment: str | None = Field(default=None, max_length=2000)


class ConsolidationCreate(_Strict):
    """The lead's one result of the round, once every participant has spoken. Without `reject` it follows from
    the opinions: a failed point sends every failed point to the owner as one correction notice; otherwise passed
    (with conditions if any). `reject: true` refuses outright and needs `reasons` and `legal_basis`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"summary": "各参与部门意见已汇总"},
        {"reject": True, "reasons": ["主体结构不符合施工图设计文件"], "legal_basis": "《建设工程质量管理条例》第十六条"}]})

    reject: bool = False
    summary: str | None = Field(default=None, max_length=2000)
    reasons: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list, max_length=20)
    legal_basis: str | None = Field(default=None, max_length=1000)


class PointRead(BaseModel):
    department: str
    point: str
    reason: str


class OpinionRead(BaseModel):
    department: str
    verdict: Literal["pass", "pass_with_conditions", "fail"]
    conditions: list[str]
    failed_points: list[PointRead]
    comment: str | None
    given_by: dict[str, str | None]
    given_at: datetime


class RoundRead(BaseModel):
    number: int
    reinspection: bool
    eligible: list[str] = Field(description="Who may take part (a re-inspection: the departments whose points failed).")
    points: list[PointRead] = Field(description="A re-inspection's points; empty for the first round.")
    participants: list[str]
    date: date_ | None
    mode: Literal["meeting", "on_site"] | None
    place: str | None
    note: str | None
    scheduled_at: datetime | None
    opinions: list[OpinionRead]
    result: Literal["passed", "passed_with_conditions", "correction_required", "rejected"] | None
    summary: str | None
    consolidated_at: datetime | None


class JointReviewRead(BaseModel):
    id: str
    task_id: str
    application_id: str
    receipt_number: str
    item_code: str
    item_name: str
    step_key: str
    step_name: str
    review_kind: Literal["drawing_review", "acceptance"]
    lead_department: str
    departments: list[str]
    state: Literal["awaiting_schedule", "scheduled", "awaiting_correction", "passed", "rejected", "cancelled"]
    current_round: int
    pending: list[str] = Field(description="Participants of the current round whose opinion is still awaited.")
    result: Literal["passed", "passed_with_conditions", "correction_required", "rejected"] | None
    opened_at: datetime
    closed_at: datetime | None
    rounds: list[RoundRead]


def _read(view: service.ReviewView) -> JointReviewRead:
    r = view.review
    rounds = []
    for row in view.rounds:
        opinions = [OpinionRead(department=o.department, verdict=o.verdict, conditions=o.conditions,  # type: ignore[arg-type]
                                failed_points=[PointRead(**p) for p in o.failed_points], comment=o.comment,
                                given_by={k: (str(v) if v is not None else None) for k, v in o.given_by.items()},
                                given_at=o.given_at)
                    for o in view.opinions if o.round_id == row.id]
        rounds.append(RoundRead(
            number=row.number, reinspection=row.number > 1, eligible=row.eligible,
            points=[PointRead(**p) for p in row.points], participants=row.participants, date=row.scheduled_on,
            mode=row.mode, place=row.place, note=row.note, scheduled_at=row.scheduled_at,  # type: ignore[arg-type]
            opinions=opinions, result=row.result, summary=row.summary,  # type: ignore[arg-type]
            consolidated_at=row.consolidated_at))
    return JointReviewRead(
        id=r.id, task_id=r.task_id, application_id=r.application_id, receipt_number=r.receipt_number,
        item_code=r.item_code, item_name=r.item_name, step_key=r.step_key, step_name=r.step_name,
        review_kind=r.review_kind, lead_department=r.lead_department, departments=r.departments,  # type: ignore[arg-type]
        state=r.state, current_round=r.current_round, pending=view.pending, result=r.result,  # type: ignore[arg-type]
        opened_at=r.opened_at, closed_at=r.closed_at, rounds=rounds)


@router.get("/joint-reviews", response_model=list[JointReviewRead],
            summary="An application's joint reviews (联合审图 / 联合验收)",
            description="Those the caller may read: the participating departments and the lead, supervisors, and "
                        "the applicant.", responses=problem_responses(401, 422))
async def list_joint_reviews(
    session: SessionDep, principal: CurrentPrincipal,
    application_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> list[JointReviewRead]:
    ids = await service.of_application(session, application_id, principal)
    return [_read(await service.get(session, i, principal)) for i in ids]


@router.get("/joint-reviews/{review_id}", response_model=JointReviewRead,
            summary="A joint review: rounds, participants, opinions, result",
            description="Readable by the participating departments' reviewers and systems and the lead, by "
                        "supervisors, and by the applicant; anyone else gets 404.",
            responses=problem_responses(401, 404))
async def get_joint_review(review_id: ReviewId, session: SessionDep, principal: CurrentPrincipal) -> JointReviewRead:
    return _read(await service.get(session, review_id, principal))


@router.post("/joint-reviews/{review_id}/schedule", response_model=JointReviewRead,
             summary="The lead department schedules the round (date, place or site, participants)",
             responses=problem_responses(401, 403, 404, 409, 422))
async def schedule(review_id: ReviewId, body: ScheduleCreate, session: SessionDep,
                   principal: CurrentPrincipal) -> JointReviewRead:
    await service.schedule(session, review_id, principal, service.ScheduleInput(
        on=body.date, mode=body.mode, place=body.place, participants=body.participants, note=body.note))
    return _read(await service.get(session, review_id, principal))


@router.post("/joint-reviews/{review_id}/opinions", response_model=JointReviewRead,
             summary="A participating department records its opinion (pass, pass with conditions, fail by point)",
             responses=problem_responses(401, 403, 404, 409, 422))
async def record_opinion(review_id: ReviewId, body: OpinionCreate, session: SessionDep,
                         principal: CurrentPrincipal) -> JointReviewRead:
    await service.record_opinion(session, review_id, principal, service.OpinionInput(
        verdict=body.verdict, conditions=body.conditions,
        failed_points=[(p.point, p.reason) for p in body.failed_points], comment=body.comment))
    return _read(await service.get(session, review_id, principal))


@router.post("/joint-reviews/{review_id}/consolidation", response_model=JointReviewRead,
             summary="The lead department consolidates the round into one result",
             description="Failed points go back to the owner as one correction notice (补正); after the correction "
                         "a re-inspection round covers only those points and their departments.",
             responses=problem_responses(401, 403, 404, 409, 422))
async def consolidate(review_id: ReviewId, body: ConsolidationCreate, session: SessionDep,
                      principal: CurrentPrincipal) -> JointReviewRead:
    await service.consolidate(session, review_id, principal, service.ConsolidationInput(
        reject=body.reject, summary=body.summary, reasons=body.reasons, legal_basis=body.legal_basis))
    return _read(await service.get(session, review_id, principal))
