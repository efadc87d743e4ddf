"""What the routes share: rendering what the use cases return as the API's response models, and the outbound
sources (datashare, identity, the file store) taken from the app's state. No rules and no queries here."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from services.intake import service
from services.intake.api import schemas as s
from services.intake.domain import delivery, fees, timeline


def datashare(request: Request) -> service.Datashare:
    """Datashare, asked with the caller's own token."""
    url = request.app.state.settings.platform.service_urls.get("datashare", "http://127.0.0.1:8105").rstrip("/")
    return service.Datashare(request.app.state.http, url, request.headers.get("authorization"))


def identity(request: Request) -> service.Identity:
    """Identity, asked with the clerk's own token."""
    url = request.app.state.settings.platform.service_urls.get("identity", "http://127.0.0.1:8102").rstrip("/")
    return service.Identity(request.app.state.http, url, request.headers.get("authorization", ""))


def files(request: Request) -> Any:
    return service.file_store(request.app.state)


def attachment_read(a: Any) -> s.AttachmentRead:
    return s.AttachmentRead(id=a.id, material_code=a.material_code, kind=a.kind, reference=a.reference,
                            filename=a.filename, content_type=a.content_type, size=a.size, sha256=a.sha256,
                            created_at=a.created_at)


def timeline_read(t: Any, names: dict[str, str]) -> s.TimelineRead:
    return s.TimelineRead(at=t.at, status=t.status, step=t.step, code=t.code or timeline.code_for(t.step), unit=t.unit,
                          unit_name=names.get(t.unit or ""), staff_name=t.staff_name, staff_contact=t.staff_contact,
                          note=t.note, purpose=t.purpose)


def application_read(v: service.ApplicationView) -> s.ApplicationRead:
    app, payload, notice = v.app, v.item, v.payment
    exemption = fees.exemptions(payload).get(app.fee_exemption or "") or {}
    return s.ApplicationRead(
        id=app.id, status=app.status, item_code=app.item_code, item_version=app.item_version,
        item_name=app.item_name, department=app.department,
        applicant=s.ApplicantRead(kind=app.applicant_kind, id=app.applicant_id, name=app.applicant_name,
                                  agent_id=app.agent_id, holder_id=v.holder_id),
        channel=app.channel, service_point=app.service_point, form=v.form,
        delivery=s.DeliveryRead(
            method=app.delivery_method, service_point=app.delivery_point,
            service_point_name=delivery.point_name(payload, app.delivery_point) if app.delivery_point else None,
            address=app.delivery_address, carrier=app.delivery_carrier, tracking_number=app.delivery_tracking,
            changeable=app.status in delivery.CHANGEABLE, ready_at=app.ready_at),
        fee_exemption=s.FeeExemptionRead(
            code=app.fee_exemption, state=app.fee_exemption_state,
            name=exemption.get("name"), basis=exemption.get("basis")) if app.fee_exemption else None,
        payment=s.PaymentRead(
            payment_code=notice.payment_code, amount=notice.amount,
            items=[s.FeeLine.model_validate(x) for x in notice.items or []], due_on=notice.due_on,
            status=notice.status, requested_at=notice.requested_at, paid_at=notice.paid_at,
        ) if notice else None,
        receipt_number=app.receipt_number, verification_code=v.verification_code,
        notice=[s.Problem(**p) for p in app.notice or []],
        first_responder=s.ResponderRead(**app.first_responder) if app.first_responder else None,
        outcome=app.outcome, result=s.ResultRead.model_validate(app.result) if app.result else None,
        copied_from=app.copied_from,
        materials=[attachment_read(a) for a in v.attachments],
        timeline=[timeline_read(t, v.unit_names) for t in v.timeline],
        created_at=app.created_at, updated_at=app.updated_at, submitted_at=app.submitted_at,
        accepted_at=app.accepted_at, decided_at=app.decided_at, delivered_at=app.delivered_at,
        walk_in=walk_in_read(v.walk_in) if v.walk_in else None,
    )


def consent_read(w: Any) -> s.ConsentRead | None:
    if not (w.consent_kind and w.consent_at):
        return None
    return s.ConsentRead(kind=w.consent_kind, reference=w.consent_reference, filename=w.consent_filename,
                         content_type=w.consent_content_type, size=w.consent_size, sha256=w.consent_sha256,
                         recorded_at=w.consent_at, recorded_by=w.consent_by or "")


def walk_in_read(w: Any) -> s.WalkInFiling:
    return s.WalkInFiling(clerk_name=w.clerk_name, service_point=w.service_point, filed_at=w.created_at,
                          account_created=w.account_created, consent=consent_read(w))


def summary(app: Any) -> s.ApplicationSummary:
    return s.ApplicationSummary(id=app.id, status=app.status, item_code=app.item_code, item_name=app.item_name,
                                receipt_number=app.receipt_number, service_point=app.service_point,
                                created_at=app.created_at, updated_at=app.updated_at,
                                submitted_at=app.submitted_at)
