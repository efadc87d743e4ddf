"""Request and response models of the intake API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from services.intake.domain.lifecycle import Status
from shared.bounds import BoundedInstant


def _plain(value: str) -> str:
    # A NUL or other control character cannot be stored in a PostgreSQL text column: refuse it by name.
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise PydanticCustomError("control_character", "Control characters are not allowed.")
    return value


#: Codes of items, materials, service points, departments and accounts: letters, digits, `-`, `_`, `.`.
Code = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z_.\-]{0,63}$")]
PlainText = Annotated[str, AfterValidator(_plain)]
ApplicationId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The application's id (32 hex digits).")]
RowId = Annotated[int, Path(ge=1, le=2**53)]

#: An instant with its offset, in the platform's years (shared.bounds).
AwareInstant = Annotated[(AwareDatetime, *BoundedInstant.__metadata__)]  # type: ignore[valid-type]

Channel = Literal["online", "mobile", "kiosk", "window", "post"]
DeliveryMethod = Literal["electronic", "pickup", "post"]
ApplicantKind = Literal["person", "organisation"]
#: How a material is given: a file, a certificate number, a written commitment (告知承诺), or fetched from datashare.
MaterialKind = Literal["upload", "certificate_ref", "commitment", "fetched"]
Necessity = Literal["required", "optional", "conditional", "may_follow"]
Outcome = Literal["approved", "rejected", "not_accepted"]

#: Examples use the demo catalogue (services/catalog/demo/items.py): 食品经营许可 and 居民身份证申领.
FOOD_PERMIT_ITEM = "11441781MB0000001A4010000030000"
ID_CARD_ITEM = "11441781MB0000005N4070000020000"


class ApplicationCreate(BaseModel):
    """A new draft application (办件草稿) against the item's current published version."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "item_code": FOOD_PERMIT_ITEM, "channel": "online", "service_point": "LD-CENTRE",
            "form": {"business_name": "罗城小厨", "business_address": "罗定市罗城街道兴华路1号",
                     "business_scope": "热食类食品制售", "phone": "13800138000"},
            "delivery": {"method": "electronic"},
        }]},
    )

    item_code: Code
    channel: Channel
    service_point: Code = Field(description="Where it is handed in (通办: any point the item allows).")
    form: dict[str, Any] = Field(
        default_factory=dict, max_length=200,
        description="Values of the item's form fields by name; unknown names, over-long values (by field type) "
                    "and forms over 64 KB are refused (422). Types are checked by `/check` and at submit.",
    )
    on_behalf_of: Code | None = Field(
        default=None,
        description="Credit code (`org`) or account id (`act.sub`) of the principal applied for; defaults to it.",
    )
    delivery: Delivery | None = None
    fee_exemption: ExemptionCode | None = Field(
        default=None, description="Claim a fee exemption (减免) by the code the item's guide lists under "
        "`fees.items[].exemptions`; the accepting clerk grants it unless they refuse it with a reason.")


ExemptionCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class Delivery(BaseModel):
    """Where the result goes (出件): `electronic`; `pickup` at any point the item's guide lists under
    `collect_at` (异地领取: not necessarily where it was handed in); or `post` to an address."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"method": "pickup", "service_point": "LD-LC"}, {"method": "post", "address": "罗定市罗城街道兴华路1号 张三 13800138000"}]})

    method: DeliveryMethod = "electronic"
    service_point: Code | None = Field(default=None, description="Pick-up point (for `pickup`); defaults to where "
                                       "the application is handed in.")
    address: PlainText | None = Field(default=None, max_length=500, description="Postal address (for `post`).")


class DeliveryRead(BaseModel):
    method: DeliveryMethod
    service_point: str | None = None
    service_point_name: str | None = None
    address: str | None = None
    carrier: str | None = Field(default=None, description="By post: the carrier the clerk recorded.")
    tracking_number: str | None = Field(default=None, description="By post: the tracking number.")
    changeable: bool = Field(description="True until the result is ready (`PUT …/delivery` changes it).")
    ready_at: datetime | None = None


class FeeLine(BaseModel):
    """One fee item of the notice, with the amount owed after any exemption granted."""

    name: str | None = None
    standard: str | None = None
    basis: str | None = None
    amount: str = Field(description="Yuan, a decimal string.")
    exempted: bool = False


class PaymentRead(BaseModel):
    """The payment notice (缴款通知): pay `amount` yuan with `payment_code` on the payment platform by `due_on`."""

    payment_code: str
    amount: str = Field(description="Yuan, a decimal string.")
    items: list[FeeLine]
    due_on: date
    status: Literal["unpaid", "paid"]
    requested_at: datetime
    paid_at: datetime | None = None


class FeeExemptionRead(BaseModel):
    code: str
    name: str | None = None
    basis: str | None = None
    state: Literal["claimed", "granted", "refused"]


class ApplicationUpdate(BaseModel):
    """Change a draft's form (fields given replace those kept) or delivery choice."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"form": {"business_name": "罗城小厨"}}]})

    form: dict[str, Any] | None = Field(
        default=None, max_length=200,
        description="Fields given replace those kept, a null clears one; the merged form is checked like on create.",
    )
    delivery: Delivery | None = None
    fee_exemption: ExemptionCode | None = Field(default=None, description="Claim a listed fee exemption (减免).")


class MaterialReference(BaseModel):
    """A material given without a file: a certificate number, or a written commitment (告知承诺)."""

    model_config = ConfigDict(
        extra="forbid",
        # The licence of 李明's shop (the identity examples' 罗定市一味餐饮店), then his commitment (which the
        # commitment verification example verifies).
        json_schema_extra={"examples": [
            {"material_code": "business_licence", "kind": "certificate_ref", "reference": "92445381MA4W00000P"},
            {"material_code": "food_safety_commitment", "kind": "commitment", "statement": "本人承诺食品安全自查属实。"},
        ]},
    )

    material_code: Code
    kind: Literal["certificate_ref", "commitment", "reuse"]
    reference: PlainText | None = Field(default=None, max_length=200)
    attachment_id: int | None = Field(default=None, ge=1, le=2**53, description="For `reuse`: an attachment of my earlier application.")
    statement: PlainText | None = Field(default=None, max_length=2000)


class AttachmentRead(BaseModel):
    id: int
    material_code: str
    kind: MaterialKind
    reference: str | None = None
    filename: str | None = None
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    created_at: datetime


class TimelineRead(BaseModel):
    """One step, in time order: what happened, which unit holds it, who handles it and how to reach them."""

    at: datetime
    status: Status = Field(description="The application's state when the step was recorded.")
    step: str
    code: str = Field(description="Stable machine name of the step (submitted, accepted, task_assigned, "
                                   "task_approved, correction_requested, approved, certificate_issued, "
                                   "data_fetched, delivered_electronic…; `other` if unknown).")
    unit: str | None = Field(default=None, description="Code of the department or service point holding the step.")
    unit_name: str | None = None
    staff_name: str | None = Field(default=None, description="The handler (谁在办), from assignment on.")
    staff_contact: str | None = Field(default=None, description="The handler's office phone.")
    note: str | None = None
    purpose: str | None = Field(default=None, description="For a read of data (data_fetched): why it was read.")


class Problem(BaseModel):
    field: str
    rule: str
    message: str


class ProblemIn(BaseModel):
    """One thing a clerk found missing or wrong."""

    model_config = ConfigDict(extra="forbid")

    field: PlainText = Field(min_length=1, max_length=200)
    rule: PlainText = Field(min_length=1, max_length=100)
    message: PlainText = Field(min_length=1, max_length=1000)


class ApplicantRead(BaseModel):
    kind: ApplicantKind
    id: str
    holder_id: str | None = None
    name: str | None = None
    agent_id: str | None = None


class ResponderRead(BaseModel):
    """Who accepted or refused it at the window (首问负责), or `system` for automatic acceptance."""

    id: str
    name: str | None = None
    unit: str | None = None
    contact: str | None = None


