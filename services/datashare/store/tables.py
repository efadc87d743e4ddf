"""Tables of the datashare service (its database alone; no other service reads them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import make_metadata
from shared.messaging import define_messaging_tables
from shared.types import BigIntPK, UTCDateTime


class Base(DeclarativeBase):
    metadata = make_metadata()


messaging = define_messaging_tables(Base.metadata)


class CertificateType(Base):
    """A type in the certificate directory (电子证照目录)."""

    __tablename__ = "certificate_type"

    code: Mapped[str] = mapped_column(String(21), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    issuer_department: Mapped[str] = mapped_column(String(40))
    issuer_credit_code: Mapped[str] = mapped_column(String(18))
    field_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    validity_years: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: How many serials were handed out; incremented under a row lock so concurrent issues never collide.
    last_serial: Mapped[int] = mapped_column(Integer, default=0)
    #: The key of the permutation that turns that count into the printed serial (not enumerable).
    serial_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SigningKey(Base):
    """Ed25519 key that signs certificates; the newest active one signs, every one still verifies."""

    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    private_key: Mapped[str] = mapped_column(Text)
    public_key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Certificate(Base):
    """An electronic certificate (电子证照)."""

    __tablename__ = "certificate"
    __table_args__ = (
        UniqueConstraint("type_code", "serial"),
        # One certificate per application and type: the automatic issue is idempotent beyond the inbox.
        UniqueConstraint("application_id", "type_code"),
        Index("ix_certificate_holder", "holder_id", "type_code"),
    )

    number: Mapped[str] = mapped_column(String(40), primary_key=True)
    identifier: Mapped[str] = mapped_column(String(100), unique=True)
    type_code: Mapped[str] = mapped_column(String(21))
    serial: Mapped[int] = mapped_column(Integer)
    holder_id: Mapped[str] = mapped_column(String(18))
    holder_kind: Mapped[str] = mapped_column(String(3))
    holder_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    issuer_department: Mapped[str] = mapped_column(String(40))
    issuer_credit_code: Mapped[str] = mapped_column(String(18))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_on: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    application_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="valid")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    signature: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str] = mapped_column(String(40))
    #: 核验码: printed beside the number; the public verification proves a presented copy with it.
    verification_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    issued_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PublishedItem(Base):
    """Datashare's copy of a published catalogue item: its materials say which sources each may read."""

    __tablename__ = "published_item"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    department: Mapped[str] = mapped_column(String(40))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Department(Base):
    """Catalog's departments as `catalog.department.upserted` announces them: the issuer's credit code."""

    __tablename__ = "department"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str | None] = mapped_column(String(18), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PopulationRecord(Base):
    """A person in the population registry (人口库)."""

    __tablename__ = "population_record"

    id_number: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(40))


class LegalPersonRecord(Base):
    """An organisation in the legal-person registry (法人库)."""

    __tablename__ = "legal_person_record"

    credit_code: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(40))


class AccessLogEntry(Base):
    """One read of personal data, chained to the previous one by hash. Rows are only ever inserted."""

    __tablename__ = "access_log_entry"
    __table_args__ = (
        Index("ix_access_log_entry_holder", "holder_id", "seq"),
        Index("ix_access_log_entry_department", "accessor_department", "seq"),
        Index("ix_access_log_entry_accessor", "accessor_subject", "recorded_at"),
    )

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accessor_subject: Mapped[str] = mapped_column(String(120))
    accessor_kind: Mapped[str] = mapped_column(String(40))
    accessor_department: Mapped[str | None] = mapped_column(String(40), nullable=True)
    service: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(200))
    holder_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    application_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    item_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    material_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: 用证事由: the reason a verifier or reader stated, when there is no application.
    purpose: Mapped[str | None] = mapped_column(String(200), nullable=True)
    fields: Mapped[list[str]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(40))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AccessLogHead(Base):
    """The chain's head, one row: appending locks it, so concurrent appends queue instead of forking."""

    __tablename__ = "access_log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigIntPK)
    last_hash: Mapped[str] = mapped_column(String(64))
    #: The hash before the last append's (its row's `prev_hash`): an UPDATE returns only new values, and on
    #: PostgreSQL one statement moves the head and inserts the row (`store.access_log.append`).
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ArchivedApplication(Base):
    """An accepted (and later decided) application, kept for the applicant's reuse (办件归档)."""

    __tablename__ = "archived_application"
    __table_args__ = (Index("ix_archived_application_holder", "holder_id", "accepted_at"),)

    application_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    receipt_number: Mapped[str | None] = mapped_column(String(80), nullable=True)
    holder_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    applicant: Mapped[dict[str, Any]] = mapped_column(JSON)
    item_code: Mapped[str] = mapped_column(String(64))
    item_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    item_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    department: Mapped[str | None] = mapped_column(String(40), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(20), nullable=True)
    online: Mapped[bool | None] = mapped_column(nullable=True)
    form: Mapped[dict[str, Any]] = mapped_column(JSON)
    materials: Mapped[list[Any]] = mapped_column(JSON)
    promised_limit: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    certificate_number: Mapped[str | None] = mapped_column(String(40), nullable=True)


class OpenTask(Base):
    """Which department holds which task of which application, from workflow's task events: the purpose a
    department's read of personal data must name (an open task of its own)."""

    __tablename__ = "workflow_task"
    __table_args__ = (Index("ix_workflow_task_application", "application_id", "department"),)

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    application_id: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(40))
    item_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: open (assigned, reopened, or waiting for the applicant's correction) or closed (decided, cancelled).
    state: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AccessAnomaly(Base):
    """An anomaly the access watch found (安全监控), once per rule, reader and window; its event carries the
    evidence to efficacy's supervision queue and the data office."""

    __tablename__ = "access_anomaly"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    reader: Mapped[str] = mapped_column(String(120))
    reader_kind: Mapped[str] = mapped_column(String(40))
    reader_department: Mapped[str | None] = mapped_column(String(40), nullable=True)
    count: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    entry_seqs: Mapped[list[int]] = mapped_column(JSON)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
