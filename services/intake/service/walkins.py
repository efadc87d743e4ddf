"""Walk-in filing (窗口代录, 帮办代办): a window clerk files, completes and submits an application for the person
standing at the window, identified by the ID card in the clerk's hand, and records the person's consent
(申请人签字确认). Who the person is comes from identity, asked with the clerk's own token; intake never decides it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import access, drafts, uploads, walkin
from services.intake.domain.lifecycle import Action, Status
from services.intake.events import contracts as ev
from services.intake.service.common import Responder, load_visible, note, responder, serving_clerk, transition
from services.intake.service.files import Reader
from services.intake.service.views import ApplicationView, view
from services.intake.store import identity
from services.intake.store import repository as repo
from services.intake.store.files import FileStore
from services.intake.store.identity import WalkInPerson
from services.intake.store.tables import Application, WalkIn
from shared.errors import Conflict, FieldError, Forbidden, NotFound, PayloadTooLarge, invalid
from shared.messaging import publish
from shared.principal import Principal
from shared.types import utcnow


@dataclass(frozen=True)
class Identity:
    """How to reach identity for this clerk: the client, the base URL and the clerk's own token."""

    http: httpx.AsyncClient
    base_url: str
    authorization: str


def walk_in_request(principal: Principal, id_number: str) -> tuple[str, str]:
    """The clerk's point and the card number as kept, checked before identity is asked anything."""
    point = access.walk_in_point(principal)
    number, why = walkin.card_number(id_number)
    if why:
        raise invalid("body.person.id_number", "id_number", why)
    return point, number


async def identify(source: Identity, *, id_number: str, person: dict[str, Any]) -> WalkInPerson:
    """Ask identity who the person holding this card is (opening their account if they have none); outside any
    transaction: no HTTP call while a row is locked."""
    return await identity.identify(source.http, source.base_url, source.authorization, id_number=id_number,
                                   person=person)


async def file_walk_in(session: AsyncSession, principal: Principal, person: WalkInPerson, *, point: str,
                       item_code: str, form: dict[str, Any], delivery_method: str, delivery_point: str | None,
                       delivery_address: str | None, fee_exemption: str | None) -> ApplicationView:
    """The draft a clerk opens for the person at the window: kept with the person identity vouched for, the clerk
    and the point, shown on the timeline (窗口代录) and counted as the person's visit."""
    item = await repo.current_item(session, item_code)
    if item is None:
        raise invalid("item_code", "unknown_item", "No published, unwithdrawn item has this code.")
    findings = drafts.start_findings(item.payload, channel="window", service_point=point, applicant_kind="person",
                                     form=form)
    if findings:
        raise drafts.problems(findings, "The item cannot be applied for at this window.")
    app = await repo.add_application(
        session, item_code=item.code, item_version=item.version, item_name=item.name, department=item.department,
        status=Status.DRAFT.value, applicant_kind="person", applicant_id=person.id, applicant_holder_id=person.id_number,
        applicant_name=person.name, agent_id=None, created_by=principal.subject, channel="window",
        service_point=point, form=form,
        **drafts.delivery_values(item.payload, method=delivery_method, point=delivery_point,
                                 address=delivery_address, handed_in_at=point),
        **drafts.exemption_values(item.payload, fee_exemption),
    )
    await note(session, app, "创建申请草稿", unit=point)
    await _record_filing(session, app, person, responder(principal))
    return await view(session, app, principal)


async def _record_filing(session: AsyncSession, app: Application, person: WalkInPerson, by: Responder) -> None:
    point = app.service_point
    await repo.add_walk_in(session, application_id=app.id, person_id=person.id,
                           assurance_level=person.assurance_level, account_created=person.account_created,
                           claim_code=person.claim_code, claim_expires_at=person.claim_expires_at, clerk_id=by.id,
                           clerk_name=by.name, service_point=point)
    await note(session, app, "窗口代录", unit=point, staff_name=by.name, staff_contact=by.contact,
               text="工作人员现场核验居民身份证后代为填报" + ("（已为申请人开立账户，可凭回执认领码网上认领）"
                                                 if person.account_created else ""))
    visit = await repo.add_visit(session, application_id=app.id, service_point=point, purpose="窗口代录",
                                 recorded_by=by.id)
    await publish(session, ev.VISIT_RECORDED, subject=app.id, data=ev.VisitRecorded(
        application_id=app.id, service_point=point, purpose="窗口代录", at=visit.at))


