"""An application's life (办件): draft, materials, check (一次性告知), submission, acceptance at the window,
corrections, decision, fee, hand-over. Each use case owns its flow: the checks (domain), the state change and the
timeline (store), and the outbox event, in the caller's transaction; datashare is asked before anything is locked."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import access as access_rules
from services.intake.domain import (
    assurance,
    completeness,
    delivery,
    drafts,
    fees,
    forms,
    receipts,
    uploads,
    walkin,
)
from services.intake.domain.applicants import NotAnApplicant, applicant_of
from services.intake.domain.completeness import Finding
from services.intake.domain.lifecycle import Action, Status, sources
from services.intake.domain.reuse import match_materials
from services.intake.events import contracts as ev
from services.intake.service.common import (
    CALENDAR,
    CITY_TZ,
    NOT_FOUND,
    ONLINE_CHANNELS,
    SYSTEM,
    Responder,
    applicant_level,
    applicant_ref,
    completeness_findings,
    delegation_refusal,
    earlier_of,
    is_applicant,
    item_of,
    load_as_applicant,
    load_as_clerk,
    load_as_handing_clerk,
    load_visible,
    note,
    provided_of,
    refuse_if_assurance_too_low,
    refuse_if_withdrawn,
    responder,
    transition,
)
from services.intake.service.files import Reader
from services.intake.service.views import ApplicationView, view
from services.intake.store import datashare
from services.intake.store import repository as repo
from services.intake.store.files import FileStore
from services.intake.store.repository import PublishedItem
from services.intake.store.tables import Application, Attachment, Visit
from shared.db import Database
from shared.errors import Conflict, FieldError, Forbidden, NotFound, PayloadTooLarge, invalid
from shared.messaging import publish
from shared.principal import WINDOW_CLERK, Principal
from shared.types import utcnow

EDITABLE = (Status.DRAFT, Status.RETURNED, Status.AWAITING_CORRECTION)
#: A draft's attempts at its item's current version (`create_draft`): the first against the one found last.
_DRAFT_ATTEMPTS = 3


@dataclass(frozen=True)
class Datashare:
    """How to reach datashare for this caller: the client, the base URL and the caller's own token."""

    http: httpx.AsyncClient
    base_url: str
    authorization: str | None


# --- drafts --------------------------------------------------------------------------------------------------------


async def create_draft(session: AsyncSession, principal: Principal, *, item_code: str, channel: str,
                       service_point: str, form: dict[str, Any], on_behalf_of: str | None, delivery_method: str,
                       delivery_point: str | None, delivery_address: str | None,
                       fee_exemption: str | None) -> ApplicationView:
    """A new draft (办件草稿) against the item's current version; the applicant comes from the token."""
    try:
        applicant = applicant_of(principal, on_behalf_of)
    except NotAnApplicant as exc:
        raise Forbidden(str(exc)) from exc
    # The version found current last is not read again: the insert checks it still is. If it is not, the
    # current one is read and everything checked against it again.
    for attempt in range(_DRAFT_ATTEMPTS):
        item = await repo.current_item(session, item_code, remembered=attempt == 0)
        if item is None:
            raise invalid("item_code", "unknown_item", "No published, unwithdrawn item has this code.")
        refusal = await delegation_refusal(session, principal, applicant_id=applicant.id, item_code=item.code)
        if refusal:
            raise Forbidden(refusal, slug="delegation")
        findings = drafts.start_findings(item.payload, channel=channel, service_point=service_point,
                                         applicant_kind=applicant.kind, form=form)
        if findings:
            raise drafts.problems(findings, "The item cannot be applied for this way.")
        app = await repo.add_draft(
            session, item_code=item.code, item_version=item.version, item_name=item.name,
            department=item.department, status=Status.DRAFT.value, applicant_kind=applicant.kind,
            applicant_id=applicant.id, applicant_holder_id=applicant.holder_id, applicant_name=applicant.name,
            agent_id=applicant.agent_id, created_by=principal.subject, channel=channel, service_point=service_point,
            form=form,
            **drafts.delivery_values(item.payload, method=delivery_method, point=delivery_point,
                                     address=delivery_address, handed_in_at=service_point),
            **drafts.exemption_values(item.payload, fee_exemption),
        )
        if app is not None:
            break
    else:  # the item's versions kept changing between the read and the insert
        raise Conflict("The item's current version changed meanwhile; try again.", slug="item-changed")
    # Its step is held for the answer's timeline read, which writes it (PostgreSQL: in the same statement).
    async with repo.steps_held(session):
        await note(session, app, "创建申请草稿", unit=service_point)
    return await view(session, app, principal, item=item, atts=[])  # a new draft has no material yet


