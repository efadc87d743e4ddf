"""Following a case: the public status query, the applicant's own lists (个人/企业主页) and the clerk's queue."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import access
from services.intake.domain.lifecycle import AWAITING_APPLICANT, Status
from services.intake.store import public_status as public_status_store
from services.intake.store import repository as repo
from services.intake.store.tables import Application
from shared.db import Database
from shared.errors import NotFound
from shared.pagination import PageParams
from shared.principal import Principal

Applications = tuple[list[Application], str | None]


async def public_status(db: Database, receipt_number: str, code: str) -> bytes | None:
    """The public view of a receipt as JSON (`PublicStatus`), or None when the number is unknown or the code
    wrong (told alike): one statement, outside any transaction (`public_status_store.read`), unless this process
    read the view within the last second and has written no view since (`public_status_store.ViewCache`)."""
    found = await public_status_store.view_cache(db).read(db.engine, receipt_number)
    if found is None or not found[0] or not hmac.compare_digest(found[0], code):
        return None
    return found[1].encode()


def unknown_receipt() -> NotFound:
    return NotFound("No application with this receipt number and code.")


async def mine(session: AsyncSession, principal: Principal, page: PageParams,
               statuses: Iterable[str] | None = None) -> Applications:
    """My applications and those of the principals I act for, newest first."""
    return await repo.applications_page(session, page, applicant_ids=principal.applicant_ids,
                                        subject=principal.subject, statuses=list(statuses) if statuses else None)


async def my_drafts(session: AsyncSession, principal: Principal, page: PageParams) -> Applications:
    return await mine(session, principal, page, [Status.DRAFT.value])


async def awaiting_me(session: AsyncSession, principal: Principal, page: PageParams) -> Applications:
    """Drafts, corrections to answer (补正), results to collect."""
    return await mine(session, principal, page, sorted(AWAITING_APPLICANT))


async def queue(session: AsyncSession, principal: Principal, page: PageParams, *, statuses: list[str] | None,
                receipt_number: str | None) -> Applications:
    """A clerk's queue: their point's and department's cases (default: awaiting acceptance or collection); a
    receipt number looks one case up in any state unless states are given."""
    access.clerk_or_supervisor(principal, "Only staff have a queue.")
    if not statuses:
        statuses = ([x.value for x in Status] if receipt_number
                    else [Status.SUBMITTED.value, Status.AWAITING_PICKUP.value])
    everything = access.sees_everything(principal)
    if not everything and not (principal.service_point or principal.department):
        return [], None
    return await repo.staff_queue_page(session, page, service_point=None if everything else principal.service_point,
                                       department=None if everything else principal.department, statuses=statuses,
                                       receipt_number=receipt_number)
