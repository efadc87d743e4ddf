"""The handling of one application across routes and event handlers: the steps that combine domain rules,
the store and the outbox (and datashare, for materials the system fetches). No HTTP routing here."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import assurance, completeness, delivery, fees, receipts, timeline
from services.intake.domain.completeness import Finding, Provided
from services.intake.domain.lifecycle import Action, IllegalTransition, Status, ensure, sources
from services.intake.domain.reuse import Earlier
from services.intake.events import contracts as ev
from services.intake.store import repository as repo
from services.intake.store.tables import Application, Attachment, ItemVersion
from shared.auth import Principal
from shared.errors import Conflict, FieldError, Forbidden, ValidationProblem
from shared.messaging import publish
from shared.types import utcnow
from shared.workdays import WorkCalendar

CALENDAR = WorkCalendar()
CITY_TZ = ZoneInfo("Asia/Shanghai")

log = logging.getLogger("yimen.intake")

ONLINE_CHANNELS = frozenset({"online", "mobile"})


def applicant_ref(app: Application) -> ev.ApplicantRef:
    return ev.ApplicantRef(
        kind=app.applicant_kind,  # type: ignore[arg-type]
        id=app.applicant_id, holder_id=app.applicant_holder_id, name=app.applicant_name, agent_id=app.agent_id,
    )


def provided_of(atts: Sequence[Attachment]) -> list[Provided]:
    return [Provided(a.material_code, a.kind) for a in atts]


def transition(status: str, action: Action) -> None:
    try:
        ensure(status, action)
    except (IllegalTransition, ValueError) as exc:
        raise Conflict(str(exc), slug="illegal-transition", status_now=status) from exc


async def item_of(session: AsyncSession, app: Application) -> ItemVersion:
    item = await repo.item_version(session, app.item_code, app.item_version)
    if item is None:  # cannot happen: an application is created only against a kept version
        raise Conflict("The item version this application cites is unknown.", slug="item-unknown")
    return item


def refuse_if_assurance_too_low(item: ItemVersion, principal: Principal, level: int | None = None) -> None:
    """实名核验: the item's `min_assurance_level` against the applicant's token (or `level`: a walk-in's)."""
    low = assurance.shortfall(item.payload, principal.applicant_assurance_level if level is None else level)
    if low is not None:
        raise Forbidden(low.message, slug="assurance-level-too-low", title="Identity assurance level too low",
                        required_level=low.required, current_level=low.current)


def refuse_if_withdrawn(item: ItemVersion) -> None:
    if item.withdrawn_at is not None:
        raise ValidationProblem(
            FieldError(
                field="item_version", rule="item_withdrawn",
                message=f"事项 {item.code} 第 {item.version} 版已撤销，不能再提交；请按现行版本重新申请。",
            )
        )


# --- datashare fetch (the applicant is not asked for what a department holds) -----------------------------------


@dataclass
class FetchResult:
    material_code: str
    status: str  # found | no_match | refused | unavailable
    reference: str | None = None
    details: dict[str, Any] | None = None
    material_name: str | None = None


async def fetch_from_datashare(
    http: httpx.AsyncClient, base_url: str, authorization: str | None, app: Application, item: ItemVersion,
    atts: Sequence[Attachment],
) -> list[FetchResult]:
    """Ask datashare for every obtainable material not yet provided, with the application as purpose and the
    applicant's own token. Pure I/O: the caller records the results in its transaction."""
    out: list[FetchResult] = []
    for m in completeness.to_fetch(item.payload, provided_of(atts)):
        body = {
            "application_id": app.id, "item_code": app.item_code, "item_version": app.item_version,
            "material_code": m["code"], "holder_id": app.applicant_holder_id, "holder_kind": app.applicant_kind,
        }
        headers = {"Authorization": authorization} if authorization else {}
        if not app.applicant_holder_id:
            out.append(FetchResult(m["code"], "refused"))  # nothing to ask by: no ID number in the token
            continue
        try:
            r = await http.post(f"{base_url}/datashare/v1/requests", json=body, headers=headers, timeout=5)
            if r.status_code != 200:
                log.warning("datashare answered %s for material %s", r.status_code, m["code"])
                # A 4xx is datashare's refusal (the holder or the purpose not established): the applicant
                # uploads instead; anything else is an outage.
                status = "refused" if 400 <= r.status_code < 500 else "unavailable"
                out.append(FetchResult(m["code"], status))
                continue
            data = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("datashare unreachable for material %s: %r", m["code"], exc)
            out.append(FetchResult(m["code"], "unavailable"))
            continue
        if data.get("status") == "found":
            cert = data.get("certificate") or {}
            record = data.get("record") or {}
            ref = cert.get("number") or record.get("id") or record.get("number")
            out.append(FetchResult(m["code"], "found", str(ref) if ref else None,
                                   {"source": data.get("source"), "certificate": cert or None, "record": record or None},
                                   material_name=m.get("name")))
        else:
            out.append(FetchResult(m["code"], "no_match"))
    return out


async def record_fetched(session: AsyncSession, app: Application, results: Sequence[FetchResult]) -> dict[str, str]:
    """Attach what datashare found; return the failures for the notice."""
    failures: dict[str, str] = {}
    for r in results:
        if r.status == "found":
            await repo.put_attachment(
                session, application_id=app.id, material_code=r.material_code, kind="fetched",
                reference=r.reference, details=r.details or {},
            )
            name = r.material_name or r.material_code
            await note(session, app, f"共享获取：{name}", unit=app.department, code="data_fetched",
                       purpose=f"办理“{app.item_name}”所需材料“{name}”，系统代为获取，申请人无需提交")
        else:
            failures[r.material_code] = r.status
    return failures


async def completeness_findings(
    session: AsyncSession, app: Application, item: ItemVersion, failures: dict[str, str]
) -> tuple[list[Finding], Sequence[Attachment]]:
    atts = await repo.attachments(session, app.id)
    findings = completeness.check(item.payload, app.form or {}, provided_of(atts), failures)
    return findings, atts


async def earlier_of(session: AsyncSession, principal: Principal, exclude: str | None = None,
                     limit: int = 50) -> list[Earlier]:
    """The caller's earlier applications (newest first) with their item versions and attachments, for reuse."""
    apps = [a for a in await repo.earlier_applications(
        session, applicant_ids=principal.applicant_ids, subject=principal.subject, limit=limit) if a.id != exclude]
    atts = await repo.attachments(session, [a.id for a in apps])
    items: dict[tuple[str, int], dict[str, Any]] = {}
    out = []
    for a in apps:
        key = (a.item_code, a.item_version)
        if key not in items:
            iv = await repo.item_version(session, *key)
            items[key] = iv.payload if iv else {}
        out.append(Earlier(application_id=a.id, form=a.form or {}, item=items[key],
                           attachments=[x for x in atts if x.application_id == a.id]))
    return out


async def department_contact(session: AsyncSession, app: Application, department: str) -> str | None:
    """The item's published consultation phone for its own department's steps, else the department's phone (as
    catalog announces it), shown when the handler left none (事中告知: the applicant always has someone to call)."""
    if department != app.department:
        return await repo.department_phone(session, department)
    key = (app.item_code, app.item_version)
    if key in _consultation_phones:
        phone = _consultation_phones[key]
    else:
        item = await repo.item_version(session, app.item_code, app.item_version)
        phone = next((str(c["value"]) for c in ((item.payload.get("guide") or {}).get("consultation") or [])
                      if isinstance(c, dict) and c.get("channel") == "phone" and c.get("value")), None) if item else None
        if item is not None:
            if len(_consultation_phones) >= 10_000:
                _consultation_phones.clear()
            _consultation_phones[key] = phone
    return phone or await repo.department_phone(session, department)


#: A published item version never changes: its consultation phone is read once per process, not on every step of
#: every case (each read loads the version's whole content).
_consultation_phones: dict[tuple[str, int], str | None] = {}


def staff_label(name: str | None, unit: str | None) -> str | None:
    """A handler as the applicant reads it: 周审查（行政审批股）."""
    if not name:
        return None
    return f"{name}（{unit}）" if unit else name


# --- timeline -----------------------------------------------------------------------------------------------------


async def note(
    session: AsyncSession, app: Application, step: str, *, unit: str | None = None, staff_name: str | None = None,
    staff_contact: str | None = None, text: str | None = None, at: datetime | None = None, code: str | None = None,
    purpose: str | None = None,
) -> None:
    # Names and contacts come from other services' events: clip them to the columns rather than fail the step.
    await repo.add_timeline(
        session, app.id, status=app.status, step=step[:200], unit=(unit or app.department)[:64],
        staff_name=staff_name[:200] if staff_name else None,
        staff_contact=staff_contact[:200] if staff_contact else None, note=text, at=at,
        code=code or timeline.code_for(step), purpose=purpose[:300] if purpose else None,
    )


# --- submission and acceptance ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Responder:
    """Who acts on an application: a window clerk (first responder 首问负责) or the system."""

    id: str
    name: str | None
    unit: str | None
    contact: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "unit": self.unit, "contact": self.contact}