async def read(session: AsyncSession, principal: Principal, application_id: str) -> ApplicationView:
    return await view(session, await load_visible(session, principal, application_id), principal)


async def update_draft(session: AsyncSession, principal: Principal, application_id: str, *, if_match: str | None,
                       form: dict[str, Any] | None, delivery_method: str | None, delivery_point: str | None,
                       delivery_address: str | None, fee_exemption: str | None) -> ApplicationView:
    """Change a draft's form, delivery choice or fee exemption, against the ETag the caller last read."""
    app = await load_as_applicant(session, principal, application_id, for_update=True, filing_clerk=True)
    drafts.precondition(if_match, drafts.etag(app.id, app.updated_at))
    transition(app.status, Action.EDIT)
    values: dict[str, Any] = {}
    if form is not None or delivery_method is not None or fee_exemption is not None:
        item = await item_of(session, app)
        if form is not None:
            merged = drafts.merged_form(app.form or {}, form)
            # Checked against the version the draft cites: unknown keys, over-long values, a bounded whole (#13).
            if problems := forms.check_shape(item.payload, merged):
                raise drafts.problems(problems, "The form does not fit the item's application form.")
            values["form"] = merged
        if delivery_method is not None:
            values.update(drafts.delivery_values(item.payload, method=delivery_method, point=delivery_point,
                                                 address=delivery_address, handed_in_at=app.service_point))
        if fee_exemption is not None:
            values.update(drafts.exemption_values(item.payload, fee_exemption))
    if values:
        await repo.move(session, app, from_states=[app.status], **values)
    return await view(session, app, principal)


# --- materials -------------------------------------------------------------------------------------------------------


async def _editable_for_material(session: AsyncSession, principal: Principal,
                                 application_id: str) -> tuple[Application, PublishedItem]:
    app = await load_as_applicant(session, principal, application_id, for_update=True, filing_clerk=True)
    transition(app.status, Action.EDIT)
    return app, await item_of(session, app)


async def add_upload(session: AsyncSession, principal: Principal, application_id: str, *, files: FileStore,
                     material_code: str, filename: str | None, read: Reader,
                     sha256: str | None) -> tuple[Attachment, str]:
    """A file for a material: type by its bytes, size and the declared hash as the material allows. Returns the
    attachment and the application's new ETag."""
    app, item = await _editable_for_material(session, principal, application_id)
    material = drafts.requested_material(item.payload, material_code)
    limit = uploads.max_bytes(material)
    data = await read(limit + 1)
    digest = hashlib.sha256(data).hexdigest()
    name = uploads.safe_name(filename)
    findings = [f for f in (
        uploads.check_type(material, name, data[:16]),
        uploads.check_size(material, len(data)),
        uploads.check_hash(sha256, digest),
    ) if f is not None]
    if any(f.rule == "max_bytes" for f in findings):
        raise PayloadTooLarge(f"“{material.get('name', material_code)}”的文件不能超过 {limit} 字节。",
                              errors=[FieldError(**f.as_dict()) for f in findings])
    if findings:
        raise drafts.problems(findings, "The file is refused.")
    key = f"{app.id}/{digest}"
    await files.put(key, data)
    att = await repo.put_attachment(
        session, application_id=app.id, material_code=material_code, kind="upload", filename=name,
        content_type=uploads.detected_type(data), size=len(data), sha256=digest, storage_key=key,
    )
    await repo.move(session, app, from_states=[app.status])  # touch updated_at: the application's ETag changes
    return att, drafts.etag(app.id, app.updated_at)


