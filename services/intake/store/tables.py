"""Tables of the intake service (its database alone; no other service reads them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import make_metadata
from shared.messaging import define_messaging_tables
from shared.types import BigIntPK, UTCDateTime


class Base(DeclarativeBase):
    metadata = make_metadata()


messaging = define_messaging_tables(Base.metadata)


class ItemVersion(Base):
    """A published catalog item version (事项版本), kept exactly as catalog published it; never overwritten."""

    __tablename__ = "item_version"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    department: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Department(Base):
    """Unit names from catalog (departments and service points), to show the handling unit by name in timelines."""

    __tablename__ = "department"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    #: A department's public phone, shown on its steps until a handler is named (谁在办).
    phone: Mapped[str | None] = mapped_column(String(50), nullable=True)


class Delegation(Base):
    """A delegation (委托代办) as identity announced it, to hold tokens acting under it to its items and term."""

    __tablename__ = "delegation"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal_kind: Mapped[str] = mapped_column(String(16))
    principal_id: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str] = mapped_column(String(64))
    items: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Application(Base):
    """An application (办件) against one exact item version."""

    __tablename__ = "application"
    __table_args__ = (
        Index("ix_application_applicant", "applicant_id", "created_at", "id"),
        Index("ix_application_point_status", "service_point", "status"),
        Index("ix_application_department_status", "department", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_code: Mapped[str] = mapped_column(String(64))
    item_version: Mapped[int] = mapped_column(Integer)
    item_name: Mapped[str] = mapped_column(String(300))
    department: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    applicant_kind: Mapped[str] = mapped_column(String(16))
    applicant_id: Mapped[str] = mapped_column(String(64))
    applicant_holder_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    applicant_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    service_point: Mapped[str] = mapped_column(String(64))
    form: Mapped[dict[str, Any]] = mapped_column(JSON)
    delivery_method: Mapped[str] = mapped_column(String(16))
    delivery_point: Mapped[str | None] = mapped_column(String(64), nullable=True)
    delivery_address: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: By post (邮寄): the carrier and tracking number the clerk records when handing the result over.
    delivery_carrier: Mapped[str | None] = mapped_column(String(100), nullable=True)
    delivery_tracking: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: A fee exemption (减免) the applicant claims, by the code the item lists, and what became of the claim:
    #: `claimed`, then `granted` at acceptance unless the accepting clerk `refused` it.
    fee_exemption: Mapped[str | None] = mapped_column(String(40), nullable=True)
    fee_exemption_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: When the result became ready to hand over (awaiting pick-up or post); the delivery choice is fixed then.
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    receipt_number: Mapped[str | None] = mapped_column(String(80), nullable=True, unique=True)
    verification_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    #: The latest one-time notice (一次性告知): every problem found at once.
    notice: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    first_responder: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    correction_task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    copied_from: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: Wrong verification codes in the current window of the public status query (against guessing the code).
    status_query_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status_query_window_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PaymentNotice(Base):
    """A payment notice (缴款通知) for an approved item with a fee: the applicant pays by its payment code on the
    payment platform, which confirms by a signed notification. Delivery waits for it."""

    __tablename__ = "payment_notice"
    __table_args__ = (Index("ix_payment_notice_status", "status", "requested_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("application.id"), unique=True)
    payment_code: Mapped[str] = mapped_column(String(32), unique=True)
    #: Yuan as a decimal string ("20.00"): money is never a float.
    amount: Mapped[str] = mapped_column(String(20))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # unpaid | paid
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    transaction_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PaymentNotification(Base):
    """Every signed notification the payment platform sent, by its `webhook-id`: a second delivery of one is
    answered as a duplicate and applies nothing."""

    __tablename__ = "payment_notification"

    webhook_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    payment_code: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Attachment(Base):
    """One material of an application: an uploaded file, a certificate number, a commitment or a fetched record."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("application.id"), index=True)
    material_code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    storage_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: For a commitment (告知承诺): the department's post-verification, `kept` or `broken`; NULL while it is due.
    verification: Mapped[str | None] = mapped_column(String(16), nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TimelineEntry(Base):
    """One step of an application's progress (事中告知), shown to the applicant."""

    __tablename__ = "timeline_entry"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("application.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    staff_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    staff_contact: Mapped[str | None] = mapped_column(String(200), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: A stable machine name of the step (domain/timeline.py); null on rows written before it existed.
    code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: Where the step is a read of someone's data (共享获取), why it was read.
    purpose: Mapped[str | None] = mapped_column(String(300), nullable=True)


class ReceiptCounter(Base):
    """The last serial handed out per item and day, so receipt numbers are unique and dense."""

    __tablename__ = "receipt_counter"

    prefix: Mapped[str] = mapped_column(String(80), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class Visit(Base):
    """An on-site visit the applicant made for an application (for the "at most one visit" figure)."""

    __tablename__ = "visit"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("application.id"), index=True)
    service_point: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(200))
    recorded_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class AppointmentSlot(Base):
    """A bookable time at a service point for one item (预约办理); `booked` never exceeds `capacity`."""

    __tablename__ = "appointment_slot"
    __table_args__ = (UniqueConstraint("service_point", "item_code", "starts_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    service_point: Mapped[str] = mapped_column(String(64))
    item_code: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer)


class Appointment(Base):
    __tablename__ = "appointment"
    #: `active_holder` is the applicant while the booking stands and NULL once cancelled, so one person holds
    #: at most one live booking per slot.
    __table_args__ = (UniqueConstraint("slot_id", "active_holder"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("appointment_slot.id"), index=True)
    applicant_id: Mapped[str] = mapped_column(String(64), index=True)
    active_holder: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Consultation(Base):
    """A question on an item or an application (咨询), answered by the owning department."""

    __tablename__ = "consultation"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    asker_id: Mapped[str] = mapped_column(String(64), index=True)
    item_code: Mapped[str] = mapped_column(String(64))
    application_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WalkIn(Base):
    """An application a window clerk filed for the person at the counter (窗口代录, 帮办代办): who the person is as
    identity answered the clerk (account id, level 3 after the card check, whether the account was opened now and
    the one-time claim code for the slip), which clerk at which point, and the person's consent (申请人签字确认):
    a scanned signed slip, or the reference of a signature captured on the counter's pad."""

    __tablename__ = "walk_in"

    application_id: Mapped[str] = mapped_column(ForeignKey("application.id"), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    assurance_level: Mapped[int] = mapped_column(Integer)
    account_created: Mapped[bool] = mapped_column(Boolean)
    #: Printed on the receipt slip so the person can claim the account online; shown to window clerks only (as
    #: the verification code is), and worthless once claimed (identity voids it).
    claim_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    clerk_id: Mapped[str] = mapped_column(String(64))
    clerk_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    service_point: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: `signed_slip` (an uploaded scan) or `signature_capture` (a signature pad's reference).
    consent_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)
    consent_reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    consent_filename: Mapped[str | None] = mapped_column(String(200), nullable=True)
    consent_content_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    consent_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    consent_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    consent_storage_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    consent_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


# --- enterprise investment projects (issue 17) --------------------------------------------------------------------


class ProjectType(Base):
    """A project type with its ordered stages, as catalog publishes it (kept whole, replaced on republication)."""

    __tablename__ = "project_type"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Project(Base):
    """A project (企业投资项目) registered by an organisation; its stages are the type's as they were then."""

    __tablename__ = "project"
    __table_args__ = (Index("ix_project_owner", "owner_id", "registered_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_code: Mapped[str] = mapped_column(String(24), unique=True)
    type_key: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    site: Mapped[str] = mapped_column(String(300))
    land_area_m2: Mapped[str] = mapped_column(String(32))
    total_investment_wan: Mapped[str] = mapped_column(String(32))
    industry_code: Mapped[str] = mapped_column(String(8))
    #: Permitted-with-conditions entries of the negative list the project matched (their conditions attached).
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: The project type's stages as they were at registration.
    stages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ProjectStage(Base):
    """One stage application (一表申请) of a project: the form and materials gathered once, accepted once."""

    __tablename__ = "project_stage"

    project_id: Mapped[str] = mapped_column(ForeignKey("project.id"), primary_key=True)
    stage_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    form: Mapped[dict[str, Any]] = mapped_column(JSON)
    materials: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_by: Mapped[str] = mapped_column(String(64))
    due_on: Mapped[date] = mapped_column(Date)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ProjectApplication(Base):
    """An ordinary application dispatched (统一分派) from a stage, with its department's own limit there."""

    __tablename__ = "project_application"
    __table_args__ = (Index("ix_project_application_stage", "project_id", "stage_key"),)

    application_id: Mapped[str] = mapped_column(ForeignKey("application.id"), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("project.id"))
    stage_key: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(64))
    limit_days: Mapped[int] = mapped_column(Integer)
    due_on: Mapped[date] = mapped_column(Date)


class PublicStatusRow(Base):
    """The public status of a receipt (办件进度查询) as the route serves it: the JSON body rendered when the
    application or its timeline last changed, in that same transaction (`store/public_status.py`), so the most
    frequent public read is one primary-key lookup with no join and no rendering."""

    __tablename__ = "public_status"

    receipt_number: Mapped[str] = mapped_column(String(80), primary_key=True)
    application_id: Mapped[str] = mapped_column(String(32))
    verification_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    body: Mapped[str] = mapped_column(Text)
