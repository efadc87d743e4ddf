"""Use cases of joint reviews (联合审图 / 联合验收): open (when a case reaches the step), schedule, record an
opinion, consolidate, re-inspect after the owner's correction, and read. Each runs in the caller's transaction
and writes state, the outbox event and the departments' webhook deliveries together.

The lead department's one task carries the review in the process: consolidation decides it (approve, a
correction request listing every failed point — the one notice intake and notify already handle — or reject),
and the owner's correction reopens it, which opens the re-inspection round."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.domain import joint_review as jr
from services.workflow.domain.process import LOCAL_TZ, Outcome, StepDefinition
from services.workflow.events.contracts import (
    JOINT_REVIEW_CONSOLIDATED,
    JOINT_REVIEW_OPENED,
    JOINT_REVIEW_OPINION_RECORDED,
    JOINT_REVIEW_SCHEDULED,
    FailedPoint,
    JointReviewConsolidated,
    JointReviewOpened,
    JointReviewOpinionRecorded,
    JointReviewScheduled,
    MissingItem,
)
from services.workflow.service.deliveries import queue_webhook
from services.workflow.service.tasks import Decider, DecisionInput, decide_task
from services.workflow.store import joint_reviews as store
from services.workflow.store import repository as repo
from services.workflow.store.tables import ProcessInstance, Task
from shared.errors import Conflict, FieldError, Forbidden, NotFound, ValidationProblem
from shared.messaging import publish
from shared.principal import ADMIN, DEPARTMENT_REVIEWER, SUPERVISOR, Principal
from shared.types import utcnow


@dataclass(frozen=True)
class Actor:
    """Who acts: a department's reviewer or its system (the principal's department speaks)."""

    kind: str
    id: str
    name: str | None
    department: str | None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(kind=principal.kind, id=principal.subject, name=principal.name, department=principal.department)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "name": self.name, "department": self.department}


def _acts_for_department(principal: Principal) -> bool:
    return bool(principal.department) and (principal.is_department_system or principal.has(DEPARTMENT_REVIEWER))


def _points(raw: list[dict[str, Any]]) -> tuple[jr.Point, ...]:
    return tuple(jr.Point(str(p["department"]), str(p["point"]), str(p["reason"])) for p in raw)


def _point_dicts(points: tuple[jr.Point, ...] | list[jr.Point]) -> list[dict[str, Any]]:
    return [{"department": p.department, "point": p.point, "reason": p.reason} for p in points]


def _problem(err: jr.ReviewError) -> Exception:
    if err.kind == "forbidden":
        return Forbidden(err.message)
    if err.kind == "invalid":
        return ValidationProblem([FieldError(field=f"body.{b.field}", rule=b.rule, message=b.message)
                                  for b in err.breaks], detail=err.message)
    return Conflict(err.message, slug="joint-review-state")


async def _current(session: AsyncSession, review: store.JointReview) -> tuple[store.JointReviewRound, jr.Round]:
    rounds = await store.rounds_of(session, review.id)
    row = next(r for r in rounds if r.number == review.current_round)
    opinions = await store.opinions_of(session, [row.id])
    return row, _round(row, opinions)


def _round(row: store.JointReviewRound, opinions: list[store.JointReviewOpinion]) -> jr.Round:
    return jr.Round(
        number=row.number, eligible=tuple(row.eligible), points=_points(row.points),
        participants=tuple(row.participants),
        opinions={o.department: jr.Opinion(o.department, jr.Verdict(o.verdict), tuple(o.conditions),
                                           _points(o.failed_points)) for o in opinions if o.round_id == row.id},
        result=jr.Result(row.result) if row.result else None,
    )


async def _announce_round(session: AsyncSession, review: store.JointReview, round_: jr.Round, now: datetime) -> None:
    event = await publish(
        session, JOINT_REVIEW_OPENED, subject=review.id,
        data=JointReviewOpened(
            review_id=review.id, task_id=review.task_id, application_id=review.application_id,
            receipt_number=review.receipt_number, item_code=review.item_code, review_kind=review.review_kind,  # type: ignore[arg-type]
            lead_department=review.lead_department, departments=list(review.departments), round=round_.number,
            eligible=list(round_.eligible),
            points=[FailedPoint(**p) for p in _point_dicts(round_.points)], opened_at=now),
    )
    await queue_webhook(session, review.lead_department, event, task_id=review.task_id)


async def open_review(session: AsyncSession, instance: ProcessInstance, task: Task, step: StepDefinition) -> str:
    """The case reached a joint review step: the review and its first round, announced to the lead."""
    now = utcnow()
    first = jr.first_round(step.departments)
    review = await store.add(session, store.JointReview(
        id=uuid.uuid4().hex, task_id=task.id, instance_id=instance.id, application_id=instance.application_id,
        receipt_number=instance.receipt_number, item_code=instance.item_code, item_name=instance.item_name,
        step_key=step.key, step_name=step.name, review_kind=step.review_kind or jr.ReviewKind.ACCEPTANCE.value,
        lead_department=step.lead_department, departments=list(step.departments),
        state=jr.ReviewState.AWAITING_SCHEDULE.value, current_round=1, result=None, opened_at=now))
    await store.add(session, store.JointReviewRound(
        review_id=review.id, number=1, eligible=list(first.eligible), points=[], participants=[], opened_at=now))
    await _announce_round(session, review, first, now)
    return str(review.id)


async def _locked(session: AsyncSession, review_id: str) -> store.JointReview:
    review = await store.get_review(session, review_id, for_update=True)
    if review is None:
        raise NotFound(f"No joint review {review_id}.")
    return review


def _must_lead(review: store.JointReview, principal: Principal, what: str) -> None:
    if not (_acts_for_department(principal) and principal.department == review.lead_department):
        raise Forbidden(f"Only the lead department {review.lead_department} {what}.")


@dataclass(frozen=True)
class ScheduleInput:
    on: date
    mode: str
    place: str
    participants: list[str]
    note: str | None = None


async def schedule(session: AsyncSession, review_id: str, principal: Principal, body: ScheduleInput) -> None:
    """The lead sets the date, the place (or the site) and the participants; each participant's system hears of it
    by webhook and gives its opinion."""
    review = await _locked(session, review_id)
    _must_lead(review, principal, "schedules the joint review")
    row, current = await _current(session, review)
    today = utcnow().astimezone(LOCAL_TZ).date()
    try:
        participants = jr.check_schedule(jr.ReviewState(review.state), current, participants=body.participants,
                                         on=body.on, today=today, place=body.place)
    except jr.ReviewError as err:
        raise _problem(err) from None
    now = utcnow()
    await store.update_round(session, row.id, participants=list(participants), scheduled_on=body.on, mode=body.mode,
                             place=body.place.strip(), note=body.note, scheduled_at=now,
                             scheduled_by=Actor.of(principal).as_dict())
    await store.update_review(session, review.id, state=jr.ReviewState.SCHEDULED.value)
    event = await publish(
        session, JOINT_REVIEW_SCHEDULED, subject=review.id,
        data=JointReviewScheduled(
            review_id=review.id, application_id=review.application_id, review_kind=review.review_kind,  # type: ignore[arg-type]
            lead_department=review.lead_department, round=current.number, date=body.on, mode=body.mode,  # type: ignore[arg-type]
            place=body.place.strip(), participants=list(participants),
            points=[FailedPoint(**p) for p in _point_dicts(current.points)], scheduled_at=now))
    for department in participants:
        await queue_webhook(session, department, event, task_id=review.task_id)


@dataclass(frozen=True)
class OpinionInput:
    verdict: str
    conditions: list[str]
    failed_points: list[tuple[str, str]]
    comment: str | None = None


async def record_opinion(session: AsyncSession, review_id: str, principal: Principal, body: OpinionInput) -> None:
    """A participant's opinion for its own department (one per round); the lead hears of it by webhook."""
    review = await _locked(session, review_id)
    if not _acts_for_department(principal) or principal.department not in review.departments:
        raise Forbidden("Only a participating department's reviewer or system gives an opinion.")
    department = str(principal.department)
    row, current = await _current(session, review)
    opinion = jr.Opinion(department, jr.Verdict(body.verdict), tuple(c.strip() for c in body.conditions if c.strip()),
                         tuple(jr.Point(department, p.strip(), r.strip()) for p, r in body.failed_points))
    try:
        jr.check_opinion(jr.ReviewState(review.state), current, opinion)
    except jr.ReviewError as err:
        raise _problem(err) from None
    now = utcnow()
    await store.add(session, store.JointReviewOpinion(
        round_id=row.id, department=department, verdict=opinion.verdict.value, conditions=list(opinion.conditions),
        failed_points=_point_dicts(opinion.failed), comment=body.comment, given_by=Actor.of(principal).as_dict(),
        given_at=now))
    current.opinions[department] = opinion
    event = await publish(
        session, JOINT_REVIEW_OPINION_RECORDED, subject=review.id,
        data=JointReviewOpinionRecorded(
            review_id=review.id, application_id=review.application_id, lead_department=review.lead_department,
            round=current.number, department=department, verdict=opinion.verdict.value,  # type: ignore[arg-type]
            conditions=list(opinion.conditions), failed_points=[FailedPoint(**p) for p in _point_dicts(opinion.failed)],
            pending=current.pending, recorded_at=now))
    await queue_webhook(session, review.lead_department, event, task_id=review.task_id)