async def add_reference(session: AsyncSession, principal: Principal, application_id: str, *, material_code: str,
                        kind: str, reference: str | None, attachment_id: int | None,
                        statement: str | None) -> tuple[Attachment, str]:
    """A material without a file: a certificate number, a written commitment (告知承诺), or one reused from an
    earlier application of the applicant's."""
    app, item = await _editable_for_material(session, principal, application_id)
    material = drafts.requested_material(item.payload, material_code)
    if kind == "reuse":
        earlier = await repo.get_attachment(session, attachment_id) if attachment_id else None
        if earlier is None:
            raise invalid("attachment_id", "unknown_attachment", "Name an attachment of one of your applications.")
        await load_as_applicant(session, principal, earlier.application_id)
        drafts.reusable(earlier.kind)
        att = await repo.put_attachment(
            session, application_id=app.id, material_code=material_code, kind=earlier.kind,
            reference=earlier.reference, filename=earlier.filename, content_type=earlier.content_type,
            size=earlier.size, sha256=earlier.sha256, storage_key=earlier.storage_key,
            details={**(earlier.details or {}),
                     "reused_from": {"application_id": earlier.application_id, "attachment_id": earlier.id}},
        )
    elif kind == "commitment":
        att = await repo.put_attachment(
            session, application_id=app.id, material_code=material_code, kind="commitment",
            details={"statement": drafts.commitment_statement(material, statement),
                     "committed_by": principal.subject, "committed_at": utcnow().isoformat()},
        )
    else:
        att = await repo.put_attachment(
            session, application_id=app.id, material_code=material_code, kind="certificate_ref",
            reference=drafts.certificate_reference(material, reference),
            details={"certificate_type": material.get("certificate_type")},
        )
    await repo.move(session, app, from_states=[app.status])  # touch updated_at: the application's ETag changes
    return att, drafts.etag(app.id, app.updated_at)


async def uploaded_file(session: AsyncSession, principal: Principal, application_id: str, attachment_id: int, *,
                        files: FileStore) -> tuple[Attachment, bytes]:
    app = await load_visible(session, principal, application_id)
    att = await repo.get_attachment(session, attachment_id)
    if att is None or att.application_id != app.id or not att.storage_key:
        raise NotFound("No uploaded file with this id in this application.")
    return att, await files.get(att.storage_key)


# --- what datashare holds (the applicant is not asked for it) ------------------------------------------------------


async def fetch_held(db: Database, principal: Principal, application_id: str, source: Datashare) -> dict[str, str]:
    """Fetch from datashare what it holds for the materials not yet given, then attach it in a transaction of its
    own (so what was found stays attached even when the submission that follows is refused). Datashare is asked
    with no row locked; what a concurrent check attached meanwhile is kept, not attached twice. Returns the
    failures by material code, for the notice."""
    async with db.transaction() as session:
        app = await load_visible(session, principal, application_id)
        wanted = await _to_fetch(session, principal, app, await item_of(session, app))
        held = _Held.of(app)
    return await _fetch_and_attach(db, source, held, wanted)


@dataclass(frozen=True)
class _Held:
    """What datashare is asked by: the application and its holder."""

    application_id: str
    item_code: str
    item_version: int
    holder_id: str | None
    holder_kind: str

    @classmethod
    def of(cls, app: Application) -> _Held:
        return cls(app.id, app.item_code, app.item_version, app.applicant_holder_id, app.applicant_kind)


async def _to_fetch(session: AsyncSession, principal: Principal, app: Application, item: PublishedItem,
                    atts: Sequence[Attachment] | None = None) -> list[dict[str, Any]]:
    """The materials datashare is to be asked for now (none when the caller may not fetch). `atts`: the
    application's attachments, when the caller has read them."""
    # Datashare answers the holder's own token, or a window clerk handling the case (通办); other staff
    # checking a case do not fetch.
    if not (is_applicant(principal, app) or principal.has(WINDOW_CLERK)) or app.status not in EDITABLE:
        return []
    if is_applicant(principal, app) and assurance.shortfall(item.payload, principal.applicant_assurance_level):
        return []  # nothing is fetched for an applicant whose identity is not proven enough
    if not completeness.to_fetch(item.payload, []):
        return []  # the item asks datashare for nothing: no need to read what was given
    return completeness.to_fetch(item.payload, provided_of(atts if atts is not None
                                                           else await repo.attachments(session, app.id)))


async def _fetch_and_attach(db: Database, source: Datashare, held: _Held,
                            wanted: list[dict[str, Any]]) -> dict[str, str]:
    if not wanted:
        return {}
    results = await datashare.fetch(source.http, source.base_url, source.authorization, materials=wanted,
                                    application_id=held.application_id, item_code=held.item_code,
                                    item_version=held.item_version, holder_id=held.holder_id,
                                    holder_kind=held.holder_kind)
    async with db.transaction() as session:
        locked = await repo.get_application(session, held.application_id, for_update=True)
        if locked is None or locked.status not in EDITABLE:
            return {}
        app = locked
        # On SQLite the read above locks nothing: this compare-and-set (which leaves the row as it is) is the first
        # write, so it waits for a submission or a check running meanwhile and fails if the application left its
        # editable states; what is attached below is then read after that check's commit.
        if any(r.status == "found" for r in results) and not await repo.move(
                session, app, from_states=[s.value for s in EDITABLE], updated_at=app.updated_at):
            return {}
        given = {a.material_code for a in await repo.attachments(session, app.id)}
        failures: dict[str, str] = {}
        for r in results:
            if r.material_code in given:
                continue  # a concurrent check attached it meanwhile
            if r.status != "found":
                failures[r.material_code] = r.status
                continue
            await repo.put_attachment(session, application_id=app.id, material_code=r.material_code, kind="fetched",
                                      reference=r.reference, details=r.details or {})
            name = r.material_name or r.material_code
            await note(session, app, f"共享获取：{name}", unit=app.department, code="data_fetched",
                       purpose=f"办理“{app.item_name}”所需材料“{name}”，系统代为获取，申请人无需提交")
        return failures