async def _consenting(session: AsyncSession, principal: Principal, application_id: str) -> Application:
    app = await load_visible(session, principal, application_id, for_update=True)
    if not serving_clerk(principal, app):
        raise Forbidden("Only a window clerk of the point where the case was filed records the person's consent.")
    transition(app.status, Action.EDIT)
    if await repo.walk_in(session, app.id) is None:
        raise Conflict("This application was not filed at a window for the person.", slug="not-a-walk-in")
    return app


async def consent_by_slip(session: AsyncSession, principal: Principal, application_id: str, *, files: FileStore,
                          filename: str | None, read: Reader) -> tuple[WalkIn, str]:
    """The signed slip, scanned at the counter (PDF, JPEG or PNG; type checked by its bytes)."""
    app = await _consenting(session, principal, application_id)
    material = walkin.CONSENT_MATERIAL
    limit = uploads.max_bytes(material)
    data = await read(limit + 1)
    name = uploads.safe_name(filename)
    findings = [f for f in (uploads.check_type(material, name, data[:16]), uploads.check_size(material, len(data)))
                if f is not None]
    if any(f.rule == "max_bytes" for f in findings):
        raise PayloadTooLarge(f"签字确认书不能超过 {limit} 字节。", errors=[FieldError(**f.as_dict()) for f in findings])
    if findings:
        raise drafts.problems(findings, "The signed slip is refused.")
    digest = hashlib.sha256(data).hexdigest()
    key = f"{app.id}/consent-{digest}"
    await files.put(key, data)
    return await _record_consent(session, app, kind="signed_slip", by=responder(principal), file={
        "filename": name, "content_type": uploads.detected_type(data), "size": len(data), "sha256": digest,
        "storage_key": key})


async def consent_by_signature(session: AsyncSession, principal: Principal, application_id: str, *,
                               reference: str) -> tuple[WalkIn, str]:
    """A signature captured on the counter's pad."""
    app = await _consenting(session, principal, application_id)
    return await _record_consent(session, app, kind="signature_capture", by=responder(principal),
                                 reference=reference.strip())


async def _record_consent(session: AsyncSession, app: Application, *, kind: str, by: Responder,
                          reference: str | None = None, file: dict[str, Any] | None = None) -> tuple[WalkIn, str]:
    """申请人签字确认: a new consent replaces the earlier one (the form may have changed)."""
    row = await repo.walk_in(session, app.id, for_update=True)
    if row is None:
        raise Conflict("This application was not filed at a window for the person; the applicant applies "
                       "themself.", slug="not-a-walk-in")
    f = file or {}
    row.consent_kind, row.consent_reference = kind, reference
    row.consent_filename, row.consent_content_type = f.get("filename"), f.get("content_type")
    row.consent_size, row.consent_sha256, row.consent_storage_key = f.get("size"), f.get("sha256"), f.get("storage_key")
    row.consent_at, row.consent_by = utcnow(), by.id
    await session.flush()
    await note(session, app, "申请人签字确认", unit=app.service_point, staff_name=by.name, staff_contact=by.contact,
               text="上传签字确认书" if kind == "signed_slip" else "签字板签名")
    await repo.move(session, app, from_states=[app.status])  # touch updated_at (the ETag changes)
    return row, drafts.etag(app.id, app.updated_at)


async def consent_file(session: AsyncSession, principal: Principal, application_id: str, *,
                       files: FileStore) -> tuple[WalkIn, bytes]:
    app = await load_visible(session, principal, application_id)
    row = await repo.walk_in(session, app.id)
    if row is None or not row.consent_storage_key:
        raise NotFound("No signed slip is kept for this application.")
    return row, await files.get(row.consent_storage_key)
