"""Helpers the routes share: loading an application the caller may see, the caller's role on it, the
response shape, and the file store."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.api import schemas as s
from services.intake.cases import Responder
from services.intake.domain import applicants, completeness, delivery, fees, timeline
from services.intake.domain.applicants import is_staff_of, may_view
from services.intake.store import repository as repo
from services.intake.store.files import FileStore, LocalFileStore
from services.intake.store.tables import Application, Attachment, TimelineEntry, WalkIn
from shared.auth import ADMIN, SUPERVISOR, WINDOW_CLERK, Principal
from shared.errors import Forbidden, NotFound, invalid
from shared.privacy import mask_id_number, mask_text
from shared.types import utcnow

NOT_FOUND = "No application with this id that you may see."


def visible(principal: Principal, app: Application) -> bool:
    return may_view(principal, applicant_id=app.applicant_id, service_point=app.service_point,
                    department=app.department)


def is_applicant(principal: Principal, app: Application) -> bool:
    return principal.kind == "person" and app.applicant_id in principal.applicant_ids


async def delegation_refusal(session: AsyncSession, principal: Principal, *, applicant_id: str,
                             item_code: str) -> str | None:
    """When the caller reaches this applicant only through `act`, the delegation must still cover it."""
    act = principal.acting_for
    if act is None or applicant_id != act.subject or applicant_id in (principal.subject, principal.organisation):
        return None
    row = await repo.get_delegation(session, act.delegation) if act.delegation else None
    return applicants.delegation_refusal(
        agent_id=principal.subject, principal_id=act.subject, item_code=item_code, now=utcnow(), known=row is not None,
        delegation_agent=row.agent_id if row else None, delegation_principal=row.principal_id if row else None,
        items=row.items if row else None, valid_until=row.valid_until if row else None,
        revoked_at=row.revoked_at if row else None,
    )


async def load_visible(session: AsyncSession, principal: Principal, application_id: str, *,
                       for_update: bool = False) -> Application:
    """Another person's or another unit's application is a 404, so ids cannot be probed."""
    app = await repo.get_application(session, application_id, for_update=for_update)
    if app is None:
        raise NotFound(NOT_FOUND)
    if not visible(principal, app):
        # Staff of a department reviewing the item in parallel read the case too (not accept it).
        item = await repo.item_version(session, app.item_code, app.item_version) if principal.kind != "person" else None
        co = completeness.reviewing_departments(item.payload) if item else frozenset()
        if not co or not may_view(principal, applicant_id=app.applicant_id, service_point=app.service_point,
                                  department=app.department, co_departments=co):
            raise NotFound(NOT_FOUND)
    if await delegation_refusal(session, principal, applicant_id=app.applicant_id, item_code=app.item_code):
        raise NotFound(NOT_FOUND)
    return app


async def load_as_applicant(session: AsyncSession, principal: Principal, application_id: str, *,
                            for_update: bool = False, filing_clerk: bool = False) -> Application:
    """The applicant (or their agent); with `filing_clerk`, also the window clerk of the point where the case was
    filed for the person at the counter (窗口代录): they fill, attach, submit and withdraw for that person."""
    app = await load_visible(session, principal, application_id, for_update=for_update)
    if not is_applicant(principal, app) and not (filing_clerk and await is_filing_clerk(session, principal, app)):
        raise Forbidden("Only the applicant (or their agent) may do this.")
    return app


async def is_filing_clerk(session: AsyncSession, principal: Principal, app: Application) -> bool:
    """A window clerk of the application's point, for a case filed at a window for the person there."""
    return serving_clerk(principal, app) and await repo.walk_in(session, app.id) is not None


async def applicant_level(session: AsyncSession, principal: Principal, app: Application) -> int:
    """The applicant's identity assurance: their token's, or, for a walk-in the clerk submits, the level identity
    gave the person when the clerk checked the card."""
    if is_applicant(principal, app):
        return principal.applicant_assurance_level
    row = await repo.walk_in(session, app.id)
    return row.assurance_level if row is not None else principal.applicant_assurance_level