async def _walk_in_findings(session: AsyncSession, app: Application) -> list[Finding]:
    """A walk-in (窗口代录) also needs the person's consent on record before it is submitted."""
    if app.channel != "window" or (row := await repo.walk_in(session, app.id)) is None:
        return []
    return [f] if (f := walkin.consent_finding(row.consent_kind)) else []


@dataclass
class MaterialState:
    code: str
    name: str
    necessity: str
    source: str | None
    provided: str | None
    reusable: dict[str, Any] | None


@dataclass
class CheckOutcome:
    application_id: str
    findings: list[Finding]
    materials: list[MaterialState]


async def check(db: Database, principal: Principal, application_id: str, source: Datashare) -> CheckOutcome:
    """The one-time notice (一次性告知): what datashare holds is fetched first, then every problem at once."""
    failures = await fetch_held(db, principal, application_id, source)
    async with db.transaction() as session:
        app = await load_visible(session, principal, application_id)
        item = await item_of(session, app)
        findings, atts = await completeness_findings(session, app, item, failures)
        if await repo.item_withdrawn_at(session, item.code, item.version) is not None:
            findings.insert(0, Finding("item_version", "item_withdrawn", "此事项版本已撤销，请按现行版本重新申请。"))
        if is_applicant(principal, app) and (
                low := assurance.shortfall(item.payload, principal.applicant_assurance_level)):
            findings.insert(0, Finding("applicant.assurance_level", "assurance_level_too_low", low.message))
        findings += await _walk_in_findings(session, app)
        if app.status in EDITABLE:
            await repo.move(session, app, from_states=[app.status], notice=[f.as_dict() for f in findings])
        kinds = {a.material_code: a.kind for a in atts}
        reusable: dict[str, dict[str, Any]] = {}
        missing = [m for m in completeness.materials_of(item.payload) if m["code"] not in kinds]
        if missing and is_applicant(principal, app):
            # The recent history is where a reusable material is; the full search is `GET /me/prefill`.
            earlier = await earlier_of(session, principal, exclude=app.id, limit=20)
            reusable = {r["material_code"]: r for r in match_materials({"materials": missing}, earlier)}
        return CheckOutcome(app.id, findings, [
            MaterialState(code=m["code"], name=m.get("name", m["code"]), necessity=m.get("necessity", "required"),
                          source=m.get("source"), provided=kinds.get(m["code"]), reusable=reusable.get(m["code"]))
            for m in completeness.materials_of(item.payload)])


# --- submission ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """What a submission's transaction reads first, under the application's lock."""

    app: Application
    item: PublishedItem
    withdrawn_at: datetime | None
    #: Its attachments, read with the lock.
    atts: Sequence[Attachment]
    #: The materials datashare is to be asked for before the application is handed in (mostly none).
    wanted: list[dict[str, Any]]


async def _locked_to_submit(session: AsyncSession, principal: Principal, application_id: str) -> Submission:
    """The application locked with its attachments, for who may submit it (the applicant, or the clerk who filed
    it for them) and whose assurance level reaches the item's: a refused applicant has nothing fetched or
    written."""
    locked, withdrawn_at, atts = await repo.application_to_submit(session, application_id)
    if locked is None:
        raise NotFound(NOT_FOUND)
    app = await load_as_applicant(session, principal, application_id, filing_clerk=True, found=locked)
    item = await item_of(session, app)
    refuse_if_assurance_too_low(item, await applicant_level(session, principal, app))
    return Submission(app, item, withdrawn_at, atts, await _to_fetch(session, principal, app, item, atts))


async def begin_submission(session: AsyncSession, principal: Principal, application_id: str) -> Submission:
    """A submission's first step, in its transaction. With nothing to ask datashare for, `submit` goes on in the
    same transaction (one transaction per submission); else the transaction ends here, `fetch_for_submission`
    asks datashare with no row locked, and `submit` begins again in a transaction of its own."""
    return await _locked_to_submit(session, principal, application_id)