@dataclass(frozen=True)
class ConsolidationInput:
    reject: bool = False
    summary: str | None = None
    reasons: list[str] | None = None
    legal_basis: str | None = None


async def consolidate(session: AsyncSession, review_id: str, principal: Principal, body: ConsolidationInput) -> str:
    """The lead's one result. It decides the lead's task: passed → approve (the case moves on); failed points →
    one correction request listing them all (补正, 一次性告知); rejected → reject. Returns the result."""
    review = await _locked(session, review_id)
    _must_lead(review, principal, "consolidates the joint review")
    row, current = await _current(session, review)
    try:
        result = jr.consolidate(jr.ReviewState(review.state), current, reject=body.reject,
                                legal_basis=body.legal_basis, reasons=body.reasons or [])
    except jr.ReviewError as err:
        raise _problem(err) from None
    now = utcnow()
    failed = jr.failed_points(current)
    conditions = jr.conditions_of(current.opinions.values())
    await store.update_round(session, row.id, result=result.value, summary=body.summary, legal_basis=body.legal_basis,
                             consolidated_by=Actor.of(principal).as_dict(), consolidated_at=now)
    state = jr.state_after(result)
    await store.update_review(session, review.id, state=state.value, result=result.value,
                              closed_at=now if state in (jr.ReviewState.PASSED, jr.ReviewState.REJECTED) else None)
    await publish(
        session, JOINT_REVIEW_CONSOLIDATED, subject=review.id,
        data=JointReviewConsolidated(
            review_id=review.id, task_id=review.task_id, application_id=review.application_id,
            lead_department=review.lead_department, round=current.number, result=result.value,  # type: ignore[arg-type]
            failed_points=[FailedPoint(**p) for p in _point_dicts(failed)], conditions=conditions,
            summary=body.summary, consolidated_at=now))
    decider = Decider(kind=principal.kind, id=principal.subject, name=principal.name,
                             department=principal.department)
    title = "联合验收" if review.review_kind == jr.ReviewKind.ACCEPTANCE else "联合审图"
    if result is jr.Result.CORRECTION_REQUIRED:
        decision = DecisionInput(
            Outcome.REQUEST_CORRECTION, [f"{title}第 {current.number} 轮有不合格要点，请整改后申请复验（一次性告知）"],
            None, [MissingItem(reason=text) for text in jr.notice(failed)])
    elif result is jr.Result.REJECTED:
        decision = DecisionInput(Outcome.REJECT, list(body.reasons or []) + jr.notice(failed),
                                        body.legal_basis, [])
    else:
        decision = DecisionInput(
            Outcome.APPROVE, [body.summary or f"{title}通过"] + [f"附条件：{c}" for c in conditions], None, [])
    await decide_task(session, review.task_id, decider, decision, joint=True)
    return result.value


