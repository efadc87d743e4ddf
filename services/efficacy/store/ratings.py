"""Ratings (好差评), their rectification, and complaints (投诉举报)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import String, case, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.store.tables import complaint, rating, supervision_item
from shared.messaging import insert_ignore
from shared.types import utcnow


async def add_rating(session: AsyncSession, **values: Any) -> bool:
    """False when the application already has its rating (一事一评)."""
    res = await session.execute(insert_ignore(session, rating).values(created_at=utcnow(), **values))
    return bool(res.rowcount)


async def get_rating(session: AsyncSession, rating_id: str) -> Any:
    return (await session.execute(select(rating).where(rating.c.rating_id == rating_id))).first()


async def update_rating(session: AsyncSession, rating_id: str, **values: Any) -> None:
    await session.execute(rating.update().where(rating.c.rating_id == rating_id).values(**values))


async def department_scores(session: AsyncSession) -> list[Any]:
    q = (select(rating.c.department, func.count().label("ratings"), func.avg(rating.c.score).label("average"),
                func.sum(case((rating.c.score <= 2, 1), else_=0)).label("bad"),
                func.sum(case((rating.c.rectification_state == "closed", 1), else_=0)).label("rectified"))
         .group_by(rating.c.department).order_by(rating.c.department))
    return list((await session.execute(q)).all())


def ratings_query(*, department: str | None, item: str | None, application_id: str | None,
                  bad_only: bool, rectification: str | None) -> Any:
    """Ids of the matching ratings (shared.pagination pages over ids)."""
    q = select(rating.c.id)
    if department:
        q = q.where(rating.c.department == department)
    if item:
        q = q.where(rating.c.item_code == item)
    if application_id:
        q = q.where(rating.c.application_id == application_id)
    if bad_only:
        q = q.where(rating.c.score <= 2)
    if rectification:
        q = q.where(rating.c.rectification_state == rectification)
    return q


async def ratings_by_id(session: AsyncSession, ids: list[int]) -> list[Any]:
    rows = {r.id: r for r in (await session.execute(select(rating).where(rating.c.id.in_(ids))))}
    return [rows[i] for i in ids]


async def item_scores(session: AsyncSession, department: str | None) -> list[Any]:
    q = (select(rating.c.department, rating.c.item_code, func.count().label("ratings"),
                func.avg(rating.c.score).label("average"),
                func.sum(case((rating.c.score <= 2, 1), else_=0)).label("bad"),
                func.sum(case((rating.c.rectification_state == "closed", 1), else_=0)).label("rectified"))
         .group_by(rating.c.department, rating.c.item_code).order_by(rating.c.department, rating.c.item_code))
    if department:
        q = q.where(rating.c.department == department)
    return list((await session.execute(q)).all())


async def add_complaint(session: AsyncSession, **values: Any) -> None:
    await session.execute(complaint.insert().values(created_at=utcnow(), state="open", **values))


async def get_complaint(session: AsyncSession, complaint_id: str) -> Any:
    return (await session.execute(select(complaint).where(complaint.c.complaint_id == complaint_id))).first()


async def update_complaint(session: AsyncSession, complaint_id: str, **values: Any) -> None:
    await session.execute(complaint.update().where(complaint.c.complaint_id == complaint_id).values(**values))


def complaints_query(*, department: str | None, about_kind: str | None, about_ref: str | None,
                     state: str | None) -> Any:
    """Ids of the matching complaints (shared.pagination pages over ids)."""
    q = select(complaint.c.id)
    if department:
        q = q.where(complaint.c.department == department)
    if about_kind:
        q = q.where(complaint.c.about_kind == about_kind)
    if about_ref:
        q = q.where(complaint.c.about_ref == about_ref)
    if state:
        q = q.where(complaint.c.state == state)
    return q


async def complaints_by_id(session: AsyncSession, ids: list[int]) -> list[Any]:
    rows = {r.id: r for r in (await session.execute(select(complaint).where(complaint.c.id.in_(ids))))}
    return [rows[i] for i in ids]


async def complaint_counts(session: AsyncSession, today: date) -> list[Any]:
    q = (select(complaint.c.department, func.count().label("received"),
                func.sum(case((complaint.c.state != "open", 1), else_=0)).label("answered"),
                func.sum(case(((complaint.c.state == "open") & (complaint.c.deadline_on < today), 1),
                              else_=0)).label("overdue"))
         .group_by(complaint.c.department).order_by(complaint.c.department))
    return list((await session.execute(q)).all())


def _not_open_yet(prefix: str, key: Any) -> Any:
    """No queue row under the finding's key yet (the unique key's index answers): a complaint or rating that
    stays overdue is not offered to the insert again at every round of the evaluator."""
    return ~exists().where(supervision_item.c.dedupe_key == literal(prefix, String) + key)


async def overdue_follow_ups(session: AsyncSession, day: date) -> list[dict[str, Any]]:
    """Complaints unanswered and bad ratings not called back past their deadlines, not yet in the queue:
    supervision items."""
    out: list[dict[str, Any]] = []
    for r in (await session.execute(select(complaint.c.complaint_id, complaint.c.department, complaint.c.deadline_on)
                                    .where(complaint.c.state == "open", complaint.c.deadline_on < day,
                                           _not_open_yet("complaint-overdue:", complaint.c.complaint_id)))).all():
        out.append(dict(dedupe_key=f"complaint-overdue:{r.complaint_id}", kind="complaint_overdue", is_case=True,
                        department=r.department, application_id=None,
                        detail=f"Complaint {r.complaint_id} unanswered past {r.deadline_on}."))
    for r in (await session.execute(select(rating.c.rating_id, rating.c.application_id, rating.c.department,
                                           rating.c.rectification_due_on)
                                    .where(rating.c.rectification_state == "open",
                                           rating.c.rectification_due_on < day,
                                           _not_open_yet("rectification-overdue:", rating.c.rating_id)))).all():
        out.append(dict(dedupe_key=f"rectification-overdue:{r.rating_id}", kind="rectification_overdue",
                        is_case=True, department=r.department, application_id=r.application_id,
                        detail=f"Bad rating {r.rating_id} not called back by {r.rectification_due_on}."))
    return out