async def fetch_for_submission(db: Database, source: Datashare, begun: Submission) -> dict[str, str]:
    """What datashare holds, attached in a transaction of its own; the failures by material code."""
    return await _fetch_and_attach(db, source, _Held.of(begun.app), begun.wanted)


async def submit(session: AsyncSession, principal: Principal, application_id: str, failures: dict[str, str], *,
                 begun: Submission | None = None) -> ApplicationView:
    """Submit: the transition, the assurance level, the version still published, completeness and (walk-in)
    consent; then the receipt number, `submitted`, the timeline and the event, in one transaction. `begun`: what
    `begin_submission` read in this same transaction."""
    if begun is None:
        begun = await _locked_to_submit(session, principal, application_id)
    app, item = begun.app, begun.item
    transition(app.status, Action.SUBMIT)
    refuse_if_withdrawn(item, begun.withdrawn_at)
    # The materials are read once, with the lock: for the check, the acceptance's event and the answer
    # (submitting adds none).
    findings, atts = await completeness_findings(session, app, item, failures, atts=begun.atts)
    findings += await _walk_in_findings(session, app)
    if findings:
        raise drafts.problems(findings, "一次性告知：申请材料或表单尚不齐全，请按下列各项补齐后再提交。")
    # Its timeline steps (submitted, and accepted where the item is fully online) in one insert.
    async with repo.steps_held(session):
        await hand_in(session, app, item, atts=atts)
    return await view(session, app, principal, item=item, atts=atts)


@dataclass(frozen=True)
class StageDispatch:
    """An application dispatched from a project's stage (统一分派): its project, stage and department's limit."""

    project_id: str
    stage_key: str
    limit_days: int


async def hand_in(session: AsyncSession, app: Application, item: PublishedItem, *, accept_by: Responder | None = None,
                  dispatch: StageDispatch | None = None, atts: Sequence[Attachment] | None = None) -> None:
    """Hand in a complete application: receipt number, `submitted`, and automatic acceptance where the item is
    fully online (or by `accept_by`: the centre's one acceptance of a project's stage). The caller has already
    run the check and refused an incomplete application (and passes the attachments it read, if it did)."""
    now = utcnow()
    first_time = app.receipt_number is None
    values: dict[str, Any] = {"status": Status.SUBMITTED.value, "submitted_at": now, "notice": []}
    if first_time:
        # Taken after every check: the serial commits apart (see `next_serial`), so only a failure of the
        # database or the process after this point leaves it unused.
        prefix = receipts.receipt_prefix(app.item_code, now)
        values["receipt_number"] = receipts.receipt_number(prefix, await repo.next_serial(session, prefix))
        values["verification_code"] = receipts.verification_code()
    by = accept_by or (SYSTEM if item.payload.get("fully_online") else None)
    if by is not None:
        await accept(session, app, item, by, dispatch=dispatch, atts=atts, handed_in=values)
        return
    if not await repo.move(session, app, from_states=sources(Action.SUBMIT), **values):
        raise Conflict("The application was submitted meanwhile.", slug="illegal-transition")
    await _handed_in(session, app, first_time=first_time, at=now, dispatch=dispatch)


async def _handed_in(session: AsyncSession, app: Application, *, first_time: bool, at: datetime,
                     dispatch: StageDispatch | None) -> None:
    """The submission's timeline step and event (`submitted`)."""
    await note(session, app, "提交申请" if first_time else "补正后重新提交", unit=app.service_point,
               status=Status.SUBMITTED.value)
    assert app.receipt_number is not None
    await publish(
        session, ev.SUBMITTED, subject=app.id,
        data=ev.Submitted(
            application_id=app.id, receipt_number=app.receipt_number, item_code=app.item_code,
            item_version=app.item_version, department=app.department, applicant=applicant_ref(app),
            channel=app.channel, service_point=app.service_point, submitted_at=at,
            project_id=dispatch.project_id if dispatch else None, stage_key=dispatch.stage_key if dispatch else None,
        ),
    )


# --- acceptance at the window --------------------------------------------------------------------------------------


def _material_refs(atts: Sequence[Attachment]) -> list[ev.MaterialRef]:
    """An upload's reference is where a reviewing department downloads it, with the hash to check it by."""
    out = []
    for a in atts:
        ref = a.reference
        if a.kind == "upload" or a.storage_key:
            ref = f"/intake/v1/applications/{a.application_id}/materials/{a.id}/file?sha256={a.sha256}"
        out.append(ev.MaterialRef(code=a.material_code, kind=a.kind, reference=ref))  # type: ignore[arg-type]
    return out


