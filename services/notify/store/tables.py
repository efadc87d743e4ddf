"""Tables of the notify service (its database alone; no other service reads them)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase

from shared.db import make_metadata
from shared.messaging import define_messaging_tables
from shared.types import BigIntPK, UTCDateTime


class Base(DeclarativeBase):
    metadata = make_metadata()


messaging = define_messaging_tables(Base.metadata)
md = Base.metadata

#: What notify learned about an application from the bus: whom to tell and how to name the case. The phone is
#: the contact number the applicant wrote on this application's form (联系电话); `holder_hash` is a SHA-256 of
#: the holder's number so a certificate can be matched to its holder without keeping the ID number.
case_contact = Table(
    "case_contact", md,
    Column("application_id", String(64), primary_key=True),
    Column("person_id", String(64), nullable=True, index=True),
    Column("organisation_id", String(64), nullable=True),
    Column("phone", String(20), nullable=True),
    Column("holder_hash", String(64), nullable=True, index=True),
    Column("receipt_number", String(80), nullable=True),
    Column("item_code", String(80), nullable=True),
    Column("item_name", String(200), nullable=True),
    Column("department", String(40), nullable=True),
    Column("promised_on", Date, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: Department names and codes from catalog, so messages name a department the way the public knows it.
department = Table(
    "department", md,
    Column("code", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
)

#: One row per person who chose: channels per kind, quiet hours, and a number of their own for SMS.
preference = Table(
    "preference", md,
    Column("person_id", String(64), primary_key=True),
    Column("channels", JSON, nullable=False),
    Column("quiet_start", String(5), nullable=True),
    Column("quiet_end", String(5), nullable=True),
    Column("phone", String(20), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: 消息模板: every version kept; the highest is in force. A message records the version it was rendered from.
template = Table(
    "template", md,
    Column("code", String(60), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("channels", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(120), nullable=True),
)

#: The partial indexes' conditions, as the migration spells them too.
_DUE = "next_attempt_at IS NOT NULL"
_SENT = "gateway_id IS NOT NULL"
_ORGANISATION = "organisation_id IS NOT NULL"

#: One message to one recipient on one channel. `(event_id, kind, channel, recipient)` is unique: a
#: redelivered or replayed event makes no second message. SMS and push rows carry the dispatcher's state.
message = Table(
    "message", md,
    Column("id", String(32), primary_key=True),
    Column("event_id", String(120), nullable=False),
    Column("kind", String(60), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("recipient_kind", String(20), nullable=False),
    Column("recipient_id", String(64), nullable=False),
    Column("application_id", String(64), nullable=True, index=True),
    Column("template_version", Integer, nullable=False),
    Column("title", String(200), nullable=True),
    Column("body", Text, nullable=False),
    #: The SMS number (full: the gateway needs it; masked in every response and never logged).
    Column("destination", String(20), nullable=True),
    Column("urgent", Boolean, nullable=False),
    #: queued | held | sent | delivered | failed
    Column("status", String(12), nullable=False),
    Column("reason", String(300), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("gateway_id", String(120), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("read_at", UTCDateTime, nullable=True),
    UniqueConstraint("event_id", "kind", "channel", "recipient_kind", "recipient_id"),
    # The dispatcher's queue and the gateway's delivery reports: SMS and push rows waiting for an attempt, and the
    # sent ones. An inbox message (most of them) has neither and enters neither index, so its insert writes two
    # index entries fewer (issue #14). The queries' `next_attempt_at <= …` and `gateway_id = …` hold only for a
    # non-null value, so the planner proves the condition even with bound parameters.
    Index("ix_message_due", "status", "next_attempt_at", postgresql_where=text(_DUE), sqlite_where=text(_DUE)),
    Index("ix_message_gateway_id", "gateway_id", postgresql_where=text(_SENT), sqlite_where=text(_SENT)),
    Index("ix_message_inbox", "recipient_kind", "recipient_id", "channel", "created_at"),
)

#: The live stream (实时进度): one row per case step, for the person and the organisation whose case it is;
#: `seq` is the SSE event id a client resumes from.
feed_entry = Table(
    "feed_entry", md,
    Column("seq", BigIntPK, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("person_id", String(64), nullable=True),
    Column("organisation_id", String(64), nullable=True),
    Column("application_id", String(64), nullable=True),
    Column("step", String(60), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    Index("ix_feed_entry_person_seq", "person_id", "seq"),
    # A person's case has no organisation: its steps stay out of the organisations' index (`organisation_id IN …`
    # holds only for a non-null value, so the feed's query still uses it).
    Index("ix_feed_entry_organisation_seq", "organisation_id", "seq", postgresql_where=text(_ORGANISATION),
          sqlite_where=text(_ORGANISATION)),
)

#: Certificates learned from datashare, for the expiry reminders.
certificate = Table(
    "certificate", md,
    Column("certificate_number", String(120), primary_key=True),
    Column("type_code", String(60), nullable=False),
    Column("type_name", String(200), nullable=True),
    Column("person_id", String(64), nullable=True),
    Column("organisation_id", String(64), nullable=True),
    Column("valid_until", Date, nullable=True, index=True),
    Column("revoked", Boolean, nullable=False, default=False),
)

#: Cards seen, for the supervisors' daily digest.
card_seen = Table(
    "card_seen", md,
    Column("card_id", String(64), primary_key=True),
    Column("department", String(40), nullable=True),
    Column("colour", String(10), nullable=False),
    Column("raised_on", Date, nullable=False, index=True),
)

#: Each daily job runs once per local day, whichever replica gets there first.
job_run = Table(
    "job_run", md,
    Column("job", String(60), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("ran_at", UTCDateTime, nullable=False),
)
