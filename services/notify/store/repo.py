"""Queries of the notify service: the only place with SQL. Functions flush at most, never commit."""

from __future__ import annotations

import functools
import json
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    String,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy import case as sql_case
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from services.notify.store.tables import (
    card_seen,
    case_contact,
    certificate,
    department,
    feed_entry,
    job_run,
    message,
    preference,
    template,
)
from shared.messaging import insert_ignore
from shared.pagination import decode_cursor, encode_cursor
from shared.types import UTCDateTime, utcnow


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


# --- what notify learned from the bus -------------------------------------------------------------------


# --- in-process memory, per database ------------------------------------------------------------------------

#: Per engine (a test's app, a restarted one, each gets a fresh memory): what this process remembers of the
#: database. Bounded: the oldest entries go first.
_memory: weakref.WeakKeyDictionary[Any, dict[str, OrderedDict[Any, Any]]] = weakref.WeakKeyDictionary()
_MEMORY_SIZE = 4096
_FORGET = "notify_forget"


def _remembered(session: AsyncSession, what: str) -> OrderedDict[Any, Any]:
    bind = session.bind.sync_engine if session.bind is not None else None  # type: ignore[union-attr]
    return _memory.setdefault(bind, {}).setdefault(what, OrderedDict())


def _remember(session: AsyncSession, what: str, key: Any, value: Any) -> None:
    memory = _remembered(session, what)
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > _MEMORY_SIZE:
        memory.popitem(last=False)


def _forget_after_commit(session: AsyncSession, what: str, key: Any) -> None:
    """Forget now and again once the transaction ends: a reader between this write and its commit may have
    remembered the old value."""
    _remembered(session, what).pop(key, None)
    session.info.setdefault(_FORGET, []).append((_remembered(session, what), key))


@sa_event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        for memory, key in session.info.pop(_FORGET, ()):
            memory.pop(key, None)


# --- what notify learned from the bus -------------------------------------------------------------------

#: A case as the live feed names it: the columns a feed step copies, compared before a remembered case is used.
_FEED_KEYS = ("person_id", "organisation_id", "receipt_number", "item_name")


def _case_select() -> Any:
    other = case_contact.alias("other")
    known_phone = (select(other.c.phone).where(other.c.person_id == case_contact.c.person_id,
                                               other.c.phone.is_not(None))
                   .order_by(other.c.updated_at.desc()).limit(1).correlate(case_contact).scalar_subquery())
    return (select(case_contact, preference.c.person_id.label("pref_person"),
                   preference.c.channels.label("pref_channels"), preference.c.phone.label("pref_phone"),
                   known_phone.label("known_phone"))
            .select_from(case_contact.outerjoin(preference, preference.c.person_id == case_contact.c.person_id)))


@functools.cache
def _case_statement() -> Any:
    """`case`'s read, built once (statements are built with bind parameters only, so that SQLAlchemy finds them
    compiled and keyed already)."""
    return _case_select().where(case_contact.c.application_id == bindparam("application_id", type_=String()))


@functools.cache
def _cases_statement(dialect: str) -> Any:
    """`cases`' read: one statement text for any number of cases on PostgreSQL (an array), SQLite expands its
    list."""
    ids = (case_contact.c.application_id == any_(bindparam("application_ids", type_=postgresql.ARRAY(String())))
           if dialect == "postgresql" else case_contact.c.application_id.in_(bindparam("application_ids",
                                                                                        expanding=True)))
    return _case_select().where(ids)


async def cases(session: AsyncSession, application_ids: Iterable[str]) -> dict[str, Row[Any] | None]:
    """`case` of each of these applications in one read (None for a case not known)."""
    ids = sorted(set(application_ids))
    found: dict[str, Row[Any] | None] = dict.fromkeys(ids)
    for row in (await session.execute(_cases_statement(_dialect(session)), {"application_ids": ids})).all():
        found[row.application_id] = row
        _remember(session, "case", row.application_id, tuple(getattr(row, k) for k in _FEED_KEYS))
    return found