SYSTEM = Responder("system", "网上自动受理", None)


@dataclass(frozen=True)
class StageDispatch:
    """An application dispatched from a project's stage (统一分派): its project, stage and department's limit."""

    project_id: str
    stage_key: str
    limit_days: int


async def submit(session: AsyncSession, app: Application, item: ItemVersion, *, accept_by: Responder | None = None,
                 dispatch: StageDispatch | None = None) -> None:
    """Hand in a complete application: receipt number, `submitted`, and automatic acceptance where the item is
    fully online (or by `accept_by`: the centre's one acceptance of a project's stage). The caller has already
    run the check and refused an incomplete application."""
    now = utcnow()
    first_time = app.receipt_number is None
    values: dict[str, Any] = {"status": Status.SUBMITTED.value, "submitted_at": now, "notice": []}
    if first_time:
        prefix = receipts.receipt_prefix(app.item_code, now)
        values["receipt_number"] = receipts.receipt_number(prefix, await repo.next_serial(session, prefix))
        values["verification_code"] = receipts.verification_code()
    if not await repo.move(session, app, from_states=sources(Action.SUBMIT), **values):
        raise Conflict("The application was submitted meanwhile.", slug="illegal-transition")
    await note(session, app, "提交申请" if first_time else "补正后重新提交", unit=app.service_point)
    assert app.receipt_number is not None
    await publish(
        session, ev.SUBMITTED, subject=app.id,
        data=ev.Submitted(
            application_id=app.id, receipt_number=app.receipt_number, item_code=app.item_code,
            item_version=app.item_version, department=app.department, applicant=applicant_ref(app),
            channel=app.channel, service_point=app.service_point, submitted_at=now,
            project_id=dispatch.project_id if dispatch else None, stage_key=dispatch.stage_key if dispatch else None,
        ),
    )
    if accept_by is not None:
        await accept(session, app, item, accept_by, dispatch=dispatch)
    elif item.payload.get("fully_online"):
        await accept(session, app, item, SYSTEM)


