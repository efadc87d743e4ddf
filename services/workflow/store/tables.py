"""Tables of the workflow service (its database alone; no other service reads them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import make_metadata
from shared.messaging import define_messaging_tables
from shared.types import BigIntPK, UTCDateTime


class Base(DeclarativeBase):
    metadata = make_metadata()


messaging = define_messaging_tables(Base.metadata)


class ProcessDefinition(Base):
    """Local copy of one published item version's process (every version is kept: a case runs under the
    version it was accepted with)."""

    __tablename__ = "process_definition"
    __table_args__ = (UniqueConstraint("item_code", "item_version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    item_code: Mapped[str] = mapped_column(String(64))
    item_version: Mapped[int] = mapped_column(Integer)
    item_name: Mapped[str] = mapped_column(String(300))
    department: Mapped[str] = mapped_column(String(64))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProcessInstance(Base):
    """One case (办件) running through its item's process."""

    __tablename__ = "process_instance"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(String(64), unique=True)
    receipt_number: Mapped[str] = mapped_column(String(64))
    item_code: Mapped[str] = mapped_column(String(64))
    item_version: Mapped[int] = mapped_column(Integer)
    item_name: Mapped[str] = mapped_column(String(300))
    department: Mapped[str] = mapped_column(String(64))
    applicant: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20))
    current_step: Mapped[int] = mapped_column(Integer, default=0)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    legal_basis: Mapped[str | None] = mapped_column(Text, nullable=True)


class Stage(Base):
    """One step of a case: its tasks run in parallel. `decided` counts final decisions; the stage row is
    also the fan-in lock (its UPDATE serialises concurrent decisions) and `completed_at` is set once."""

    __tablename__ = "stage"
    __table_args__ = (UniqueConstraint("instance_id", "step_index"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    step_index: Mapped[int] = mapped_column(Integer)
    step_key: Mapped[str] = mapped_column(String(64))
    step_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    lead_department: Mapped[str] = mapped_column(String(64))
    on_reject: Mapped[str] = mapped_column(String(20))
    limit_days: Mapped[int] = mapped_column(Integer)
    deemed_approval_on_timeout: Mapped[bool] = mapped_column(Boolean, default=False)
    tasks_total: Mapped[int] = mapped_column(Integer)
    decided: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    #: The final decisions counted in `decided` (what fan-in reads of each task), appended by each count under the
    #: row's lock: the decision whose count reaches the total has them all, including those of decisions it waited
    #: for, which its statement's snapshot of the tasks predates. PostgreSQL only (null on SQLite, and on a stage
    #: counted before it existed: fan-in then reads the tasks).
    decisions: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql"), nullable=True)


#: The queues' conditions, as the partial indexes below and the statements that use them both spell them: a
#: constant in the SQL text (a bound parameter would not let the planner prove a partial index's condition).
OPEN_TASK = "state = 'open'"
PENDING_DELIVERY = "state = 'pending'"


class Task(Base):
    """One department's part of a stage (部门审批任务).

    The open tasks are a queue inside the table: the indexes that find them by state hold open tasks only, so
    a department's inbox and the due-date sweeps cost what is open, not every task ever decided (issue #14, bench
    run J). On PostgreSQL the migration also has autovacuum clean this table after a fixed number of dead rows
    rather than a fraction of the table."""

    __tablename__ = "task"
    __table_args__ = (
        UniqueConstraint("stage_id", "department"),
        Index("ix_task_open_department_seq", "department", "seq", postgresql_where=text(OPEN_TASK),
              sqlite_where=text(OPEN_TASK)),
        Index("ix_task_open_due_at", "due_at", postgresql_where=text(OPEN_TASK), sqlite_where=text(OPEN_TASK)),
    )

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    stage_id: Mapped[int] = mapped_column(ForeignKey("stage.id"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    application_id: Mapped[str] = mapped_column(String(64))
    receipt_number: Mapped[str] = mapped_column(String(64))
    item_code: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(64))
    step_key: Mapped[str] = mapped_column(String(64))
    step_name: Mapped[str] = mapped_column(String(200))
    stage_kind: Mapped[str] = mapped_column(String(20))
    lead: Mapped[bool] = mapped_column(Boolean)
    limit_days: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(24))
    assignee: Mapped[str | None] = mapped_column(String(120), nullable=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(24), nullable=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    legal_basis: Mapped[str | None] = mapped_column(Text, nullable=True)
    missing: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    decided_by: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    deemed: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DepartmentWebhook(Base):
    """The URL a department system registered for task notifications, and its signing secret."""

    __tablename__ = "department_webhook"

    department: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(120))


class WebhookDelivery(Base):
    """One event to deliver to one department (an outbox of deliveries, written with the task).

    The sender's queue is the pending deliveries, indexed alone in the order it takes them; a delivered one
    leaves the index (and autovacuum, on PostgreSQL, clears its dead entries after a fixed number of rows)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("department", "event_id"),
        Index("ix_webhook_delivery_pending_due", "next_attempt_at", "id", postgresql_where=text(PENDING_DELIVERY),
              sqlite_where=text(PENDING_DELIVERY)),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    department: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(200))
    task_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery, as the department can see it."""

    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_delivery.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    url: Mapped[str] = mapped_column(String(2000))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)


class CalendarYear(Base):
    """A year's working-day table as efficacy loaded it (State Council notice): due dates count with it instead
    of the estimate for a year the library does not know."""

    __tablename__ = "calendar_year"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holidays: Mapped[list[str]] = mapped_column(JSON)
    workdays: Mapped[list[str]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(200))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