async def case(session: AsyncSession, application_id: str) -> Row[Any] | None:
    """The case with what a message to its applicant needs beside it, in one read: the applicant's preference
    (`pref_*`, None without one) and the number they gave most recently on any form (`known_phone`)."""
    row = (await session.execute(_case_statement(), {"application_id": application_id})).first()
    if row is not None:
        _remember(session, "case", application_id, tuple(getattr(row, k) for k in _FEED_KEYS))
    return row


@functools.cache
def _person_beside_statement() -> Any:
    return select(*_beside(bindparam("person_id", type_=String())))


async def person_beside(session: AsyncSession, person_id: str) -> Row[Any]:
    """What `case` reads beside a case (`pref_*`, `known_phone`) for a person, in one read."""
    return (await session.execute(_person_beside_statement(), {"person_id": person_id})).one()


def remembered_case(session: AsyncSession, application_id: str) -> dict[str, Any] | None:
    """What this process last read or wrote of a case (the feed's columns), or None; possibly stale: a writer
    checks it against the row (`add_messages_and_feed`)."""
    known = _remembered(session, "case").get(application_id)
    return None if known is None else dict(zip(_FEED_KEYS, known, strict=True))


def _beside(person_id: Any) -> list[Any]:
    """What a message to a case's applicant needs beside the case, of the person `person_id` names: their
    preference (`pref_*`, None without one) and the number they gave most recently on any form (`known_phone`).
    `person_id` may name the case row's column as text: in RETURNING, SQLAlchemy would add a column of the table
    to each subquery's FROM rather than correlate it."""
    mine = preference.c.person_id == person_id
    other = case_contact.alias("other")
    return [q.scalar_subquery().label(name) for name, q in (
        ("pref_person", select(preference.c.person_id).where(mine)),
        ("pref_channels", select(preference.c.channels).where(mine)),
        ("pref_phone", select(preference.c.phone).where(mine)),
        ("known_phone", select(other.c.phone).where(other.c.person_id == person_id, other.c.phone.is_not(None))
         .order_by(other.c.updated_at.desc()).limit(1)))]


@functools.cache
def _upsert_case_statement(dialect: str, keys: tuple[str, ...], beside: bool) -> Any:
    """`upsert_case`'s statement for the values an event carries, built once per set of them."""
    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(case_contact).values(
        {k: bindparam(f"b_{k}", type_=case_contact.c[k].type) for k in ("application_id", "updated_at", *keys)})
    ins = ins.on_conflict_do_update(index_elements=[case_contact.c.application_id],
                                    set_={**{k: ins.excluded[k] for k in keys}, "updated_at": ins.excluded.updated_at}
                                    if keys else {"updated_at": case_contact.c.updated_at})
    # The person's columns are read by the statement's snapshot, from before its own write: the case's own
    # number is never among them where `known_phone` matters (a case with a number gets the message there, and
    # an upsert never takes a number away). SQLite names RETURNING's columns unqualified, which a subquery on
    # the same table cannot tell apart: there `person_beside` reads them.
    return ins.returning(*case_contact.c, *(_beside(literal_column("case_contact.person_id", String()))
                                            if beside and dialect == "postgresql" else ()))


async def upsert_case(session: AsyncSession, application_id: str, *, beside: bool = False,
                      **values: Any) -> Row[Any]:
    """Record what an event says about a case; a value the event does not carry keeps what was known. One
    statement (`INSERT … ON CONFLICT DO UPDATE … RETURNING`), which gives back the case as now known, and with
    `beside` what a message to its applicant needs beside it, as `case` reads it."""
    values = {k: v for k, v in values.items() if v is not None}
    stmt = _upsert_case_statement(_dialect(session), tuple(sorted(values)), beside)
    params = {"b_application_id": application_id, "b_updated_at": utcnow(), **{f"b_{k}": v for k, v in values.items()}}
    row = (await session.execute(stmt, params)).one()
    _remember(session, "case", application_id, tuple(getattr(row, k) for k in _FEED_KEYS))
    return row


