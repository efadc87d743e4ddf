"""Tables of the efficacy service (its database alone; no other service reads them)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Date, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase

from shared.db import make_metadata
from shared.messaging import define_messaging_tables
from shared.types import BigIntPK, UTCDateTime


class Base(DeclarativeBase):
    metadata = make_metadata()


messaging = define_messaging_tables(Base.metadata)
md = Base.metadata

#: 办事工作日: one row per year, the source of truth for the working-day calendar.
calendar_year = Table(
    "calendar_year", md,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("holidays", JSON, nullable=False),
    Column("workdays", JSON, nullable=False),
    Column("source", String(200), nullable=False),
    Column("loaded_at", UTCDateTime, nullable=False),
    Column("loaded_by", String(120), nullable=True),
)

#: One row per application seen on the bus; also the row a handler locks so that two consumers rebuilding
#: the same application's clocks take turns.
case_file = Table(
    "case_file", md,
    Column("application_id", String(64), primary_key=True),
    Column("applicant", JSON, nullable=True),
    Column("applicant_key", String(120), nullable=True, index=True),
    Column("department", String(40), nullable=True),
    Column("item_code", String(80), nullable=True),
    Column("accepted_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: Every event about an application, kept so that clocks and KPIs are functions of the set of events seen.
case_event = Table(
    "case_event", md,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    # The same fact re-issued under a new event id (a publisher retrying without its outbox) is one fact.
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("application_id", String(64), nullable=False, index=True),
    Column("type", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("data", JSON, nullable=False),
)

clock = Table(
    "clock", md,
    Column("clock_id", String(120), primary_key=True),
    Column("application_id", String(64), nullable=False, index=True),
    Column("task_id", String(64), nullable=True),
    Column("kind", String(20), nullable=False),
    Column("department", String(40), nullable=True),
    # No index of its own: `ix_clock_state_watch_clock` begins with it (one B-tree fewer for every insert and
    # every update of a clock that moves it, issue #14).
    Column("state", String(20), nullable=False),
    # The first day a card could be due (less a margin); the evaluator skips running clocks before it.
    Column("watch_on", Date, nullable=True),
    Column("body", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The card round reads the running clocks due in this index's order and stops at its page (`due_clocks_after`).
    Index("ix_clock_state_watch_clock", "state", "watch_on", "clock_id"),
)

#: 红黄牌: one row per clock, colour and crossed deadline, so a crossing raises exactly one card.
card = Table(
    "card", md,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("card_id", String(64), nullable=False, unique=True),
    Column("clock_id", String(120), nullable=False),
    Column("application_id", String(64), nullable=False, index=True),
    Column("task_id", String(64), nullable=True),
    Column("department", String(40), nullable=True),
    Column("colour", String(10), nullable=False),
    Column("reason", String(60), nullable=False),
    Column("deadline_key", String(80), nullable=False),
    Column("deadline_at", UTCDateTime, nullable=False),
    Column("raised_at", UTCDateTime, nullable=False),
    Column("cleared_at", UTCDateTime, nullable=True),
    UniqueConstraint("clock_id", "colour", "deadline_key"),
)

#: 督办: the supervision queue. Cards, repeated applications and bad ratings land here.
supervision_item = Table(
    "supervision_item", md,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("kind", String(40), nullable=False),
    Column("is_case", Boolean, nullable=False, default=False),
    # Indexed: a stopped clock's cards clear their queue rows by card id at nearly every case event, which
    # without it read the whole queue (every card ever raised).
    Column("card_id", String(64), nullable=True, index=True),
    Column("application_id", String(64), nullable=True),
    Column("department", String(40), nullable=True, index=True),
    Column("detail", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("answer", Text, nullable=True),
    Column("answered_at", UTCDateTime, nullable=True),
    Column("answered_by", String(120), nullable=True),
)

#: Webhooks to supervisors waiting to be delivered (signed per Standard Webhooks; retried with backoff).
webhook_delivery = Table(
    "webhook_delivery", md,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("url", String(500), nullable=False),
    Column("payload", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_webhook_delivery_pending", "delivered_at", "next_attempt_at"),
)

#: Our copy of the published catalogue: what the KPIs count items over and what the clocks exclude.
catalog_item = Table(
    "catalog_item", md,
    Column("code", String(80), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("name", String(300), nullable=True),
    Column("department", String(40), nullable=True),
    Column("fully_online", Boolean, nullable=False),
    Column("excluded_steps", JSON, nullable=False),
    Column("withdrawn", Boolean, nullable=False, default=False),
    #: The acceptance step's limit (working days) when the item sets one; null: the default by channel.
    Column("acceptance_days", Integer, nullable=True),
)

#: One row per application with what the KPIs need, maintained incrementally by the consumers. The counted
#: values are columns too, so a year's KPIs are one aggregate query rather than a million rows in memory.
application_fact = Table(
    "application_fact", md,
    Column("application_id", String(64), primary_key=True),
    Column("body", JSON, nullable=False),
    Column("anchor_on", Date, nullable=True, index=True),
    Column("department", String(40), nullable=True),
    Column("item_code", String(80), nullable=True),
    Column("service_point", String(40), nullable=True),
    Column("online", Boolean, nullable=False, default=False),
    Column("delivered_electronically", Boolean, nullable=False, default=False),
    Column("visits", Integer, nullable=False, default=0),
    Column("corrections", Integer, nullable=False, default=0),
    Column("on_time", Boolean, nullable=True),
    Column("used_workdays", Integer, nullable=True),
    Column("promised_days", Integer, nullable=True),
    Index("ix_application_fact_department_anchor", "department", "anchor_on"),
)

#: 好差评: one rating per application online (一事一评), with the rectification of a bad one.
rating = Table(
    "rating", md,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("rating_id", String(64), nullable=False, unique=True),
    Column("application_id", String(64), nullable=False, unique=True),
    Column("rater", String(120), nullable=False),
    Column("department", String(40), nullable=True, index=True),
    Column("item_code", String(80), nullable=True),
    Column("level", String(30), nullable=False),
    Column("score", Integer, nullable=False),
    Column("comment", Text, nullable=True),
    Column("tags", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("rectification_state", String(20), nullable=True),
    Column("rectification_due_on", Date, nullable=True),
    Column("callback_at", UTCDateTime, nullable=True),
    Column("callback_note", Text, nullable=True),
    Column("rerated_level", String(30), nullable=True),
    Column("rerated_at", UTCDateTime, nullable=True),
    # The card evaluator looks for bad ratings not called back in time every round: without it, every rating.
    Index("ix_rating_rectification_due", "rectification_state", "rectification_due_on"),
)

#: 投诉举报.
complaint = Table(
    "complaint", md,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("complaint_id", String(64), nullable=False, unique=True),
    Column("about_kind", String(20), nullable=False),
    Column("about_ref", String(120), nullable=False),
    Column("department", String(40), nullable=False, index=True),
    Column("text", Text, nullable=False),
    Column("complainant", String(120), nullable=True),
    Column("secret_hash", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("deadline_on", Date, nullable=False),
    Column("answer", Text, nullable=True),
    Column("answered_at", UTCDateTime, nullable=True),
    Column("answer_score", Integer, nullable=True),
    # The card evaluator looks for complaints unanswered in time every round: without it, every complaint.
    Index("ix_complaint_state_deadline", "state", "deadline_on"),
)

#: Certificates issued, for expiry reminders.
certificate = Table(
    "certificate", md,
    Column("certificate_number", String(120), primary_key=True),
    Column("type_code", String(40), nullable=False),
    Column("type_name", String(200), nullable=True),
    Column("holder_id", String(40), nullable=False, index=True),
    Column("valid_until", Date, nullable=True),
    Column("revoked", Boolean, nullable=False, default=False),
)
