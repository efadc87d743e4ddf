"""Cards (红黄牌), the supervision queue (督办) and webhook deliveries to supervisors."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, String, Text, and_, any_, bindparam, case, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.store.tables import card, case_file, clock, supervision_item, webhook_delivery
from shared.db import dialect_of
from shared.messaging import insert_ignore
from shared.types import UTCDateTime, utcnow
from shared.webhooks import RetryPolicy


async def raise_card(session: AsyncSession, *, clock_id: str, application_id: str, task_id: str | None,
                     department: str | None, colour: str, reason: str, deadline_key: str,
                     deadline_at: datetime, raised_at: datetime) -> dict[str, Any] | None:
    """Insert the card unless this crossing was already carded; the row is returned only when new."""
    values = dict(card_id=uuid.uuid4().hex, clock_id=clock_id, application_id=application_id, task_id=task_id,
                  department=department, colour=colour, reason=reason, deadline_key=deadline_key,
                  deadline_at=deadline_at, raised_at=raised_at)
    res = await session.execute(insert_ignore(session, card).values(**values))
    return values if res.rowcount else None


async def carded(session: AsyncSession, clock_ids: list[str]) -> set[tuple[str, str, str]]:
    """The crossings already carded for these clocks: (clock_id, colour, deadline_key)."""
    rows = await session.execute(select(card.c.clock_id, card.c.colour, card.c.deadline_key)
                                 .where(card.c.clock_id.in_(clock_ids)))
    return {(r.clock_id, r.colour, r.deadline_key) for r in rows}


async def raise_cards(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Insert many cards; returns the card ids actually inserted (a crossing another evaluator carded first is
    dropped by the unique constraint, so its event is never published twice)."""
    if not rows:
        return set()
    stmt = insert_ignore(session, card).returning(card.c.card_id)
    return set((await session.execute(stmt, rows)).scalars())