async def known_phone(session: AsyncSession, person_id: str) -> str | None:
    """The number a person gave most recently on a form (for messages about a case whose form we never saw)."""
    q = (select(case_contact.c.phone).where(case_contact.c.person_id == person_id, case_contact.c.phone.is_not(None))
         .order_by(case_contact.c.updated_at.desc()).limit(1))
    return (await session.execute(q)).scalar()


#: Department names by code, in memory: a name changes only with a `department.upserted` event, which this
#: process applies through `upsert_department` (other replicas see a rename after at most `_NAMES_TTL`).
_names: dict[tuple[str, str], tuple[str, float]] = {}
_NAMES_TTL = 60.0


async def upsert_department(session: AsyncSession, code: str, name: str) -> None:
    ins = (pg_insert if _dialect(session) == "postgresql" else sqlite_insert)(department).values(code=code, name=name)
    await session.execute(ins.on_conflict_do_update(index_elements=[department.c.code],
                                                    set_={"name": ins.excluded.name}))
    _names.pop(_name_key(session, code), None)


def _name_key(session: AsyncSession, code: str) -> tuple[str, str]:
    return (str(session.bind.url) if session.bind is not None else "", code)


async def department_name(session: AsyncSession, code: str | None) -> str | None:
    if not code:
        return None
    known = _names.get(_name_key(session, code))
    if known is not None and time.monotonic() - known[1] < _NAMES_TTL:
        return known[0]
    name = (await session.execute(select(department.c.name).where(department.c.code == code))).scalar()
    if name is not None:
        _names[_name_key(session, code)] = (name, time.monotonic())
    return name


def _of_case(application_id: Any, holder_hash: Any, column: Any) -> Any:
    """A certificate's holder column: the application's case's, else the holder's latest case's, else null."""
    by_app = case_contact.c.application_id == application_id
    return sql_case((select(case_contact.c.application_id).where(by_app).exists(),
                     select(column).where(by_app).scalar_subquery()),
                    else_=select(column).where(case_contact.c.holder_hash == holder_hash)
                    .order_by(case_contact.c.updated_at.desc()).limit(1).scalar_subquery())


_CERTIFICATE_KEYS = ("type_code", "type_name", "valid_until")


@functools.cache
def _upsert_certificate_statement(dialect: str) -> Any:
    """`upsert_certificate`'s statement: the holder's columns read from the case in the same statement."""
    app, holder = bindparam("b_application_id", type_=String()), bindparam("b_holder_hash", type_=String())
    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(certificate).values(
        {**{k: bindparam(f"b_{k}", type_=certificate.c[k].type) for k in ("certificate_number", *_CERTIFICATE_KEYS)},
         "person_id": _of_case(app, holder, case_contact.c.person_id),
         "organisation_id": _of_case(app, holder, case_contact.c.organisation_id), "revoked": False})
    return ins.on_conflict_do_update(index_elements=[certificate.c.certificate_number],
                                     set_={k: ins.excluded[k] for k in (*_CERTIFICATE_KEYS, "person_id",
                                                                        "organisation_id")})


async def upsert_certificate(session: AsyncSession, number: str, *, application_id: str | None,
                             holder_hash: str | None, type_code: str, type_name: str | None,
                             valid_until: date | None) -> None:
    """One statement (`INSERT … ON CONFLICT DO UPDATE`): a certificate issued again keeps its revocation. Its
    person or organisation is the application's case's, else that of the holder's latest case (a certificate
    issued by hand), else none; read by the insert itself rather than by a statement before it. A batch writes
    its certificates with its messages instead (`add_messages_and_feed`)."""
    await session.execute(_upsert_certificate_statement(_dialect(session)), certificate_params(
        number, application_id=application_id, holder_hash=holder_hash, type_code=type_code, type_name=type_name,
        valid_until=valid_until))