def _material_refs(atts: Sequence[Attachment]) -> list[ev.MaterialRef]:
    """An upload's reference is where a reviewing department downloads it, with the hash to check it by."""
    out = []
    for a in atts:
        ref = a.reference
        if a.kind == "upload" or a.storage_key:
            ref = f"/intake/v1/applications/{a.application_id}/materials/{a.id}/file?sha256={a.sha256}"
        out.append(ev.MaterialRef(code=a.material_code, kind=a.kind, reference=ref))  # type: ignore[arg-type]
    return out


async def accept(session: AsyncSession, app: Application, item: ItemVersion, by: Responder, *,
                 refuse_exemption: str | None = None, dispatch: StageDispatch | None = None) -> None:
    """受理: the clock starts; an immediate item (即办件) is decided on the spot. A claimed fee exemption is
    granted here unless the clerk refuses it (`refuse_exemption` gives the reason)."""
    now = utcnow()
    exemption: dict[str, Any] = {}
    if app.fee_exemption_state == "claimed":
        exemption["fee_exemption_state"] = "refused" if refuse_exemption else "granted"
    if not await repo.move(session, app, from_states=sources(Action.ACCEPT), status=Status.ACCEPTED.value,
                           accepted_at=now, first_responder=by.as_dict(), **exemption):
        raise Conflict("The application is no longer waiting for acceptance.", slug="illegal-transition")
    await note(session, app, "受理", unit=by.unit or app.service_point, staff_name=by.name, staff_contact=by.contact)
    if exemption:
        claimed = fees.exemptions(item.payload).get(app.fee_exemption or "") or {}
        granted = exemption["fee_exemption_state"] == "granted"
        await note(session, app, "收费减免：" + ("准予" if granted else "不予减免"), unit=by.unit or app.service_point,
                   staff_name=by.name, staff_contact=by.contact,
                   text=f"{claimed.get('name', app.fee_exemption)}（依据：{claimed.get('basis', '')}）"
                   + ("" if granted else f"；理由：{refuse_exemption}"))
    atts = await repo.attachments(session, app.id)
    p = item.payload
    assert app.receipt_number is not None
    await publish(
        session, ev.ACCEPTED, subject=app.id,
        data=ev.Accepted(
            application_id=app.id, receipt_number=app.receipt_number, item_code=app.item_code,
            item_version=app.item_version, item_name=app.item_name, department=app.department,
            applicant=applicant_ref(app), channel=app.channel, service_point=app.service_point,
            online=app.channel in ONLINE_CHANNELS, accepted_at=now, accepted_by=by.id, form=app.form or {},
            materials=_material_refs(atts), commitments=sorted({a.material_code for a in atts if a.kind == "commitment"}),
            case_kind=p.get("case_kind", "promised"),
            # In a project's stage the department's own limit there is the promise (明确部门办理时限).
            promised_limit=({"value": dispatch.limit_days, "unit": "working_days"} if dispatch
                            else p.get("promised_limit")),
            statutory_limit=p.get("statutory_limit"),
            project_id=dispatch.project_id if dispatch else None, stage_key=dispatch.stage_key if dispatch else None,
        ),
    )
    if p.get("case_kind") == "immediate":
        # Acceptance is the decision (即办件); workflow records it without a task, so nothing decides again.
        await repo.move(session, app, from_states=[Status.ACCEPTED], status=Status.DECIDED.value, outcome="approved",
                        decided_at=now)
        await note(session, app, "即办件当场办结", unit=by.unit or app.department, staff_name=by.name,
                   staff_contact=by.contact)
        await after_decision(session, app, item)


