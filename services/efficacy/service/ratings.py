"""好差评: the applicant rates the case once (一事一评); a bad rating opens a rectification with a deadline in
working days, a supervision case and the event `yimen.efficacy.rating.bad`; the department calls back and the
applicant rates again."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.domain.access import department_of, is_applicant, is_overseer, narrowed
from services.efficacy.domain.calendar import CHINA
from services.efficacy.domain.ratings import NAMES, SCORES, Level, is_bad
from services.efficacy.events.contracts import RATING_BAD, RatingBad
from services.efficacy.service.settings import current_config
from services.efficacy.store import cases, supervision
from services.efficacy.store import ratings as store
from services.efficacy.store.calendar import current_calendar
from services.efficacy.store.tables import rating as rating_table
from shared.errors import Conflict, Forbidden, NotFound
from shared.messaging import publish
from shared.pagination import PageParams, paginate
from shared.principal import Principal
from shared.types import utcnow


async def rate(session: AsyncSession, principal: Principal, *, application_id: str, level: Level,
               comment: str | None, tags: list[str]) -> Any:
    """The applicant rates their accepted case, once. Someone else's case answers like an unknown one."""
    case_row = await cases.get_case(session, application_id)
    # Someone else's case answers like an unknown one: a stranger learns nothing of its existence.
    if case_row is None or case_row.applicant is None or not is_applicant(principal, case_row.applicant):
        raise NotFound("No accepted application with this id.")
    rating_id = uuid.uuid4().hex
    bad = is_bad(level)
    due = None
    if bad:
        cal = await current_calendar(session)
        due = cal.add_workdays(datetime.now(CHINA).date(), current_config().rectification_days).value
    added = await store.add_rating(
        session, rating_id=rating_id, application_id=application_id, rater=principal.subject,
        department=case_row.department, item_code=case_row.item_code, level=level.value,
        score=SCORES[level], comment=comment, tags=tags,
        rectification_state="open" if bad else None, rectification_due_on=due)
    if not added:
        raise Conflict("This case has been rated already (one rating per case online).", slug="already-rated")
    if bad:
        await publish(session, RATING_BAD, subject=application_id, data=RatingBad(
            rating_id=rating_id, application_id=application_id, department=case_row.department,
            level=level.value, tags=tags, comment=comment))
        await supervision.open_item(
            session, dedupe_key=f"rating:{rating_id}", kind="bad_rating", is_case=True,
            department=case_row.department, application_id=application_id,
            detail=f"差评 ({NAMES[level]}): call back and rectify by {due}. {comment or ''}".strip())
    return await store.get_rating(session, rating_id)


async def get_rating(session: AsyncSession, principal: Principal, rating_id: str) -> Any:
    """The rater, the department rated and supervisors; to anyone else, like an unknown rating."""
    row = await store.get_rating(session, rating_id)
    if row is None:
        raise NotFound("No such rating.")
    if not (is_overseer(principal) or principal.subject == row.rater
            or (department_of(principal) is not None and department_of(principal) == row.department)):
        raise NotFound("No such rating.")  # to a stranger, like an unknown rating
    return row


async def list_ratings(session: AsyncSession, principal: Principal, *, department: str | None, item: str | None,
                       application_id: str | None, bad_only: bool, rectification: str | None,
                       page: PageParams) -> tuple[list[Any], str | None]:
    """Newest first; supervisors see every department's, a department's staff their own."""
    dept = narrowed(principal, department,
                    refusal="Supervisors see every rating; a department's staff see their own department's.",
                    foreign="A department's staff see their own department's ratings only.")
    q = store.ratings_query(department=dept, item=item, application_id=application_id, bad_only=bad_only,
                            rectification=rectification)
    ids, cursor = await paginate(session, q, key_columns=[rating_table.c.id], params=page,
                                 key_of=lambda i: [i], descending=True)
    return list(await store.ratings_by_id(session, ids)), cursor


async def department_scores(session: AsyncSession) -> list[Any]:
    return list(await store.department_scores(session))


async def item_scores(session: AsyncSession, department: str | None) -> list[Any]:
    return list(await store.item_scores(session, department))


async def record_callback(session: AsyncSession, principal: Principal, rating_id: str, *, outcome: str,
                          note: str) -> Any:
    """The department rated records its call-back (回访) on an open rectification."""
    row = await get_rating(session, principal, rating_id)
    if principal.subject == row.rater and not is_overseer(principal) and department_of(principal) != row.department:
        raise Forbidden("The department rated records the call-back.")
    if row.rectification_state != "open":
        raise Conflict("Only an open rectification of a bad rating takes a call-back.", slug="not-open")
    await store.update_rating(session, rating_id, callback_at=utcnow(), callback_note=f"[{outcome}] {note}",
                              rectification_state="called_back")
    return await store.get_rating(session, rating_id)


async def rerate(session: AsyncSession, principal: Principal, rating_id: str, level: Level) -> Any:
    """The rater rates again after the call-back, which closes the rectification."""
    row = await get_rating(session, principal, rating_id)
    if principal.subject != row.rater:
        raise Forbidden("Only the rater rates again.")
    if row.rectification_state != "called_back":
        raise Conflict("A re-rating follows the department's call-back on a bad rating.", slug="not-called-back")
    await store.update_rating(session, rating_id, rerated_level=level.value, rerated_at=utcnow(),
                              rectification_state="closed")
    return await store.get_rating(session, rating_id)