class ResultRead(BaseModel):
    """The result of the decision: a written result intake issues (`document_number`) or the certificate
    datashare issued (`certificate_number`)."""

    model_config = ConfigDict(extra="allow")

    type: str | None = Field(default=None, description="`document` for a written result.")
    name: str | None = None
    document_number: str | None = None
    outcome: Outcome | None = None
    issued_on: date | None = None
    certificate_number: str | None = None
    type_code: str | None = None
    type_name: str | None = None
    valid_until: date | None = None
    issuer_department: str | None = None
    received_at: datetime | None = None


class ApplicationRead(BaseModel):
    id: str
    status: Status
    item_code: str
    item_version: int
    item_name: str
    department: str
    applicant: ApplicantRead
    channel: Channel
    service_point: str
    form: dict[str, Any] = Field(description="The form's values by the item's field names.")
    delivery: DeliveryRead
    fee_exemption: FeeExemptionRead | None = None
    payment: PaymentRead | None = Field(default=None, description="The payment notice, once the fee is due.")
    receipt_number: str | None = None
    verification_code: str | None = Field(default=None, description="Shown to the applicant only.")
    notice: list[Problem] = Field(default_factory=list, description="The latest one-time notice (一次性告知).")
    first_responder: ResponderRead | None = None
    outcome: Outcome | None = None
    result: ResultRead | None = None
    copied_from: str | None = None
    materials: list[AttachmentRead] = Field(default_factory=list)
    timeline: list[TimelineRead] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime = Field(description="Last change; the `ETag` changes with it.")
    submitted_at: datetime | None = None
    accepted_at: datetime | None = None
    decided_at: datetime | None = None
    delivered_at: datetime | None = None
    walk_in: WalkInFiling | None = Field(default=None, description="Filed by a window clerk for the person at "
                                         "the counter (窗口代录): who filed it where, and the person's consent.")


class ConsentRead(BaseModel):
    kind: Literal["signed_slip", "signature_capture"]
    reference: str | None = Field(default=None, description="A signature capture's reference.")
    filename: str | None = Field(default=None, description="A signed slip's file name (download it at "
                                 "`GET /applications/{id}/consent/file`).")
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    recorded_at: datetime
    recorded_by: str


class WalkInFiling(BaseModel):
    clerk_name: str | None
    service_point: str
    filed_at: datetime
    account_created: bool = Field(description="The person had no account; identity opened one at the counter.")
    consent: ConsentRead | None = None


class WalkInPerson(BaseModel):
    """The person at the counter, as the clerk reads the ID card (居民身份证)."""

    model_config = ConfigDict(extra="forbid")

    id_number: Annotated[str, StringConstraints(max_length=64)] = Field(description="The number on the card.")
    name: Annotated[PlainText, StringConstraints(min_length=1, max_length=100)] = Field(
        description="The name on the card.")
    phone: Annotated[str, StringConstraints(max_length=32)] = Field(
        description="A mobile number to reach the person about the case.")
    document: Literal["resident_id_card", "temporary_resident_id_card"] = "resident_id_card"


