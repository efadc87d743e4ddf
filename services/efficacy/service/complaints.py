"""投诉举报: complaints about a case, an item, a department or a window, also anonymous (the complainant keeps a
secret to read and rate the answer); the department concerned answers within its deadline in working days."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.efficacy.domain.access import department_of, is_overseer, narrowed
from services.efficacy.domain.calendar import CHINA
from services.efficacy.domain.complaints import may_see, secret_hash, secret_matches
from services.efficacy.service.settings import current_config
from services.efficacy.store import cases
from services.efficacy.store import ratings as store
from services.efficacy.store.calendar import current_calendar
from services.efficacy.store.tables import complaint as complaint_table
from shared.errors import Conflict, Forbidden, NotFound, Unauthorized, invalid
from shared.pagination import PageParams, paginate
from shared.principal import Principal
from shared.types import utcnow


async def file(session: AsyncSession, principal: Principal | None, *, about_kind: str, about_ref: str,
               department: str | None, text: str) -> tuple[Any, str]:
    """File a complaint; returns it with the secret (shown once) that lets an anonymous complainant follow it."""
    department = department or (about_ref if about_kind == "department" else None)
    if department is None and about_kind == "case":
        case_row = await cases.get_case(session, about_ref)
        department = case_row.department if case_row else None
    if not department:
        raise invalid("body.department", "required", "Name the department (it could not be found from the case).")
    cal = await current_calendar(session)
    deadline = cal.add_workdays(datetime.now(CHINA).date(), current_config().complaint_days).value
    secret, complaint_id = secrets.token_urlsafe(16), uuid.uuid4().hex
    await store.add_complaint(session, complaint_id=complaint_id, about_kind=about_kind, about_ref=about_ref,
                              department=department, text=text,
                              complainant=principal.subject if principal else None, secret_hash=secret_hash(secret),
                              deadline_on=deadline)
    return await store.get_complaint(session, complaint_id), secret


async def list_complaints(session: AsyncSession, principal: Principal, *, department: str | None,
                          about_kind: str | None, about_ref: str | None, state: str | None,
                          page: PageParams) -> tuple[list[Any], str | None]:
    dept = narrowed(principal, department,
                    refusal="Supervisors see every complaint; a department's staff see their own department's.",
                    foreign="A department's staff see their own department's complaints only.")
    q = store.complaints_query(department=dept, about_kind=about_kind, about_ref=about_ref, state=state)
    ids, cursor = await paginate(session, q, key_columns=[complaint_table.c.id], params=page,
                                 key_of=lambda i: [i], descending=True)
    return list(await store.complaints_by_id(session, ids)), cursor


async def counts(session: AsyncSession) -> list[Any]:
    """Received, answered and overdue (open past their deadline today) per department."""
    return list(await store.complaint_counts(session, datetime.now(CHINA).date()))


async def get_complaint(session: AsyncSession, principal: Principal | None, complaint_id: str,
                        secret: str | None) -> Any:
    row = await store.get_complaint(session, complaint_id)
    if row is None or not may_see(principal, complainant=row.complainant, department=row.department,
                                  stored_hash=row.secret_hash, secret=secret):
        if principal is None:  # the secret is an anonymous complainant's credential: wrong or missing, unknown or not
            raise Unauthorized("Give a bearer token, or the complaint's secret (anonymous complaints).")
        raise NotFound("No such complaint.")  # to a signed-in stranger, like an unknown complaint
    return row


async def answer(session: AsyncSession, principal: Principal, complaint_id: str, text: str) -> Any:
    row = await store.get_complaint(session, complaint_id)
    if row is None:
        raise NotFound("No such complaint.")
    if not (is_overseer(principal) or department_of(principal) == row.department):
        raise Forbidden("The department concerned answers.")
    if row.state != "open":
        raise Conflict("This complaint has been answered already.", slug="already-answered")
    await store.update_complaint(session, complaint_id, answer=text, answered_at=utcnow(), state="answered")
    return await store.get_complaint(session, complaint_id)


async def rate_answer(session: AsyncSession, principal: Principal | None, complaint_id: str, *, score: int,
                      secret: str | None) -> Any:
    """The complainant (by token, or anonymous with the secret) rates the answer once."""
    row = await store.get_complaint(session, complaint_id)
    if row is None:
        raise NotFound("No such complaint.")
    by_secret = secret_matches(secret, row.secret_hash)
    by_token = principal is not None and row.complainant is not None and principal.subject == row.complainant
    if not (by_secret or by_token):
        raise Forbidden("Only the complainant rates the answer (anonymous: with the secret given at filing).")
    if row.state != "answered":
        raise Conflict("Only an answered, unrated complaint can be rated.", slug="not-answered")
    await store.update_complaint(session, complaint_id, answer_score=score, state="closed")
    return await store.get_complaint(session, complaint_id)