async def reinspect(session: AsyncSession, task: Task) -> None:
    """The owner corrected: a re-inspection round of the failed points only, announced to the lead."""
    review = await store.review_of_task(session, task.id, for_update=True)
    if review is None or review.state != jr.ReviewState.AWAITING_CORRECTION:
        return
    _, current = await _current(session, review)
    try:
        following = jr.reinspection(current)
    except jr.ReviewError:
        return
    now = utcnow()
    await store.add(session, store.JointReviewRound(
        review_id=review.id, number=following.number, eligible=list(following.eligible),
        points=_point_dicts(following.points), participants=[], opened_at=now))
    await store.update_review(session, review.id, state=jr.ReviewState.AWAITING_SCHEDULE.value,
                              current_round=following.number, result=None)
    await _announce_round(session, review, following, now)


async def cancel(session: AsyncSession, task_id: str) -> None:
    """The applicant withdrew: the joint review stops where it is (its task was cancelled with the case)."""
    review = await store.review_of_task(session, task_id, for_update=True)
    if review is None or review.state in (jr.ReviewState.PASSED, jr.ReviewState.REJECTED, jr.ReviewState.CANCELLED):
        return
    await store.update_review(session, review.id, state=jr.ReviewState.CANCELLED.value, closed_at=utcnow())


# ---- reading -----------------------------------------------------------------------------------------------


def _may_read(review: store.JointReview, principal: Principal, instance: ProcessInstance | None) -> bool:
    if principal.has(SUPERVISOR, ADMIN):
        return True
    if principal.department and (principal.is_department_system or principal.is_staff):
        return principal.department in review.departments
    applicant = (instance.applicant if instance else None) or {}
    ids = {str(v) for v in (applicant.get("id"), applicant.get("agent_id")) if v}
    return bool(principal.applicant_ids & ids) or (
        principal.holder_id is not None and principal.holder_id == applicant.get("holder_id"))


@dataclass(frozen=True)
class ReviewView:
    review: store.JointReview
    rounds: list[store.JointReviewRound]
    opinions: list[store.JointReviewOpinion]
    pending: list[str]


async def get(session: AsyncSession, review_id: str, principal: Principal) -> ReviewView:
    """The review with its rounds, participants, opinions and result: the participating departments and the lead,
    supervisors, and the applicant (who also sees it through the application)."""
    review = await store.get_review(session, review_id)
    instance = await repo.get_instance(session, review.application_id) if review else None
    if review is None or not _may_read(review, principal, instance):
        raise NotFound(f"No joint review {review_id}.")
    rounds = await store.rounds_of(session, review.id)
    opinions = await store.opinions_of(session, [r.id for r in rounds])
    current = next(r for r in rounds if r.number == review.current_round)
    pending = _round(current, opinions).pending
    return ReviewView(review, rounds, opinions, pending)


async def of_application(session: AsyncSession, application_id: str, principal: Principal) -> list[str]:
    """The ids of an application's joint reviews the principal may read."""
    reviews = await store.reviews_of_application(session, application_id)
    instance = await repo.get_instance(session, application_id)
    return [r.id for r in reviews if _may_read(r, principal, instance)]