def certificate_params(number: str, *, application_id: str | None, holder_hash: str | None, type_code: str,
                       type_name: str | None, valid_until: date | None) -> dict[str, Any]:
    """`upsert_certificate`'s parameters: a certificate as a batch holds it for `add_messages_and_feed`."""
    return {"b_certificate_number": number, "b_application_id": application_id, "b_holder_hash": holder_hash,
            "b_type_code": type_code, "b_type_name": type_name, "b_valid_until": valid_until}


async def revoke_certificate(session: AsyncSession, number: str) -> None:
    await session.execute(update(certificate).where(certificate.c.certificate_number == number)
                          .values(revoked=True))


async def certificates_expiring(session: AsyncSession, until: date) -> Sequence[Row[Any]]:
    q = select(certificate).where(certificate.c.revoked.is_(False), certificate.c.valid_until.is_not(None),
                                  certificate.c.valid_until <= until, certificate.c.person_id.is_not(None))
    return (await session.execute(q)).all()


async def record_card(session: AsyncSession, card_id: str, department_code: str | None, colour: str,
                      raised_on: date) -> None:
    await session.execute(insert_ignore(session, card_seen).values(card_id=card_id, department=department_code,
                                                                   colour=colour, raised_on=raised_on))


async def cards_on(session: AsyncSession, day: date) -> Sequence[Row[Any]]:
    return (await session.execute(select(card_seen).where(card_seen.c.raised_on == day))).all()


async def claim_job(session: AsyncSession, job: str, day: date) -> bool:
    """True for the one caller that runs `job` on `day`."""
    res = await session.execute(insert_ignore(session, job_run).values(job=job, day=day, ran_at=utcnow()))
    return bool(res.rowcount)


# --- preferences and templates --------------------------------------------------------------------------


async def preference_of(session: AsyncSession, person_id: str) -> Row[Any] | None:
    return (await session.execute(select(preference).where(preference.c.person_id == person_id))).first()


