"""Tables and queries of joint reviews (联合审图 / 联合验收): the review, its rounds, one opinion per department
and round. Functions flush, never commit."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from services.workflow.store.tables import Base
from shared.types import BigIntPK, UTCDateTime


class JointReview(Base):
    """One joint review of a case's `joint_review` step; the lead's task carries it in the process."""

    __tablename__ = "joint_review"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(32), unique=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    application_id: Mapped[str] = mapped_column(String(64), index=True)
    receipt_number: Mapped[str] = mapped_column(String(64))
    item_code: Mapped[str] = mapped_column(String(64))
    item_name: Mapped[str] = mapped_column(String(300))
    step_key: Mapped[str] = mapped_column(String(64))
    step_name: Mapped[str] = mapped_column(String(200))
    review_kind: Mapped[str] = mapped_column(String(20))
    lead_department: Mapped[str] = mapped_column(String(64))
    departments: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(24))
    current_round: Mapped[int] = mapped_column(Integer)
    result: Mapped[str | None] = mapped_column(String(32), nullable=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JointReviewRound(Base):
    """A round: the first covers everything; a re-inspection (复验) only the points that failed before."""

    __tablename__ = "joint_review_round"
    __table_args__ = (UniqueConstraint("review_id", "number"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    review_id: Mapped[str] = mapped_column(ForeignKey("joint_review.id"))
    number: Mapped[int] = mapped_column(Integer)
    eligible: Mapped[list[str]] = mapped_column(JSON)
    points: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    participants: Mapped[list[str]] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scheduled_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    mode: Mapped[str | None] = mapped_column(String(20), nullable=True)
    place: Mapped[str | None] = mapped_column(String(300), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    scheduled_by: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    result: Mapped[str | None] = mapped_column(String(32), nullable=True)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    legal_basis: Mapped[str | None] = mapped_column(Text, nullable=True)
    consolidated_by: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    consolidated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JointReviewOpinion(Base):
    """One participant's opinion in one round; the unique key makes it one, even when two arrive at once."""

    __tablename__ = "joint_review_opinion"
    __table_args__ = (UniqueConstraint("round_id", "department"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("joint_review_round.id"), index=True)
    department: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(24))
    conditions: Mapped[list[str]] = mapped_column(JSON)
    failed_points: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    given_by: Mapped[dict[str, Any]] = mapped_column(JSON)
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)


async def add(session: AsyncSession, row: Any) -> Any:
    session.add(row)
    await session.flush()
    return row


async def _lock(session: AsyncSession, condition: Any) -> None:
    """Take the review row's write lock before reading anything (an UPDATE that changes nothing): concurrent
    opinions of one review then run one after the other on PostgreSQL and SQLite alike, and the last one sees
    them all (who is still pending)."""
    await session.execute(update(JointReview).where(condition).values(current_round=JointReview.current_round)
                          .execution_options(synchronize_session=False))


async def get_review(session: AsyncSession, review_id: str, *, for_update: bool = False) -> JointReview | None:
    if for_update:
        await _lock(session, JointReview.id == review_id)
    q = select(JointReview).where(JointReview.id == review_id)
    return (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()


async def review_of_task(session: AsyncSession, task_id: str, *, for_update: bool = False) -> JointReview | None:
    if for_update:
        await _lock(session, JointReview.task_id == task_id)
    q = select(JointReview).where(JointReview.task_id == task_id)
    return (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()


async def reviews_of_application(session: AsyncSession, application_id: str) -> list[JointReview]:
    q = select(JointReview).where(JointReview.application_id == application_id).order_by(JointReview.opened_at)
    return list((await session.execute(q)).scalars())


async def rounds_of(session: AsyncSession, review_id: str) -> list[JointReviewRound]:
    q = select(JointReviewRound).where(JointReviewRound.review_id == review_id).order_by(JointReviewRound.number)
    return list((await session.execute(q.execution_options(populate_existing=True))).scalars())


async def opinions_of(session: AsyncSession, round_ids: list[int]) -> list[JointReviewOpinion]:
    if not round_ids:
        return []
    q = (select(JointReviewOpinion).where(JointReviewOpinion.round_id.in_(round_ids))
         .order_by(JointReviewOpinion.id))
    return list((await session.execute(q.execution_options(populate_existing=True))).scalars())


async def update_review(session: AsyncSession, review_id: str, **values: Any) -> None:
    await session.execute(update(JointReview).where(JointReview.id == review_id).values(**values)
                          .execution_options(synchronize_session=False))


async def update_round(session: AsyncSession, round_id: int, **values: Any) -> None:
    await session.execute(update(JointReviewRound).where(JointReviewRound.id == round_id).values(**values)
                          .execution_options(synchronize_session=False))