async def accept_application(session: AsyncSession, principal: Principal, application_id: str, *,
                             refuse_fee_exemption: str | None) -> ApplicationView:
    """受理 by a window clerk (首问负责); handed in while the version was published, it is handled under that
    version even if withdrawn since."""
    app = await load_as_clerk(session, principal, application_id, for_update=True)
    transition(app.status, Action.ACCEPT)
    item = await item_of(session, app)
    if refuse_fee_exemption and app.fee_exemption_state != "claimed":
        raise invalid("body.refuse_fee_exemption", "no_claim", "The applicant claimed no fee exemption.")
    await accept(session, app, item, responder(principal), refuse_exemption=refuse_fee_exemption)
    return await view(session, app, principal)


async def accept(session: AsyncSession, app: Application, item: PublishedItem, by: Responder, *,
                 refuse_exemption: str | None = None, dispatch: StageDispatch | None = None,
                 atts: Sequence[Attachment] | None = None, handed_in: dict[str, Any] | None = None) -> None:
    """受理: the clock starts; an immediate item (即办件) is decided on the spot. A claimed fee exemption is
    granted here unless the clerk refuses it (`refuse_exemption` gives the reason). With `handed_in` (the
    submission's values) the application is submitted and accepted in one compare-and-set, with both steps and
    both events as when they are apart."""
    now = utcnow()
    exemption: dict[str, Any] = {}
    if app.fee_exemption_state == "claimed":
        exemption["fee_exemption_state"] = "refused" if refuse_exemption else "granted"
    accepted = {"accepted_at": now, "first_responder": by.as_dict(), **exemption}
    if handed_in is not None:
        first_time = app.receipt_number is None
        if not await repo.move(session, app, from_states=sources(Action.SUBMIT),
                               **{**handed_in, **accepted, "status": Status.ACCEPTED.value}):
            raise Conflict("The application was submitted meanwhile.", slug="illegal-transition")
        await _handed_in(session, app, first_time=first_time, at=handed_in["submitted_at"], dispatch=dispatch)
    elif not await repo.move(session, app, from_states=sources(Action.ACCEPT), status=Status.ACCEPTED.value,
                             **accepted):
        raise Conflict("The application is no longer waiting for acceptance.", slug="illegal-transition")
    await note(session, app, "受理", unit=by.unit or app.service_point, staff_name=by.name, staff_contact=by.contact)
    if exemption:
        claimed = fees.exemptions(item.payload).get(app.fee_exemption or "") or {}
        granted = exemption["fee_exemption_state"] == "granted"
        await note(session, app, "收费减免：" + ("准予" if granted else "不予减免"), unit=by.unit or app.service_point,
                   staff_name=by.name, staff_contact=by.contact,
                   text=f"{claimed.get('name', app.fee_exemption)}（依据：{claimed.get('basis', '')}）"
                   + ("" if granted else f"；理由：{refuse_exemption}"))
    if atts is None:
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


async def not_accept(session: AsyncSession, principal: Principal, application_id: str, *, reasons: str,
                     legal_basis: str) -> ApplicationView:
    """不予受理, with reasons and the legal basis; the clerk is the first responder."""
    app = await load_as_clerk(session, principal, application_id, for_update=True)
    transition(app.status, Action.NOT_ACCEPT)
    by = responder(principal)
    now = utcnow()
    if not await repo.move(session, app, from_states=sources(Action.NOT_ACCEPT), status=Status.NOT_ACCEPTED.value,
                           first_responder=by.as_dict(), outcome="not_accepted", decided_at=now):
        raise Conflict("The application is no longer waiting for acceptance.", slug="illegal-transition")
    await note(session, app, "不予受理", unit=by.unit, staff_name=by.name, staff_contact=by.contact,
               text=f"{reasons}（依据：{legal_basis}）")
    assert app.receipt_number
    await publish(session, ev.NOT_ACCEPTED, subject=app.id, data=ev.NotAccepted(
        application_id=app.id, receipt_number=app.receipt_number, reasons=reasons, legal_basis=legal_basis, at=now))
    return await view(session, app, principal)


async def return_for_correction(session: AsyncSession, principal: Principal, application_id: str, *, reasons: str,
                                missing: list[dict[str, str]]) -> ApplicationView:
    """补正 before acceptance. The clerk's findings come on top of what the check finds, so the notice is
    complete at once."""
    app = await load_as_clerk(session, principal, application_id, for_update=True)
    transition(app.status, Action.RETURN)
    by = responder(principal)
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
    return await view(session, app, principal)