async def not_accept(session: AsyncSession, app: Application, by: Responder, *, reasons: str, legal_basis: str) -> None:
    """不予受理, with reasons and the legal basis; the clerk is the first responder."""
    now = utcnow()
    if not await repo.move(session, app, from_states=sources(Action.NOT_ACCEPT), status=Status.NOT_ACCEPTED.value,
                           first_responder=by.as_dict(), outcome="not_accepted", decided_at=now):
        raise Conflict("The application is no longer waiting for acceptance.", slug="illegal-transition")
    await note(session, app, "不予受理", unit=by.unit, staff_name=by.name, staff_contact=by.contact,
               text=f"{reasons}（依据：{legal_basis}）")
    assert app.receipt_number
    await publish(session, ev.NOT_ACCEPTED, subject=app.id, data=ev.NotAccepted(
        application_id=app.id, receipt_number=app.receipt_number, reasons=reasons, legal_basis=legal_basis, at=now))


async def return_for_correction(session: AsyncSession, app: Application, by: Responder, *, reasons: str,
                                missing: list[dict[str, str]]) -> None:
    """补正 before acceptance. The clerk's findings come on top of what the check finds, so the notice is
    complete at once."""
    found, _ = await completeness_findings(session, app, await item_of(session, app), {})
    named = {m["field"] for m in missing}
    missing = missing + [f.as_dict() for f in found if f.field not in named]
    now = utcnow()
    if not await repo.move(session, app, from_states=sources(Action.RETURN), status=Status.RETURNED.value,
                           first_responder=by.as_dict(), notice=missing):
        raise Conflict("The application is no longer waiting for acceptance.", slug="illegal-transition")
    await note(session, app, "退回补正（一次性告知）", unit=by.unit, staff_name=by.name, staff_contact=by.contact,
               text=reasons)
    assert app.receipt_number
    await publish(session, ev.RETURNED, subject=app.id, data=ev.Returned(
        application_id=app.id, receipt_number=app.receipt_number, reasons=reasons,
        missing=[ev.Missing(**m) for m in missing], returned_at=now))


