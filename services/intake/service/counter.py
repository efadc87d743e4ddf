"""At the counter and after: the receipt slip (受理回执), what waits at a service point (出件), unpaid notices, and
the payment platform's confirmations (收费)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import access, delivery, fees, slip
from services.intake.service.applications import confirm_payment
from services.intake.service.common import CALENDAR, CITY_TZ, is_applicant, item_of, load_visible
from services.intake.store import repository as repo
from services.intake.store.tables import Application, PaymentNotice
from shared.errors import Conflict
from shared.pagination import PageParams
from shared.principal import WINDOW_CLERK, Principal
from shared.types import utcnow


async def receipt_slip(session: AsyncSession, principal: Principal, application_id: str) -> slip.Slip:
    """The receipt slip of an accepted application; the verification and claim codes for the applicant and the
    window clerks who print it only."""
    app = await load_visible(session, principal, application_id)
    if app.accepted_at is None or not app.receipt_number:
        raise Conflict("The application has not been accepted; a receipt slip is printed at acceptance.",
                       slug="not-accepted", status_now=app.status)
    status_url = f"/intake/v1/status/{app.receipt_number}?code=<验证码>"
    item = await item_of(session, app)
    p = item.payload
    accepted_on = app.accepted_at.astimezone(CITY_TZ).date()
    immediate = p.get("case_kind") == "immediate"
    promised, promised_text = slip.promised_on(accepted_on, p.get("promised_limit"), CALENDAR, immediate)
    # The clerk prints the slip for the applicant at the counter: both see the code; other staff do not.
    shows_code = is_applicant(principal, app) or principal.has(WINDOW_CLERK)
    granted = app.fee_exemption if app.fee_exemption_state in ("claimed", "granted") else None
    names = await repo.department_names(session, [app.department])
    contacts = [f"{c.get('channel')}: {c.get('value')}" for c in ((p.get("guide") or {}).get("consultation") or [])
                if isinstance(c, dict)]
    by = app.first_responder or {}
    walk = await repo.walk_in(session, app.id) if app.channel == "window" else None
    # The claim code is printed for the person at the counter, as the verification code is.
    claim = walk.claim_code if walk and shows_code else None
    steps = slip.next_steps(p, delivery_method=app.delivery_method,
                            delivery_point_name=delivery.point_name(p, app.delivery_point) or app.delivery_point,
                            status_url=status_url, owes_fee=fees.bill(p, granted).due)
    return slip.Slip(
        receipt_number=app.receipt_number, verification_code=app.verification_code if shows_code else None,
        item_name=app.item_name, item_code=app.item_code, applicant_name=app.applicant_name,
        handed_in_at=delivery.point_name(p, app.service_point) or app.service_point,
        accepted_on=accepted_on, promised_on=promised, promised_text=promised_text,
        next_steps=[*steps, slip.CLAIM_STEP] if claim else steps,
        contacts=contacts,
        accepted_by=" ".join(x for x in (by.get("name"), names.get(app.department) if not by.get("unit") else by.get("unit"))
                             if x) or None,
        filed_by=(walk.clerk_name or walk.clerk_id) if walk else None, claim_code=claim,
        claim_until=walk.claim_expires_at.astimezone(CITY_TZ).date() if claim and walk and walk.claim_expires_at
        else None,
    )


def printed_at() -> datetime:
    return utcnow().astimezone(CITY_TZ)


async def collections(session: AsyncSession, principal: Principal, point: str,
                      page: PageParams) -> tuple[list[Application], str | None]:
    """Results waiting at a point (出件): to hand over, or to post."""
    access.staff_of_point(principal, point)
    return await repo.collections_page(session, page, point)


@dataclass
class Unpaid:
    notice: PaymentNotice
    application: Application
    overdue: bool


async def unpaid(session: AsyncSession, principal: Principal, page: PageParams) -> tuple[list[Unpaid], str | None]:
    """Unpaid notices of the cases a clerk handles (their point's and their department's); supervisors: all."""
    access.clerk_or_supervisor(principal, "Only window clerks and supervisors see unpaid cases.")
    everything = access.sees_everything(principal)
    if not everything and not (principal.service_point or principal.department):
        return [], None
    notices, cursor = await repo.unpaid_page(session, page,
                                             service_point=None if everything else principal.service_point,
                                             department=None if everything else principal.department)
    apps = await repo.applications_by_id(session, [n.application_id for n in notices])
    today: date = utcnow().astimezone(CITY_TZ).date()
    return [Unpaid(n, apps[n.application_id], n.due_on < today) for n in notices], cursor


async def payment_notified(session: AsyncSession, *, webhook_id: str, payment_code: str, amount: str,
                           paid_at: datetime, transaction_id: str | None) -> str:
    """A verified notification: applied once per `webhook-id` (`duplicate` after), then the notice is paid."""
    webhook_id = webhook_id[:100]
    if not await repo.record_payment_notification(session, webhook_id=webhook_id, payment_code=payment_code,
                                                  outcome="received"):
        return "duplicate"
    outcome = await confirm_payment(session, payment_code=payment_code, amount=amount, paid_at=paid_at,
                                    transaction_id=transaction_id)
    await repo.settle_payment_notification(session, webhook_id, outcome)
    return outcome