async def quiet_hours_of(session: AsyncSession, person_ids: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
    """The quiet hours of those of these people who chose theirs, in one read."""
    ids = sorted(set(person_ids))
    if not ids:
        return {}
    q = select(preference.c.person_id, preference.c.quiet_start, preference.c.quiet_end).where(
        preference.c.person_id.in_(ids))
    return {r.person_id: (r.quiet_start, r.quiet_end) for r in (await session.execute(q)).all()}


async def put_preference(session: AsyncSession, person_id: str, *, channels: dict[str, list[str]],
                         quiet_start: str | None, quiet_end: str | None, phone: str | None) -> None:
    values = {"channels": channels, "quiet_start": quiet_start, "quiet_end": quiet_end, "phone": phone,
              "updated_at": utcnow()}
    res = await session.execute(update(preference).where(preference.c.person_id == person_id).values(**values))
    if not res.rowcount:
        await session.execute(preference.insert().values(person_id=person_id, **values))


async def current_template(session: AsyncSession, code: str) -> Row[Any] | None:
    q = select(template).where(template.c.code == code).order_by(template.c.version.desc()).limit(1)
    return (await session.execute(q)).first()


#: A template changes only by `add_template`, which makes this process forget it; another replica's edit is
#: seen after at most `_TEMPLATE_TTL` (the message records the version it was rendered from).
_TEMPLATE_TTL = 30.0


async def template_in_force(session: AsyncSession, code: str) -> tuple[int, dict[str, Any]] | None:
    """(version, channels) of the template in force, remembered for `_TEMPLATE_TTL`; None for none stored."""
    known = _remembered(session, "template").get(code)
    if known is not None and time.monotonic() - known[1] < _TEMPLATE_TTL:
        return known[0]  # type: ignore[no-any-return]
    row = await current_template(session, code)
    value = (row.version, row.channels) if row is not None else None
    _remember(session, "template", code, (value, time.monotonic()))
    return value


async def add_template(session: AsyncSession, code: str, version: int, channels: dict[str, Any],
                       by: str | None) -> bool:
    """False when that version exists already (a concurrent edit or a second replica seeding)."""
    res = await session.execute(insert_ignore(session, template).values(
        code=code, version=version, channels=channels, created_at=utcnow(), created_by=by))
    _forget_after_commit(session, "template", code)
    return bool(res.rowcount)


# --- messages ---------------------------------------------------------------------------------------------


_MESSAGE_COLUMNS = tuple(c.name for c in message.c)


def _message_row(values: dict[str, Any], now: datetime) -> dict[str, Any]:
    row = dict.fromkeys(_MESSAGE_COLUMNS)
    row.update(id=uuid.uuid4().hex, created_at=now, attempts=0)
    row.update(values)
    return row


def _message_rows(messages: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The rows of messages made together (a batch of events, in the stream's order), each a microsecond after the
    one before: the inbox lists newest first by (`created_at`, `id`), and with one time for the batch its random ids
    put an `application_delivered` below the same case's `application_accepted` as often as not."""
    return [_message_row(m, now + timedelta(microseconds=i)) for i, m in enumerate(messages)]


def _feed_row(values: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"created_at": now, **values}


#: A feed step to insert: the step's row, and the case it was made from when that came from this process's memory
#: (the row is inserted only if the case still reads so), else None (made from the case as read in the transaction).
FeedStep = tuple[dict[str, Any] | None, dict[str, Any]]

_FEED_COLUMNS = ("event_id", "person_id", "organisation_id", "application_id", "step", "data", "created_at")


def _feed_source(steps: Sequence[FeedStep], now: datetime) -> Any:
    """The steps as one SELECT (a UNION ALL in their order, so that their `seq` follows it); a step made from a
    remembered case yields its row only where the case still reads so."""
    selects = []
    for known, feed in steps:
        row = _feed_row(feed, now)
        q = select(*[literal(row[k], feed_entry.c[k].type).label(k) for k in _FEED_COLUMNS])
        if known is None:
            q = q.where(literal(True))  # SQLite parses `INSERT … SELECT … ON CONFLICT` only after a WHERE
        else:
            q = q.where(case_contact.c.application_id == feed["application_id"],
                        *[case_contact.c[k].is_not_distinct_from(known[k]) for k in _FEED_KEYS])
        selects.append(q)
    return selects[0] if len(selects) == 1 else union_all(*selects)


def _unnest(name: str, prefix: str, columns: dict[str, Any]) -> Any:
    """`unnest(:<prefix><col>, …) WITH ORDINALITY AS name(<col>, …, n)`: rows handed over as one array per column.
    A multi-row `VALUES` is never cached by SQLAlchemy (its structure changes with the row count), so each batch
    compiled its statement again; arrays keep one statement text for any number of rows, built and compiled once."""
    return func.unnest(*(bindparam(f"{prefix}{k}", type_=postgresql.ARRAY(t)) for k, t in columns.items())
                       ).table_valued(*columns, with_ordinality="n").render_derived(name=name)


_MESSAGE_TYPES = {c.name: c.type for c in message.c}
_CERTIFICATE_TYPES: dict[str, Any] = {"certificate_number": String(), "application_id": String(),
                                      "holder_hash": String(), "type_code": String(), "type_name": String(),
                                      "valid_until": Date()}
#: The feed step's columns as handed over, and the case it was made from (`known_*`, when `checked`).
_STEP_TYPES: dict[str, Any] = {"event_id": String(), "person_id": String(), "organisation_id": String(),
                               "application_id": String(), "step": String(), "data": Text(), "checked": Boolean(),
                               **{f"known_{k}": String() for k in _FEED_KEYS}}


@functools.cache
def _messages_and_feed_statement() -> Any:
    """`add_messages_and_feed` on PostgreSQL: both inserts as data-modifying CTEs over arrays, whatever the batch
    (either may be empty). A step made from a remembered case is kept only where the case still reads so."""
    m_rows = _unnest("m_rows", "m_", _MESSAGE_TYPES)
    m = (pg_insert(message).from_select(list(_MESSAGE_TYPES), select(*(m_rows.c[k] for k in _MESSAGE_TYPES))
                                        .order_by(m_rows.c.n))
         .on_conflict_do_nothing().returning(message.c.id).cte("m"))
    f_rows = _unnest("f_rows", "f_", _STEP_TYPES)
    still = select(case_contact.c.application_id).where(
        case_contact.c.application_id == f_rows.c.application_id,
        *[case_contact.c[k].is_not_distinct_from(f_rows.c[f"known_{k}"]) for k in _FEED_KEYS]).exists()
    steps = (select(f_rows.c.event_id, f_rows.c.person_id, f_rows.c.organisation_id, f_rows.c.application_id,
                    f_rows.c.step, cast(f_rows.c.data, JSON), bindparam("f_created_at", type_=UTCDateTime()))
             .where(or_(f_rows.c.checked.is_(False), still)).order_by(f_rows.c.n))
    f = (pg_insert(feed_entry).from_select(list(_FEED_COLUMNS), steps).on_conflict_do_nothing()
         .returning(feed_entry.c.event_id).cte("f"))
    # The certificates as `upsert_certificate` writes each (a batch holds each number once, its last).
    c_rows = _unnest("c_rows", "c_", _CERTIFICATE_TYPES)
    c_ins = pg_insert(certificate).from_select(
        ["certificate_number", *_CERTIFICATE_KEYS, "person_id", "organisation_id", "revoked"],
        select(c_rows.c.certificate_number, *(c_rows.c[k] for k in _CERTIFICATE_KEYS),
               _of_case(c_rows.c.application_id, c_rows.c.holder_hash, case_contact.c.person_id),
               _of_case(c_rows.c.application_id, c_rows.c.holder_hash, case_contact.c.organisation_id),
               literal(False)).order_by(c_rows.c.n))
    c = c_ins.on_conflict_do_update(index_elements=[certificate.c.certificate_number],
                                    set_={k: c_ins.excluded[k] for k in (*_CERTIFICATE_KEYS, "person_id",
                                                                         "organisation_id")}).cte("c")
    return union_all(select(m.c.id, literal(None, feed_entry.c.event_id.type).label("step_event")),
                     select(literal(None, message.c.id.type), f.c.event_id)).add_cte(c)


def _messages_and_feed_params(rows: list[dict[str, Any]], steps: Sequence[FeedStep],
                              certificates: Sequence[dict[str, Any]], now: datetime) -> dict[str, Any]:
    params: dict[str, Any] = {f"m_{k}": [r[k] for r in rows] for k in _MESSAGE_TYPES}
    params.update({f"c_{k}": [p[f"b_{k}"] for p in certificates] for k in _CERTIFICATE_TYPES})
    for k in ("event_id", "person_id", "organisation_id", "application_id", "step"):
        params[f"f_{k}"] = [feed[k] for _, feed in steps]
    params["f_data"] = [json.dumps(feed["data"]) for _, feed in steps]
    params["f_checked"] = [known is not None for known, _ in steps]
    for k in _FEED_KEYS:
        params[f"f_known_{k}"] = [known[k] if known is not None else None for known, _ in steps]
    params["f_created_at"] = now
    return params


async def add_messages_and_feed(session: AsyncSession, messages: list[dict[str, Any]],
                                steps: Sequence[FeedStep] = (), certificates: Sequence[dict[str, Any]] = (),
                                ) -> tuple[list[str], set[str]]:
    """Insert what one event, or a batch of events, makes: the messages (each unless one exists for the same
    event, kind, channel and recipient) and the feed steps in order (each unless its event made one, and one made
    from a remembered case only if the case still reads so), and upsert the certificates (`certificate_params`,
    each number once) as `upsert_certificate` does; the new messages' ids, and the event ids of the new steps.
    One statement on PostgreSQL (data-modifying CTEs, built once), one per table or certificate on SQLite."""
    now = utcnow()
    rows = _message_rows(messages, now)
    if not rows and not steps and not certificates:
        return [], set()
    if _dialect(session) == "postgresql":
        got = (await session.execute(_messages_and_feed_statement(),
                                     _messages_and_feed_params(rows, steps, certificates, now))).all()
        return [r[0] for r in got if r[0] is not None], {r[1] for r in got if r[1] is not None}
    ids: list[str] = []
    if rows:
        res = await session.execute(insert_ignore(session, message).values(rows).returning(message.c.id))
        ids = list(res.scalars())
    added: set[str] = set()
    if steps:
        added = set((await session.execute(
            insert_ignore(session, feed_entry).from_select(list(_FEED_COLUMNS), _feed_source(steps, now))
            .returning(feed_entry.c.event_id))).scalars())
    for params in certificates:
        await session.execute(_upsert_certificate_statement("sqlite"), params)
    return ids, added


async def message_by_id(session: AsyncSession, message_id: str) -> Row[Any] | None:
    return (await session.execute(select(message).where(message.c.id == message_id))).first()


async def message_by_gateway_id(session: AsyncSession, gateway_id: str) -> Row[Any] | None:
    return (await session.execute(select(message).where(message.c.gateway_id == gateway_id))).first()


async def siblings(session: AsyncSession, pairs: Iterable[tuple[str, str]]) -> Sequence[Row[Any]]:
    """The other channels' messages of the same events (event id, kind)."""
    conds = [and_(message.c.event_id == e, message.c.kind == k) for e, k in pairs]
    if not conds:
        return []
    q = select(message.c.id, message.c.event_id, message.c.kind, message.c.channel, message.c.status,
               message.c.reason, message.c.recipient_kind, message.c.recipient_id).where(or_(*conds))
    return (await session.execute(q)).all()


def _recipient_filter(recipients: Iterable[tuple[str, str]]) -> Any:
    return or_(*[and_(message.c.recipient_kind == k, message.c.recipient_id == i) for k, i in recipients])


async def inbox_page(session: AsyncSession, recipients: list[tuple[str, str]], *, unread: bool | None,
                     cursor: str | None, limit: int) -> tuple[list[Row[Any]], str | None]:
    """Newest first, keyed on (created_at, id)."""
    q = select(message).where(message.c.channel == "inbox", _recipient_filter(recipients))
    if unread is True:
        q = q.where(message.c.read_at.is_(None))
    elif unread is False:
        q = q.where(message.c.read_at.is_not(None))
    if cursor:
        from shared.errors import invalid

        values = decode_cursor(cursor)
        try:
            at, mid = datetime.fromisoformat(str(values[0])), str(values[1])
        except (ValueError, IndexError) as exc:
            raise invalid("query.cursor", "cursor", "The cursor is not one this list issued.") from exc
        q = q.where(or_(message.c.created_at < at, and_(message.c.created_at == at, message.c.id < mid)))
    q = q.order_by(message.c.created_at.desc(), message.c.id.desc()).limit(limit + 1)
    rows = list((await session.execute(q)).all())
    nxt = encode_cursor([rows[limit - 1].created_at.isoformat(), rows[limit - 1].id]) if len(rows) > limit else None
    return rows[:limit], nxt


async def list_messages(session: AsyncSession, *, application_id: str | None, channel: str | None,
                        status: str | None, cursor: str | None, limit: int) -> tuple[list[Row[Any]], str | None]:
    q = select(message)
    if application_id:
        q = q.where(message.c.application_id == application_id)
    if channel:
        q = q.where(message.c.channel == channel)
    if status:
        q = q.where(message.c.status == status)
    if cursor:
        values = decode_cursor(cursor)
        q = q.where(message.c.id > str(values[0]))
    rows = list((await session.execute(q.order_by(message.c.id).limit(limit + 1))).all())
    nxt = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return rows[:limit], nxt


async def mark_read(session: AsyncSession, message_id: str) -> None:
    await session.execute(update(message).where(message.c.id == message_id, message.c.read_at.is_(None))
                          .values(read_at=utcnow()))


async def due_messages(session: AsyncSession, until: datetime, *, limit: int) -> Sequence[Row[Any]]:
    """SMS and push messages whose time comes by `until`, soonest first (those due now before any that are not,
    whose times tell the dispatcher when to look next); on PostgreSQL replicas split them (SKIP LOCKED)."""
    q = (select(message).where(message.c.status.in_(("queued", "held")), message.c.next_attempt_at <= until)
         .order_by(message.c.next_attempt_at).limit(limit))
    if _dialect(session) == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return (await session.execute(q)).all()


async def set_message(session: AsyncSession, message_id: str, **values: Any) -> None:
    await session.execute(update(message).where(message.c.id == message_id).values(**values))


async def claim(session: AsyncSession, message_ids: list[str], until: datetime) -> None:
    """Leave these messages to this replica until `until` (one statement for a round's claims)."""
    if message_ids:
        await session.execute(update(message).where(message.c.id.in_(message_ids))
                              .values(status="queued", next_attempt_at=until))


async def record_sms_sent(session: AsyncSession, message_id: str, *, attempts: int, gateway_id: str | None,
                          at: datetime) -> None:
    """The gateway took an SMS. A receipt may have come back before this: a delivered or failed one stays so
    (with its reason), in the same statement rather than a read before it."""
    await session.execute(update(message).where(message.c.id == message_id).values(
        status=sql_case((message.c.status == "queued", "sent"), else_=message.c.status),
        reason=sql_case((message.c.status == "failed", message.c.reason), else_=None),
        attempts=attempts, sent_at=at, gateway_id=gateway_id, next_attempt_at=None))


async def sent_times(session: AsyncSession, recipients: Iterable[tuple[str, str]], since: datetime
                     ) -> dict[tuple[str, str], list[datetime]]:
    """When SMS and push went to each of these recipients since `since`, in one read."""
    who = sorted(set(recipients))
    out: dict[tuple[str, str], list[datetime]] = {w: [] for w in who}
    if not who:
        return out
    q = select(message.c.recipient_kind, message.c.recipient_id, message.c.sent_at).where(
        _recipient_filter(who), message.c.channel.in_(("sms", "push")), message.c.sent_at > since)
    for r in (await session.execute(q)).all():
        if r.sent_at is not None:
            out[(r.recipient_kind, r.recipient_id)].append(r.sent_at)
    return out


async def release_held(session: AsyncSession, person_id: str) -> None:
    """A person changed their quiet hours: let the dispatcher look at their held messages again now."""
    await session.execute(update(message).where(message.c.recipient_kind == "person",
                                                message.c.recipient_id == person_id,
                                                message.c.status == "held").values(next_attempt_at=utcnow()))


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    q = select(message.c.channel, message.c.status, func.count()).group_by(message.c.channel, message.c.status)
    return {f"{c}.{s}": n for c, s, n in (await session.execute(q)).all()}


# --- the live stream ---------------------------------------------------------------------------------------


async def feed_after(session: AsyncSession, persons: list[str], organisations: list[str], after: int, *,
                     limit: int = 100) -> Sequence[Row[Any]]:
    """The steps after `after` of cases of these people or organisations, each once."""
    who = [feed_entry.c.person_id.in_(persons)]
    if organisations:
        who.append(feed_entry.c.organisation_id.in_(organisations))
    q = select(feed_entry).where(or_(*who), feed_entry.c.seq > after).order_by(feed_entry.c.seq).limit(limit)
    return (await session.execute(q)).all()


async def purge_feed(session: AsyncSession, before: datetime) -> int:
    res = await session.execute(delete(feed_entry).where(feed_entry.c.created_at < before))
    return res.rowcount or 0


async def feed_head(session: AsyncSession) -> int:
    return int((await session.execute(select(func.max(feed_entry.c.seq)))).scalar() or 0)


def hour_ago(now: datetime) -> datetime:
    return now - timedelta(hours=1)