class WalkInCreate(BaseModel):
    """A clerk files for the person at the window (窗口代录). The point is the clerk's own (staff record)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "person": {"id_number": "440100195203041233", "name": "黄伯", "phone": "13712345678"},
            "item_code": ID_CARD_ITEM,
            "form": {"applicant_name": "黄伯", "phone": "13712345678"},
            "delivery": {"method": "pickup", "service_point": "LD-LC"},
        }]},
    )

    person: WalkInPerson
    item_code: Code
    form: dict[str, Any] = Field(default_factory=dict, max_length=200, description="As `POST /applications`.")
    delivery: Delivery | None = None
    fee_exemption: ExemptionCode | None = None


class WalkInPersonRead(BaseModel):
    id: str = Field(description="The person's account id (the applicant id).")
    name: str
    assurance_level: int = Field(description="3: the clerk checked the ID card.")
    account_created: bool = Field(description="True when the person had no account and identity opened one.")
    claim_code: str | None = Field(default=None, description="For an account not yet claimed: the one-time code "
                                   "the person claims it with online (`POST /identity/v1/people/claims`); printed "
                                   "on the receipt slip.")
    claim_expires_at: datetime | None = None


class WalkInRead(BaseModel):
    application: ApplicationRead
    person: WalkInPersonRead


class SignatureCapture(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "signature_capture", "reference": "SIGPAD-LD-CENTRE-03/20261130-0042"}]})

    kind: Literal["signature_capture"]
    reference: Annotated[PlainText, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The counter's signature pad's record of the person's signature.")


class ApplicationSummary(BaseModel):
    id: str
    status: Status
    item_code: str
    item_name: str
    receipt_number: str | None = None
    service_point: str
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None = Field(
        default=None, description="When it was handed in: the start of a window clerk's acceptance clock.")


class PrefillMaterial(BaseModel):
    material_code: str
    from_application_id: str
    from_material_code: str
    kind: MaterialKind
    reference: str | None = None
    attachment_id: int
    matched_by: Literal["code", "certificate_type", "name"]


class MaterialStatus(BaseModel):
    code: str
    name: str
    necessity: Necessity
    source: str | None = None
    provided: MaterialKind | None = Field(default=None, description="How it is provided: upload, certificate_ref, commitment, fetched.")
    reusable: PrefillMaterial | None = Field(
        default=None, description="Not yet given here, but an earlier application of mine holds it: reuse it with "
        "`{\"kind\": \"reuse\", \"attachment_id\": …}` instead of uploading again.")


class CheckResult(BaseModel):
    """The one-time notice (一次性告知): every problem at once, each with the rule it breaks."""

    application_id: str
    complete: bool
    problems: list[Problem]
    materials: list[MaterialStatus]


class Decision(BaseModel):
    """Not accepting (不予受理) needs reasons and the legal basis."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reasons": "申请事项不属于本机关职权范围。", "legal_basis": "《中华人民共和国行政许可法》第三十二条第一款第（二）项"}]})

    reasons: PlainText = Field(min_length=1, max_length=2000)
    legal_basis: PlainText = Field(min_length=1, max_length=1000)


class ReturnForCorrection(BaseModel):
    """Returning for correction (补正) before acceptance, with the full list of what is missing."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reasons": "材料不齐全", "missing": [{"field": "materials.floor_plan", "rule": "illegible",
                                           "message": "经营场所平面布局图不清晰"}]}]})

    reasons: PlainText = Field(min_length=1, max_length=2000)
    missing: list[ProblemIn] = Field(default_factory=list)


class CorrectionAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: PlainText | None = Field(default=None, max_length=2000)


class DeliverRequest(BaseModel):
    """Hand the result over: at the counter of the chosen point, or by post with the carrier and tracking
    number (邮寄)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"method": "pickup"}, {"method": "post", "carrier": "中国邮政EMS", "tracking_number": "1171234567890"}]})

    method: Literal["pickup", "post"]
    carrier: PlainText | None = Field(default=None, min_length=1, max_length=100, description="For `post`.")
    tracking_number: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z-]{4,40}$")] | None = Field(
        default=None, description="For `post`.")


class AcceptRequest(BaseModel):
    """Optional at acceptance: refuse the fee exemption the applicant claimed, with the reason."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"refuse_fee_exemption": "户口簿显示此前已申领过居民身份证，不属首次申领。"}]})

    refuse_fee_exemption: PlainText | None = Field(default=None, min_length=1, max_length=1000)


class CollectionRead(BaseModel):
    """A result waiting at a point (出件): for the applicant to collect, or for the clerk to post."""

    application_id: str
    receipt_number: str | None
    item_name: str
    applicant_name: str | None
    method: Literal["pickup", "post"]
    service_point: str
    handed_in_at: str = Field(description="The point where it was handed in (it differs for 异地领取).")
    result: ResultRead | None = None
    ready_at: datetime | None = None


class UnpaidRead(BaseModel):
    application_id: str
    receipt_number: str | None
    item_name: str
    applicant_name: str | None
    service_point: str
    payment_code: str
    amount: str
    due_on: date
    overdue: bool = Field(description="Past `due_on` (Asia/Shanghai) and still unpaid: a case to chase.")
    requested_at: datetime


class PaymentNotificationIn(BaseModel):
    """The payment platform's confirmation (signed per Standard Webhooks)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "payment_code": "44171234567890123456", "amount": "20.00", "paid_at": "2026-11-30T10:00:00+08:00",
        "transaction_id": "PAY-0001"}]})

    payment_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{20}$")]
    amount: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}(\.[0-9]{1,2})?$")]
    paid_at: AwareInstant = Field(description="With its offset, e.g. 2026-11-30T10:00:00+08:00.")
    transaction_id: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z_.-]{1,64}$")] | None = None