async def withdraw(session: AsyncSession, app: Application) -> None:
    now = utcnow()
    if not await repo.move(session, app, from_states=sources(Action.WITHDRAW), status=Status.WITHDRAWN.value):
        raise Conflict("The application changed meanwhile.", slug="illegal-transition")
    await note(session, app, "申请人撤回", unit=app.service_point)
    if app.receipt_number:  # a draft was never announced
        await publish(session, ev.WITHDRAWN, subject=app.id, data=ev.Withdrawn(
            application_id=app.id, receipt_number=app.receipt_number, withdrawn_at=now))


async def answer_correction(session: AsyncSession, app: Application, *, note_text: str | None = None) -> None:
    """The applicant answered a reviewing department's 补正: review resumes on the task that asked."""
    task_id = app.correction_task_id or ""
    now = utcnow()
    if not await repo.move(session, app, from_states=sources(Action.CORRECT), status=Status.IN_REVIEW.value,
                           notice=[], correction_task_id=None):
        raise Conflict("The application changed meanwhile.", slug="illegal-transition")
    await note(session, app, "申请人已补正", unit=app.department, text=note_text)
    assert app.receipt_number
    await publish(session, ev.CORRECTED, subject=app.id, data=ev.Corrected(
        application_id=app.id, receipt_number=app.receipt_number, task_id=task_id, corrected_at=now))


async def deliver(session: AsyncSession, app: Application, *, method: str, by: Responder | None = None,
                  carrier: str | None = None, tracking_number: str | None = None) -> None:
    now = utcnow()
    post = {"delivery_carrier": carrier, "delivery_tracking": tracking_number} if method == "post" else {}
    if not await repo.move(
        session, app, from_states=sources(Action.DELIVER),
        status=Status.DELIVERED.value, delivered_at=now, **post,
    ):
        raise Conflict("The result cannot be delivered in this state.", slug="illegal-transition")
    cert = (app.result or {}).get("certificate_number")
    step = {"electronic": "电子证照送达" if cert else "结果电子送达", "pickup": "窗口领取", "post": "邮寄送达"}[method]
    await note(session, app, step, unit=by.unit if by else app.department, staff_name=by.name if by else None,
               staff_contact=by.contact if by else None,
               text=f"{carrier}，运单号 {tracking_number}" if method == "post" else None)
    assert app.receipt_number is not None
    await publish(
        session, ev.DELIVERED, subject=app.id,
        data=ev.Delivered(application_id=app.id, receipt_number=app.receipt_number, method=method,  # type: ignore[arg-type]
                          certificate_number=cert, delivered_at=now, online=app.channel in ONLINE_CHANNELS),
    )


# --- after the decision: the result, the fee, and the hand-over (出件) -----------------------------------------