async def open_items(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        now = utcnow()
        await session.execute(insert_ignore(session, supervision_item),
                              [{"state": "open", "opened_at": now, "answer": None, "answered_at": None,
                                "answered_by": None, **r} for r in rows])


#: `session.info` mark of a transaction that queued supervisors' webhooks: its commit wakes the sender.
WEBHOOKS_QUEUED = "efficacy_webhooks_queued"


async def queue_webhooks(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        now = utcnow()
        await session.execute(insert_ignore(session, webhook_delivery),
                              [{"attempts": 0, "next_attempt_at": now, **r} for r in rows])
        session.info[WEBHOOKS_QUEUED] = True


@functools.cache
def _clearing_ctes() -> list[Any]:
    """`clear_cards` as CTEs with bind parameters only (`b_clear_clock_ids`, `b_cleared_at`): built and compiled
    once with the statement carrying them."""
    ids = bindparam("b_clear_clock_ids", type_=postgresql.ARRAY(String))
    cleared = card.update().where(card.c.clock_id == any_(ids), card.c.cleared_at.is_(None)).values(
        cleared_at=bindparam("b_cleared_at", type_=UTCDateTime())).returning(card.c.card_id).cte("cleared_cards")
    # A yellow card's queue row goes with the card; a red card's case (督办) stays until the department answers.
    items = supervision_item.update().where(
        supervision_item.c.card_id.in_(select(cleared.c.card_id)), supervision_item.c.is_case.is_(False),
        supervision_item.c.state == "open").values(state="cleared").returning(supervision_item.c.id).cte(
        "cleared_items")
    return [cleared, items]


def clearing(session: AsyncSession, clock_ids: list[str], at: datetime
             ) -> tuple[list[Any], dict[str, Any]] | None:
    """On PostgreSQL, `clear_cards` as CTEs for another statement to carry (`add_cte`) and their parameters, which
    saves a round trip where a stopped clock's cards are cleared beside the clocks being written; for no clock
    they clear nothing and the carrying statement keeps its one text. None elsewhere."""
    if dialect_of(session) != "postgresql":
        return None
    return _clearing_ctes(), {"b_clear_clock_ids": list(clock_ids), "b_cleared_at": at}


async def clear_cards(session: AsyncSession, clock_ids: list[str], at: datetime) -> None:
    if not clock_ids:
        return
    cleared = card.update().where(card.c.clock_id.in_(clock_ids), card.c.cleared_at.is_(None)).values(cleared_at=at)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # Every rebuild of a stopped clock passes here: one statement (a data-modifying CTE) rather than two.
        just = cleared.returning(card.c.card_id).cte("cleared")
        await session.execute(supervision_item.update().where(
            supervision_item.c.card_id.in_(select(just.c.card_id)), supervision_item.c.is_case.is_(False),
            supervision_item.c.state == "open").values(state="cleared"))
        return
    await session.execute(cleared)
    # A yellow card's queue row goes with the card; a red card's case (督办) stays until the department answers.
    ids = select(card.c.card_id).where(card.c.clock_id.in_(clock_ids))
    await session.execute(supervision_item.update().where(
        supervision_item.c.card_id.in_(ids), supervision_item.c.is_case.is_(False),
        supervision_item.c.state == "open").values(state="cleared"))


async def list_cards(session: AsyncSession, *, colour: str | None, application_id: str | None = None,
                     open_only: bool = False, department: str | None = None) -> list[Any]:
    q = select(card).order_by(card.c.id)
    if colour:
        q = q.where(card.c.colour == colour)
    if application_id:
        q = q.where(card.c.application_id == application_id)
    if department:
        q = q.where(card.c.department == department)
    if open_only:
        q = q.where(card.c.cleared_at.is_(None))
    return list((await session.execute(q)).all())


async def open_item(session: AsyncSession, *, dedupe_key: str, kind: str, is_case: bool, department: str | None,
                    application_id: str | None, detail: str, card_id: str | None = None) -> bool:
    res = await session.execute(insert_ignore(session, supervision_item).values(
        dedupe_key=dedupe_key, kind=kind, is_case=is_case, card_id=card_id, department=department,
        application_id=application_id, detail=detail, state="open", opened_at=utcnow(),
    ))
    return bool(res.rowcount)


@functools.cache
def _repeated_statement(dialect: str) -> Any:
    """`open_repeated_items`, built once per dialect with bind parameters only."""
    return repeated_items(dialect)


def repeated_items(dialect: str) -> Any:
    """`open_repeated_items`' insert (`repeated_params` its parameters)."""
    other = case_file.c.application_id
    this = bindparam("b_application_id", type_=String)
    # The pair in the order Python's `sorted` gives (code points): PostgreSQL compares text by the database's
    # collation unless told otherwise, which orders some ids differently.
    before = (other.collate("C") < this) if dialect == "postgresql" else (other < this)
    first = case((before, other), else_=this)
    second = case((before, this), else_=other)
    found = (select(
        (literal("repeated:", String) + first + literal(":", String) + second).label("dedupe_key"),
        literal("repeated_application", String).label("kind"), literal(False, Boolean).label("is_case"),
        this.label("application_id"), bindparam("b_department", type_=String).label("department"),
        (bindparam("b_detail_head", type_=Text) + first + literal(", ", Text) + second + literal(").", Text))
        .label("detail"),
        literal("open", String).label("state"), bindparam("b_opened_at", type_=UTCDateTime()).label("opened_at"))
        .where(case_file.c.applicant_key == bindparam("b_applicant_key", type_=String),
               case_file.c.item_code == bindparam("b_item_code", type_=String), other != this,
               case_file.c.accepted_at.is_not(None),
               case_file.c.accepted_at >= bindparam("b_from", type_=UTCDateTime()),
               case_file.c.accepted_at <= bindparam("b_until", type_=UTCDateTime()))
        .order_by(case_file.c.accepted_at, other))
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(supervision_item)
    return ins.from_select(["dedupe_key", "kind", "is_case", "application_id", "department", "detail", "state",
                            "opened_at"], found).on_conflict_do_nothing()


def repeated_items_among(looking: Any, order: Any, *, application_id: Any, applicant_key: Any, item_code: Any,
                         since: Any, until: Any, department: Any, detail_head: Any) -> Any:
    """`repeated_items` on PostgreSQL for several acceptances at once, each a row of `looking` (a FROM clause whose
    columns are given as keywords, `since` and `until` the window's ends): the rows opened acceptance by
    acceptance in `order`, each acceptance's as `repeated_items` orders them."""
    other, this = case_file.c.application_id, application_id
    before = other.collate("C") < this  # the pair as Python's `sorted` orders it (see `repeated_items`)
    first = case((before, other), else_=this)
    second = case((before, this), else_=other)
    found = (select(
        (literal("repeated:", String) + first + literal(":", String) + second).label("dedupe_key"),
        literal("repeated_application", String).label("kind"), literal(False, Boolean).label("is_case"),
        this.label("application_id"), department.label("department"),
        (detail_head + first + literal(", ", Text) + second + literal(").", Text)).label("detail"),
        literal("open", String).label("state"), bindparam("b_opened_at", type_=UTCDateTime()).label("opened_at"))
        .select_from(looking.join(case_file, and_(
            case_file.c.applicant_key == applicant_key, case_file.c.item_code == item_code, other != this,
            case_file.c.accepted_at.is_not(None), case_file.c.accepted_at >= since,
            case_file.c.accepted_at <= until)))
        .order_by(order, case_file.c.accepted_at, other))
    return postgresql.insert(supervision_item).from_select(
        ["dedupe_key", "kind", "is_case", "application_id", "department", "detail", "state", "opened_at"],
        found).on_conflict_do_nothing()


async def open_repeated_items(session: AsyncSession, *, application_id: str, applicant_key: str, item_code: str,
                              accepted_at: datetime, window: timedelta, department: str | None) -> int:
    """重复提交: a queue row for every other application of the applicant for the item accepted within `window` of
    this one, keyed by the pair (so a pair is flagged once, whichever of the two is seen last). One statement
    whatever is found: it reads the earlier applications and writes the rows (none, usually); returns how many
    rows it opened."""
    res = await session.execute(_repeated_statement(dialect_of(session)), repeated_params(
        application_id=application_id, applicant_key=applicant_key, item_code=item_code, accepted_at=accepted_at,
        window=window, department=department))
    return int(res.rowcount or 0)


def repeated_params(*, application_id: str, applicant_key: str | None, item_code: str | None,
                    accepted_at: datetime | None, window: timedelta, department: str | None) -> dict[str, Any]:
    """The parameters of `repeated_items` (all but the application's None: it looks for nothing)."""
    return dict(
        b_application_id=application_id, b_applicant_key=applicant_key, b_item_code=item_code,
        b_from=accepted_at - window if accepted_at else None, b_until=accepted_at + window if accepted_at else None,
        b_department=department, b_opened_at=utcnow(),
        b_detail_head=f"Applicant applied for {item_code} again within {window.days} days (" if item_code else None)


def items_query(*, department: str | None, state: str | None, kind: str | None,
                application_id: str | None = None) -> Any:
    """Ids of the matching queue rows (shared.pagination returns scalars, so it pages over ids)."""
    q = select(supervision_item.c.id)
    if application_id:
        q = q.where(supervision_item.c.application_id == application_id)
    if department:
        q = q.where(supervision_item.c.department == department)
    if state:
        q = q.where(supervision_item.c.state == state)
    if kind:
        q = q.where(supervision_item.c.kind == kind)
    return q


async def items_by_id(session: AsyncSession, ids: list[int]) -> list[Any]:
    rows = {r.id: r for r in (await session.execute(select(supervision_item).where(supervision_item.c.id.in_(ids))))}
    return [rows[i] for i in ids]


async def get_item(session: AsyncSession, item_id: int) -> Any:
    return (await session.execute(select(supervision_item).where(supervision_item.c.id == item_id))).first()


async def answer_item(session: AsyncSession, item_id: int, *, answer: str, by: str) -> None:
    await session.execute(supervision_item.update().where(supervision_item.c.id == item_id).values(
        answer=answer, answered_at=utcnow(), answered_by=by, state="answered"))


async def queue_webhook(session: AsyncSession, *, message_id: str, url: str, payload: str) -> None:
    await session.execute(insert_ignore(session, webhook_delivery).values(
        message_id=message_id, url=url, payload=payload, attempts=0, next_attempt_at=utcnow()))


LEASE = timedelta(seconds=60)


async def claim_webhooks(session: AsyncSession, limit: int = 50) -> list[Any]:
    """Due deliveries, leased for a minute so that the HTTP calls happen outside any transaction and another
    replica does not send them meanwhile."""
    q = (select(webhook_delivery).where(webhook_delivery.c.delivered_at.is_(None),
                                        webhook_delivery.c.next_attempt_at <= utcnow(),
                                        webhook_delivery.c.attempts < 12)
         .order_by(webhook_delivery.c.id).limit(limit))
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = list((await session.execute(q)).all())
    if rows:
        await session.execute(webhook_delivery.update().where(webhook_delivery.c.id.in_([r.id for r in rows]))
                              .values(next_attempt_at=utcnow() + LEASE))
    return rows


async def mark_webhook(session: AsyncSession, row_id: int, *, ok: bool, attempts: int, error: str | None,
                       retry: RetryPolicy) -> None:
    values: dict[str, Any] = {"attempts": attempts, "last_error": error}
    if ok:
        values["delivered_at"] = utcnow()
    else:
        values["next_attempt_at"] = utcnow() + retry.delay(attempts)
    await session.execute(webhook_delivery.update().where(webhook_delivery.c.id == row_id).values(**values))


async def webhook_rows(session: AsyncSession) -> list[Any]:
    return list((await session.execute(select(webhook_delivery).order_by(webhook_delivery.c.id))).all())


async def dashboard_counts(session: AsyncSession, department: str | None) -> dict[str, list[Any]]:
    """Grouped counts a supervisors' dashboard draws: clocks by state, open cards by colour, queue by kind."""

    def scoped(q: Any, col: Any) -> Any:
        return q.where(col == department) if department else q
    clocks = scoped(select(clock.c.department, clock.c.kind, clock.c.state, func.count().label("n"))
                    .group_by(clock.c.department, clock.c.kind, clock.c.state), clock.c.department)
    cards = scoped(select(card.c.department, card.c.colour, func.count().label("n"))
                   .where(card.c.cleared_at.is_(None)).group_by(card.c.department, card.c.colour), card.c.department)
    queue = scoped(select(supervision_item.c.department, supervision_item.c.kind, supervision_item.c.state,
                          func.count().label("n"))
                   .group_by(supervision_item.c.department, supervision_item.c.kind, supervision_item.c.state),
                   supervision_item.c.department)
    return {"clocks": list((await session.execute(clocks)).all()),
            "cards": list((await session.execute(cards)).all()),
            "queue": list((await session.execute(queue)).all())}
