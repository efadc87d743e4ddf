"""Post-verification of commitments (告知承诺核查): each commitment accepted instead of proof becomes a duty of the
item's department, which checks it afterwards and records the outcome on the application's timeline."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import access
from services.intake.service.common import note, responder
from services.intake.store import repository as repo
from services.intake.store.tables import Application, Attachment
from shared.errors import Conflict, NotFound
from shared.pagination import PageParams
from shared.principal import Principal
from shared.types import utcnow

Commitment = tuple[Attachment, Application]


async def department_commitments(session: AsyncSession, principal: Principal, page: PageParams, *,
                                 pending: bool) -> tuple[list[Commitment], str | None]:
    department = access.department_of(principal)
    rows, cursor = await repo.commitments_page(session, page, department=department, pending_only=pending)
    apps = await repo.applications_by_id(session, [a.application_id for a in rows])
    return [(a, apps[a.application_id]) for a in rows], cursor


async def verify(session: AsyncSession, principal: Principal, attachment_id: int, *, outcome: str,
                 note_text: str | None) -> Commitment:
    """The outcome (`kept`, `broken`) is recorded once, and on the application's timeline."""
    department = access.department_of(principal)
    att = await repo.get_attachment(session, attachment_id)
    app = await repo.get_application(session, att.application_id) if att else None
    if att is None or app is None or att.kind != "commitment" or app.department != department:
        raise NotFound("No commitment of your department with this id.")
    if att.verification is not None:
        raise Conflict("This commitment has already been verified.", slug="already-verified")
    att.verification, att.verified_at = outcome, utcnow()
    await session.flush()
    by = responder(principal)
    step = "告知承诺核查：属实" if outcome == "kept" else "告知承诺核查：承诺不实"
    await note(session, app, step, unit=department, staff_name=by.name, staff_contact=by.contact, text=note_text)
    return att, app