def result_document(app: Application, item: ItemVersion) -> dict[str, Any] | None:
    """An approval whose result is not a certificate, or a refusal, ends in a written result (办理结果通知书 /
    不予许可决定书) that intake issues under the receipt number; a certificate comes from datashare."""
    result = item.payload.get("result") or {}
    if app.outcome == "approved" and result.get("type") == "certificate" and result.get("certificate_type"):
        return None
    name = result.get("name") if app.outcome == "approved" else f"{app.item_name}不予许可决定书"
    return {"type": "document", "name": name or f"{app.item_name}办理结果通知书",
            "document_number": f"{app.receipt_number}-JG", "outcome": app.outcome,
            "issued_on": (app.decided_at or utcnow()).astimezone(CITY_TZ).date().isoformat()}


async def after_decision(session: AsyncSession, app: Application, item: ItemVersion) -> None:
    """The decision is known: issue the written result where there is no certificate, ask for the fee where
    one is due (缴款通知), then hand the result over if nothing else is awaited."""
    doc = result_document(app, item)
    if doc is not None and not (app.result or {}).get("document_number"):
        await repo.move(session, app, from_states=[app.status], result={**(app.result or {}), **doc})
    if app.outcome == "approved":
        granted = app.fee_exemption if app.fee_exemption_state == "granted" else None
        owed = fees.bill(item.payload, granted)
        if owed.due and await repo.payment_notice(session, app.id) is None:
            await request_payment(session, app, owed)
            return
    await hand_over_if_ready(session, app, item)


async def request_payment(session: AsyncSession, app: Application, owed: fees.Bill) -> None:
    now = utcnow()
    if not await repo.move(session, app, from_states=sources(Action.REQUEST_PAYMENT),
                           status=Status.AWAITING_PAYMENT.value):
        return
    due_on = CALENDAR.add_workdays(now.astimezone(CITY_TZ).date(), fees.DUE_WORKDAYS).value
    notice = await repo.add_payment_notice(session, application_id=app.id, payment_code=fees.payment_code(),
                                           amount=f"{owed.amount:.2f}", items=owed.lines, due_on=due_on)
    await note(session, app, "缴款通知", unit=app.department,
               text=f"应缴 {notice.amount} 元，缴款码 {notice.payment_code}，请于 {due_on.isoformat()} 前缴纳。")
    assert app.receipt_number
    await publish(session, ev.PAYMENT_REQUESTED, subject=app.id, data=ev.PaymentRequested(
        application_id=app.id, receipt_number=app.receipt_number, applicant=applicant_ref(app),
        item_name=app.item_name, amount=notice.amount, payment_code=notice.payment_code, due_on=due_on))