async def load_as_clerk(session: AsyncSession, principal: Principal, application_id: str, *,
                        for_update: bool = False) -> Application:
    """A window clerk of the application's service point or of the item's department (首问负责)."""
    app = await load_visible(session, principal, application_id, for_update=for_update)
    if not (principal.has(WINDOW_CLERK, ADMIN, SUPERVISOR)
            and is_staff_of(principal, service_point=app.service_point, department=app.department)):
        raise Forbidden("Only a window clerk of this service point or of the item's department may do this.")
    return app


async def load_as_handing_clerk(session: AsyncSession, principal: Principal, application_id: str) -> Application:
    """Who hands a result over: for pick-up, a window clerk of the point the applicant chose (异地领取 reaches
    points that otherwise never see the case); otherwise a clerk of the application's point or department."""
    app = await repo.get_application(session, application_id, for_update=True)
    if app is None:
        raise NotFound(NOT_FOUND)
    at_point = (app.delivery_method == "pickup" and app.delivery_point is not None
                and principal.kind == "staff" and principal.has(WINDOW_CLERK)
                and principal.service_point == app.delivery_point)
    if at_point:
        return app
    return await load_as_clerk(session, principal, application_id, for_update=True)


def etag(app: Application) -> str:
    """Changes whenever the application does (every change sets `updated_at`)."""
    digest = hashlib.sha256(f"{app.id}:{app.updated_at.isoformat()}".encode()).hexdigest()[:20]
    return f'"{digest}"'


def responder(principal: Principal) -> Responder:
    contact = principal.claims.get("phone") or principal.claims.get("contact")
    return Responder(principal.subject, principal.name, principal.service_point or principal.department,
                     str(contact) if contact else None)


def attachment_read(a: Attachment) -> s.AttachmentRead:
    return s.AttachmentRead(id=a.id, material_code=a.material_code, kind=a.kind, reference=a.reference,
                            filename=a.filename, content_type=a.content_type, size=a.size, sha256=a.sha256,
                            created_at=a.created_at)


def timeline_read(t: TimelineEntry, names: dict[str, str]) -> s.TimelineRead:
    return s.TimelineRead(at=t.at, status=t.status, step=t.step, code=t.code or timeline.code_for(t.step), unit=t.unit,
                          unit_name=names.get(t.unit or ""), staff_name=t.staff_name, staff_contact=t.staff_contact,
                          note=t.note, purpose=t.purpose)


def serving_clerk(principal: Principal | None, app: Application) -> bool:
    """The window clerk of the application's own service point (not any clerk of the city)."""
    return (principal is not None and principal.kind == "staff" and principal.has(WINDOW_CLERK)
            and principal.service_point is not None and principal.service_point == app.service_point)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