class PaymentNotificationAck(BaseModel):
    status: Literal["paid", "already_paid", "duplicate"]


class VisitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"purpose": "提交纸质原件核验"}]})

    purpose: PlainText = Field(min_length=1, max_length=200)
    service_point: Code | None = Field(default=None, description="Always the clerk's own point (from the staff record); another is refused.")


class VisitRead(BaseModel):
    id: int
    application_id: str
    service_point: str
    purpose: str
    at: datetime


class PublicStep(BaseModel):
    """A step as anyone with the receipt number sees it: units, never people."""

    at: datetime
    status: Status
    step: str
    code: str
    unit: str | None = None
    unit_name: str | None = None


class PublicStatus(BaseModel):
    """What anyone with the receipt number and code may see: no personal data."""

    receipt_number: str
    status: Status
    item_name: str
    handling_unit: str
    handling_unit_name: str | None = None
    timeline: list[PublicStep]


class Prefill(BaseModel):
    item_code: str
    item_version: int
    form: dict[str, Any]
    materials: list[PrefillMaterial]


class CopyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel | None = None
    service_point: Code | None = None


class SlotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "service_point": "LD-CENTRE", "item_code": FOOD_PERMIT_ITEM,
        "starts_at": "2027-03-01T09:00:00+08:00", "capacity": 3}]})

    service_point: Code
    item_code: Code
    starts_at: BoundedInstant
    capacity: int = Field(ge=1, le=1000)


class SlotRead(BaseModel):
    id: int
    service_point: str
    item_code: str
    starts_at: datetime
    capacity: int
    booked: int


class AppointmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"slot_id": 1}]})

    slot_id: int = Field(ge=1, le=2**53)


class AppointmentRead(BaseModel):
    id: int
    slot_id: int
    status: Literal["booked", "cancelled"]
    service_point: str | None = None
    item_code: str | None = None
    starts_at: datetime | None = None
    created_at: datetime
    cancelled_at: datetime | None = None


class ConsultationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "item_code": FOOD_PERMIT_ITEM, "question": "个体户开办餐饮店，是否需要先办营业执照？"}]})

    item_code: Code | None = None
    application_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    question: PlainText = Field(min_length=1, max_length=4000)


class ConsultationAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: PlainText = Field(min_length=1, max_length=4000)


class ConsultationRead(BaseModel):
    id: int
    item_code: str
    application_id: str | None = None
    department: str
    question: str
    answer: str | None = None
    answered_by: str | None = None
    created_at: datetime
    answered_at: datetime | None = None


class Awaiting(BaseModel):
    """What awaits me: drafts to finish, corrections to answer, results to collect."""

    items: list[ApplicationSummary]


ApplicationCreate.model_rebuild()


class CommitmentRead(BaseModel):
    """A written commitment (告知承诺) accepted instead of proof: the department verifies it afterwards."""

    attachment_id: int
    application_id: str
    receipt_number: str | None = None
    item_code: str
    material_code: str
    applicant_id: str
    statement: str | None = None
    committed_at: datetime
    verification: Literal["kept", "broken"] | None = Field(
        default=None, description="`kept` or `broken`; null while verification is due.")
    verified_at: datetime | None = None


class CommitmentVerification(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"outcome": "kept", "note": "现场核查属实"}]})

    outcome: Literal["kept", "broken"]
    note: PlainText | None = Field(default=None, max_length=2000)


ApplicationRead.model_rebuild()