class PaymentRefused(Exception):
    """The notification names no notice of ours, or another amount: nothing is applied."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


async def confirm_payment(session: AsyncSession, *, payment_code: str, amount: str, paid_at: datetime,
                          transaction_id: str | None) -> str:
    """The payment platform confirmed: the notice is paid once (a second confirmation is `already_paid`), then
    the result goes on to its hand-over."""
    found = await repo.payment_notice_by_code(session, payment_code)
    if found is None:
        raise PaymentRefused("unknown_payment_code", "No payment notice has this payment code.")
    # The application first, then its notice: the order every event handler takes its locks in.
    app = await repo.get_application(session, found.application_id, for_update=True)
    notice = await repo.payment_notice_by_code(session, payment_code, for_update=True)
    assert app is not None and app.receipt_number and notice is not None
    if not fees.same_amount(amount, notice.amount):
        raise PaymentRefused("amount_mismatch", f"The notice asks for {notice.amount} yuan, not {amount}.")
    if notice.status == "paid":
        return "already_paid"
    notice.status, notice.paid_at, notice.transaction_id = "paid", paid_at, transaction_id
    await session.flush()
    await repo.move(session, app, from_states=sources(Action.CONFIRM_PAYMENT), status=Status.DECIDED.value)
    await note(session, app, "已缴费", unit=app.department, text=f"{notice.amount} 元，交易号 {transaction_id or '—'}")
    await publish(session, ev.PAYMENT_CONFIRMED, subject=app.id, data=ev.PaymentConfirmed(
        application_id=app.id, receipt_number=app.receipt_number, amount=notice.amount, paid_at=paid_at))
    if app.status == Status.DECIDED:
        await hand_over_if_ready(session, app, await item_of(session, app))
    return "paid"


async def hand_over_if_ready(session: AsyncSession, app: Application, item: ItemVersion) -> None:
    """统一窗口出件: once decided, paid, and (for a certificate) issued — electronically at once; for pick-up
    the result joins the chosen point's collection queue; by post it waits for the clerk to send it."""
    if app.status != Status.DECIDED:
        return
    result = item.payload.get("result") or {}
    if (app.outcome == "approved" and result.get("type") == "certificate" and result.get("certificate_type")
            and not (app.result or {}).get("certificate_number")):
        return  # datashare's certificate.issued brings it
    if app.delivery_method == "electronic":
        await deliver(session, app, method="electronic")
        return
    if not await repo.move(session, app, from_states=[Status.DECIDED], status=Status.AWAITING_PICKUP.value,
                           ready_at=utcnow()):
        return
    point = app.delivery_point or app.service_point
    name = delivery.point_name(item.payload, point)
    if app.delivery_method == "pickup":
        await note(session, app, f"结果已出，请到{name or point}领取", unit=point)
        assert app.receipt_number
        await publish(session, ev.READY_FOR_COLLECTION, subject=app.id, data=ev.ReadyForCollection(
            application_id=app.id, receipt_number=app.receipt_number, applicant=applicant_ref(app),
            item_name=app.item_name, service_point=point, service_point_name=name))
    else:
        await note(session, app, "结果已出，待邮寄", unit=app.service_point)


async def change_delivery(session: AsyncSession, app: Application, item: ItemVersion, *, method: str,
                          point: str | None, address: str | None) -> None:
    """The applicant changes where the result goes, until it is ready (then it is already on its way)."""
    if app.status not in delivery.CHANGEABLE:
        raise Conflict("The result is ready or delivered; its delivery can no longer change.",
                       slug="delivery-fixed", status_now=app.status)
    findings = delivery.check_choice(item.payload, method=method, point=point, address=address)
    if findings:
        raise ValidationProblem([FieldError(**f.as_dict()) for f in findings])
    values = {"delivery_method": method, "delivery_point": point if method == "pickup" else None,
              "delivery_address": address if method == "post" else None}
    if not await repo.move(session, app, from_states=[s.value for s in delivery.CHANGEABLE], **values):
        raise Conflict("The application changed meanwhile.", slug="illegal-transition")
    if app.status not in (Status.DRAFT,):
        where = {"electronic": "电子送达", "pickup": f"到{delivery.point_name(item.payload, point) or point}领取",
                 "post": "邮寄"}[method]
        await note(session, app, f"申请人变更送达方式：{where}", unit=app.service_point)
    if app.status == Status.DECIDED:
        await hand_over_if_ready(session, app, item)


# --- walk-in filing (窗口代录, 帮办代办) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WalkInPerson:
    """The person at the counter as identity answered the clerk: account id, level, whether opened now."""

    id: str
    name: str
    id_number: str
    assurance_level: int
    account_created: bool
    claim_code: str | None = None
    claim_expires_at: datetime | None = None


async def file_walk_in(session: AsyncSession, app: Application, person: WalkInPerson, by: Responder) -> None:
    """The draft a clerk opened for the person at the window is a walk-in: kept with the person identity vouched
    for, the clerk and the point, shown on the timeline (窗口代录) and counted as the person's visit."""
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


async def record_consent(session: AsyncSession, app: Application, *, kind: str, by: Responder,
                         reference: str | None = None, file: dict[str, Any] | None = None) -> Any:
    """申请人签字确认: the person agrees to what the clerk filed for them — a signed slip scanned at the counter, or
    a signature captured on the counter's pad. A new consent replaces the earlier one (the form may have changed)."""
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
    return row