async def application_read(session: AsyncSession, app: Application, principal: Principal | None) -> s.ApplicationRead:
    atts = await repo.attachments(session, app.id)
    steps = await repo.timeline(session, app.id)
    names = await repo.department_names(session, [t.unit for t in steps])
    own = principal is not None and is_applicant(principal, app)
    # Least exposure: the applicant and the window clerk serving the case (the application's service point, who
    # checks the identity at the counter) see phone and ID numbers in full; every other staff role and every
    # department system sees them masked, in the applicant and in the form alike.
    full_id = own or serving_clerk(principal, app)
    form = app.form or {}
    if not full_id:
        form = _masked(form)
    item = await repo.item_version(session, app.item_code, app.item_version)
    payload = item.payload if item else {}
    exemption = fees.exemptions(payload).get(app.fee_exemption or "") or {}
    notice = await repo.payment_notice(session, app.id) if app.receipt_number else None
    walk = await repo.walk_in(session, app.id) if app.channel == "window" else None
    return s.ApplicationRead(
        id=app.id, status=app.status, item_code=app.item_code, item_version=app.item_version,
        item_name=app.item_name, department=app.department,
        applicant=s.ApplicantRead(
            kind=app.applicant_kind, id=app.applicant_id, name=app.applicant_name, agent_id=app.agent_id,
            holder_id=app.applicant_holder_id if full_id or app.applicant_kind == "organisation"
            else mask_id_number(app.applicant_holder_id),
        ),
        channel=app.channel, service_point=app.service_point, form=form,
        delivery=s.DeliveryRead(
            method=app.delivery_method, service_point=app.delivery_point,
            service_point_name=delivery.point_name(payload, app.delivery_point) if app.delivery_point else None,
            address=app.delivery_address, carrier=app.delivery_carrier, tracking_number=app.delivery_tracking,
            changeable=app.status in delivery.CHANGEABLE, ready_at=app.ready_at),
        fee_exemption=s.FeeExemptionRead(
            code=app.fee_exemption, state=app.fee_exemption_state,  # type: ignore[arg-type]
            name=exemption.get("name"), basis=exemption.get("basis")) if app.fee_exemption else None,
        payment=s.PaymentRead(
            payment_code=notice.payment_code, amount=notice.amount, items=notice.items, due_on=notice.due_on,
            status=notice.status, requested_at=notice.requested_at, paid_at=notice.paid_at,  # type: ignore[arg-type]
        ) if notice else None,
        receipt_number=app.receipt_number, verification_code=app.verification_code if own else None,
        notice=[s.Problem(**p) for p in app.notice or []], first_responder=app.first_responder,
        outcome=app.outcome, result=app.result, copied_from=app.copied_from,
        materials=[attachment_read(a) for a in atts], timeline=[timeline_read(t, names) for t in steps],
        created_at=app.created_at, submitted_at=app.submitted_at, accepted_at=app.accepted_at,
        decided_at=app.decided_at, delivered_at=app.delivered_at,
        walk_in=walk_in_read(walk) if walk else None,
    )


def walk_in_read(w: WalkIn) -> s.WalkInFiling:
    consent = s.ConsentRead(
        kind=w.consent_kind, reference=w.consent_reference, filename=w.consent_filename,  # type: ignore[arg-type]
        content_type=w.consent_content_type, size=w.consent_size, sha256=w.consent_sha256, recorded_at=w.consent_at,
        recorded_by=w.consent_by or "") if w.consent_kind and w.consent_at else None
    return s.WalkInFiling(clerk_name=w.clerk_name, service_point=w.service_point, filed_at=w.created_at,
                          account_created=w.account_created, consent=consent)


def summary(app: Application) -> s.ApplicationSummary:
    return s.ApplicationSummary(id=app.id, status=app.status, item_code=app.item_code, item_name=app.item_name,
                                receipt_number=app.receipt_number, service_point=app.service_point,
                                created_at=app.created_at, updated_at=app.updated_at,
                                submitted_at=app.submitted_at)


def file_store(request: Request) -> FileStore:
    """The configured store (`app.state.file_store`), by default files under `var/intake-files`."""
    store = getattr(request.app.state, "file_store", None)
    if store is None:
        root: Path = request.app.state.settings.platform.var_dir / "intake-files"
        store = request.app.state.file_store = LocalFileStore(root)
    return store


def datashare_url(request: Request) -> str:
    return request.app.state.settings.platform.service_urls.get("datashare", "http://127.0.0.1:8105").rstrip("/")


def created_key(row: Any) -> list[Any]:
    return [row.created_at.isoformat(), row.id]


def _bad_cursor() -> Exception:
    return invalid("query.cursor", "cursor", "The cursor is not one this list issued.")


def parse_created_key(values: list[Any]) -> list[Any]:
    try:
        at = datetime.fromisoformat(values[0])
    except (TypeError, ValueError) as exc:
        raise _bad_cursor() from exc
    if at.tzinfo is None or not isinstance(values[1], str):
        raise _bad_cursor()
    return [at, values[1]]


def parse_id_key(values: list[Any]) -> list[Any]:
    if not isinstance(values[0], int) or isinstance(values[0], bool) or not 0 <= values[0] <= 2**53:
        raise _bad_cursor()
    return values