async def withdraw(session: AsyncSession, principal: Principal, application_id: str) -> ApplicationView:
    """撤回 by the applicant (or the filing clerk) before the decision."""
    app = await load_as_applicant(session, principal, application_id, for_update=True, filing_clerk=True)
    transition(app.status, Action.WITHDRAW)
    now = utcnow()
    if not await repo.move(session, app, from_states=sources(Action.WITHDRAW), status=Status.WITHDRAWN.value):
        raise Conflict("The application changed meanwhile.", slug="illegal-transition")
    await note(session, app, "申请人撤回", unit=app.service_point)
    if app.receipt_number:  # a draft was never announced
        await publish(session, ev.WITHDRAWN, subject=app.id, data=ev.Withdrawn(
            application_id=app.id, receipt_number=app.receipt_number, withdrawn_at=now))
    return await view(session, app, principal)


async def answer_correction(session: AsyncSession, principal: Principal, application_id: str, *,
                            note_text: str | None = None) -> ApplicationView:
    """The applicant answered a reviewing department's 补正: review resumes on the task that asked."""
    app = await load_as_applicant(session, principal, application_id, for_update=True)
    transition(app.status, Action.CORRECT)
    task_id = app.correction_task_id or ""
    now = utcnow()
    if not await repo.move(session, app, from_states=sources(Action.CORRECT), status=Status.IN_REVIEW.value,
                           notice=[], correction_task_id=None):
        raise Conflict("The application changed meanwhile.", slug="illegal-transition")
    await note(session, app, "申请人已补正", unit=app.department, text=note_text)
    assert app.receipt_number
    await publish(session, ev.CORRECTED, subject=app.id, data=ev.Corrected(
        application_id=app.id, receipt_number=app.receipt_number, task_id=task_id, corrected_at=now))
    return await view(session, app, principal)


# --- hand-over (统一窗口出件) -----------------------------------------------------------------------------------------


async def hand_over(session: AsyncSession, principal: Principal, application_id: str, *, method: str,
                    carrier: str | None, tracking_number: str | None) -> ApplicationView:
    """A clerk hands the result over at the chosen point, or records it posted."""
    app = await load_as_handing_clerk(session, principal, application_id)
    transition(app.status, Action.HAND_OVER)
    drafts.hand_over_check(chosen=app.delivery_method, method=method, carrier=carrier, tracking_number=tracking_number)
    await deliver(session, app, method=method, by=responder(principal), carrier=carrier,
                  tracking_number=tracking_number)
    return await view(session, app, principal)


async def deliver(session: AsyncSession, app: Application, *, method: str, by: Responder | None = None,
                  carrier: str | None = None, tracking_number: str | None = None, **also: Any) -> None:
    """The hand-over; `also`: other values of the application written with it (a certificate that arrived)."""
    post = {"delivery_carrier": carrier, "delivery_tracking": tracking_number} if method == "post" else {}
    if not await repo.move(
        session, app, from_states=sources(Action.DELIVER),
        status=Status.DELIVERED.value, delivered_at=utcnow(), **post, **also,
    ):
        raise Conflict("The result cannot be delivered in this state.", slug="illegal-transition")
    await delivered(session, app, method=method, by=by, carrier=carrier, tracking_number=tracking_number)


async def delivered(session: AsyncSession, app: Application, *, method: str, by: Responder | None = None,
                    carrier: str | None = None, tracking_number: str | None = None) -> None:
    """The hand-over is written (`deliver`, or a certificate's move of the case, `received`): its step and event."""
    assert app.delivered_at is not None
    cert = (app.result or {}).get("certificate_number")
    step = {"electronic": "电子证照送达" if cert else "结果电子送达", "pickup": "窗口领取", "post": "邮寄送达"}[method]
    await note(session, app, step, unit=by.unit if by else app.department, staff_name=by.name if by else None,
               staff_contact=by.contact if by else None,
               text=f"{carrier}，运单号 {tracking_number}" if method == "post" else None)
    assert app.receipt_number is not None
    await publish(
        session, ev.DELIVERED, subject=app.id,
        data=ev.Delivered(application_id=app.id, receipt_number=app.receipt_number, method=method,  # type: ignore[arg-type]
                          certificate_number=cert, delivered_at=app.delivered_at,
                          online=app.channel in ONLINE_CHANNELS),
    )


# --- after the decision: the result, the fee, and the hand-over (出件) -----------------------------------------


def result_document(app: Application, item: PublishedItem) -> dict[str, Any] | None:
    """An approval whose result is not a certificate, or a refusal, ends in a written result (办理结果通知书 /
    不予许可决定书) that intake issues under the receipt number; a certificate comes from datashare."""
    result = item.payload.get("result") or {}
    if app.outcome == "approved" and result.get("type") == "certificate" and result.get("certificate_type"):
        return None
    name = result.get("name") if app.outcome == "approved" else f"{app.item_name}不予许可决定书"
    return {"type": "document", "name": name or f"{app.item_name}办理结果通知书",
            "document_number": f"{app.receipt_number}-JG", "outcome": app.outcome,
            "issued_on": (app.decided_at or utcnow()).astimezone(CITY_TZ).date().isoformat()}


async def after_decision(session: AsyncSession, app: Application, item: PublishedItem) -> None:
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


async def confirm_payment(session: AsyncSession, *, payment_code: str, amount: str, paid_at: datetime,
                          transaction_id: str | None) -> str:
    """The payment platform confirmed: the notice is paid once (a second confirmation is `already_paid`), then
    the result goes on to its hand-over."""
    found = await repo.payment_notice_by_code(session, payment_code)
    if found is None:
        raise invalid("body.payment_code", "unknown_payment_code", "No payment notice has this payment code.")
    # The application first, then its notice: the order every event handler takes its locks in.
    app = await repo.get_application(session, found.application_id, for_update=True)
    notice = await repo.payment_notice_by_code(session, payment_code, for_update=True)
    assert app is not None and app.receipt_number and notice is not None
    if not fees.same_amount(amount, notice.amount):
        raise invalid("body.amount", "amount_mismatch", f"The notice asks for {notice.amount} yuan, not {amount}.")
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


async def hand_over_if_ready(session: AsyncSession, app: Application, item: PublishedItem, **also: Any) -> bool:
    """统一窗口出件: once decided, paid, and (for a certificate) issued — electronically at once; for pick-up
    the result joins the chosen point's collection queue; by post it waits for the clerk to send it. `also`:
    values of the application that change with the hand-over (and tell whether it is ready: a certificate that
    arrived), written by the same statement. False when nothing was written."""
    if app.status != Status.DECIDED:
        return False
    result = item.payload.get("result") or {}
    if (app.outcome == "approved" and result.get("type") == "certificate" and result.get("certificate_type")
            and not (also.get("result", app.result) or {}).get("certificate_number")):
        return False  # datashare's certificate.issued brings it
    if app.delivery_method == "electronic":
        await deliver(session, app, method="electronic", **also)
        return True
    if not await repo.move(session, app, from_states=[Status.DECIDED], status=Status.AWAITING_PICKUP.value,
                           ready_at=utcnow(), **also):
        return False
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
    return True


async def change_delivery(session: AsyncSession, principal: Principal, application_id: str, *, method: str,
                          point: str | None, address: str | None) -> ApplicationView:
    """The applicant changes where the result goes, until it is ready (then it is already on its way)."""
    app = await load_as_applicant(session, principal, application_id, for_update=True, filing_clerk=True)
    item = await item_of(session, app)
    point = (point or app.service_point) if method == "pickup" else None
    if app.status not in delivery.CHANGEABLE:
        raise Conflict("The result is ready or delivered; its delivery can no longer change.",
                       slug="delivery-fixed", status_now=app.status)
    findings = delivery.check_choice(item.payload, method=method, point=point, address=address)
    if findings:
        raise drafts.problems(findings)
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
    return await view(session, app, principal)


# --- visits ---------------------------------------------------------------------------------------------------------


async def record_visit(session: AsyncSession, principal: Principal, application_id: str, *, purpose: str,
                       service_point: str | None) -> Visit:
    """A visit the applicant made, recorded by a window clerk at their own point (通办: any point)."""
    point = access_rules.visit_point(principal, service_point)
    app = await repo.get_application(session, application_id)
    if app is None:
        raise NotFound(NOT_FOUND)
    visit = await repo.add_visit(session, application_id=app.id, service_point=point, purpose=purpose,
                                 recorded_by=principal.subject)
    await publish(session, ev.VISIT_RECORDED, subject=app.id, data=ev.VisitRecorded(
        application_id=app.id, service_point=point, purpose=purpose, at=visit.at))
    return visit


async def visits(session: AsyncSession, principal: Principal, application_id: str) -> Sequence[Visit]:
    app = await load_visible(session, principal, application_id)
    return await repo.visits(session, app.id)
