"""Every query of the intake service. Functions flush, never commit: the caller's transaction decides."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, nullcontext
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    String,
    any_,
    bindparam,
    case,
    delete,
    insert,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction, aliased, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from services.intake.store import public_status
from services.intake.store.tables import (
    Application,
    Appointment,
    AppointmentSlot,
    Attachment,
    Consultation,
    Delegation,
    Department,
    ItemVersion,
    PaymentNotice,
    PaymentNotification,
    ProjectApplication,
    ReceiptCounter,
    TimelineEntry,
    Visit,
    WalkIn,
)
from shared.db import dialect_of
from shared.errors import invalid
from shared.messaging import insert_ignore, outbox_write, take_pending
from shared.pagination import PageParams, paginate
from shared.types import UTCDateTime, utcnow

# --- item versions -------------------------------------------------------------------------------------------


async def add_item_version(
    session: AsyncSession, *, code: str, version: int, name: str, department: str, payload: dict[str, Any],
    published_at: datetime,
) -> bool:
    """Keep a published version; a version already kept stays as it was (published versions are immutable)."""
    res = await session.execute(
        insert_ignore(session, ItemVersion.__table__).values(
            code=code, version=version, name=name, department=department, payload=payload,
            published_at=published_at,
        )
    )
    return res.rowcount == 1


async def withdraw_item_version(session: AsyncSession, *, code: str, version: int, at: datetime) -> int:
    res = await session.execute(
        update(ItemVersion)
        .where(ItemVersion.code == code, ItemVersion.version == version, ItemVersion.withdrawn_at.is_(None))
        .values(withdrawn_at=at)
    )
    return res.rowcount or 0


def _current_version(code: Any) -> Any:
    return (select(ItemVersion.version).where(ItemVersion.code == code, ItemVersion.withdrawn_at.is_(None))
            .order_by(ItemVersion.version.desc()).limit(1))


#: Built once: the newest version of an item that is not withdrawn.
_CURRENT_VERSION = _current_version(bindparam("code"))
#: The version `current_item` last found current, by (database, code): a draft is created against it without
#: reading it again, by an insert that checks it is still the current one (`add_draft`).
_current: dict[tuple[str, str], int] = {}


async def current_item(session: AsyncSession, code: str, *, remembered: bool = False) -> PublishedItem | None:
    """The newest version of an item that is not withdrawn: which one is read fresh, its content from memory.
    `remembered`: the one found last, if any, without a read (for `add_draft`, which checks it)."""
    key = (_bind_key(session), code)
    version = _current.get(key) if remembered else None
    if version is None:
        version = (await session.execute(_CURRENT_VERSION, {"code": code})).scalar_one_or_none()
        if version is None:
            _current.pop(key, None)
            return None
        if len(_current) >= _ITEMS_MAX:
            _current.clear()
        _current[key] = version
    return await item_version(session, code, version)


class PublishedItem(NamedTuple):
    """A kept item version's published content. It never changes once kept, so it is read once per process; its
    withdrawal does change, and is read fresh where it matters (`item_withdrawn_at`)."""

    code: str
    version: int
    name: str
    department: str
    payload: dict[str, Any]
    published_at: datetime


#: Published item versions by (database, code, version): every step of every case reads the version it cites, and
#: each read decoded the version's whole content. Bounded: an old version read again is simply read once more.
_items: dict[tuple[str, str, int], PublishedItem] = {}
_ITEMS_MAX = 2_000


def _bind_key(session: AsyncSession) -> str:
    return str(session.bind.url) if session.bind is not None else ""


async def item_version(session: AsyncSession, code: str, version: int) -> PublishedItem | None:
    key = (_bind_key(session), code, version)
    known = _items.get(key)
    if known is not None:
        return known
    t = ItemVersion.__table__
    row = (await session.execute(
        select(t.c.code, t.c.version, t.c.name, t.c.department, t.c.payload, t.c.published_at)
        .where(t.c.code == code, t.c.version == version)
    )).first()
    if row is None:
        return None  # not kept yet: asked again next time
    item = PublishedItem(row.code, row.version, row.name, row.department, row.payload, row.published_at)
    if len(_items) >= _ITEMS_MAX:
        _items.clear()
    _items[key] = item
    return item


async def item_withdrawn_at(session: AsyncSession, code: str, version: int) -> datetime | None:
    """When the version was withdrawn (None: still published); read fresh, since another replica may have applied
    the withdrawal."""
    stmt = select(ItemVersion.withdrawn_at).where(ItemVersion.code == code, ItemVersion.version == version)
    return (await session.execute(stmt)).scalar_one_or_none()


async def item_versions(session: AsyncSession, code: str) -> Sequence[ItemVersion]:
    stmt = select(ItemVersion).where(ItemVersion.code == code).order_by(ItemVersion.version)
    return (await session.execute(stmt)).scalars().all()


async def upsert_department(session: AsyncSession, code: str, name: str, phone: str | None = None) -> None:
    row = await session.get(Department, code)
    if row is None:
        session.add(Department(code=code, name=name, phone=phone))
        public_status.unit_renamed(session, code)  # views rendered before the name was known show it now
    else:
        if row.name != name:
            public_status.unit_renamed(session, code)
        row.name = name
        row.phone = phone or row.phone
    await session.flush()
    _phones.pop(_phone_key(session, code), None)


#: Department phones by code, in memory: a phone changes only with a `department.upserted` event, which this
#: process applies through `upsert_department` (other replicas see a change after at most `_PHONES_TTL`).
_phones: dict[tuple[str, str], tuple[str | None, float]] = {}
_PHONES_TTL = 60.0


def _phone_key(session: AsyncSession, code: str) -> tuple[str, str]:
    return (_bind_key(session), code)


async def department_phone(session: AsyncSession, code: str) -> str | None:
    known = _phones.get(_phone_key(session, code))
    if known is not None and time.monotonic() - known[1] < _PHONES_TTL:
        return known[0]
    row = await session.get(Department, code)
    if row is None:
        return None  # not known yet: asked again next time
    _phones[_phone_key(session, code)] = (row.phone, time.monotonic())
    return row.phone


async def department_names(session: AsyncSession, codes: Iterable[str | None]) -> dict[str, str]:
    wanted = {c for c in codes if c}
    if not wanted:
        return {}
    rows = (await session.execute(select(Department).where(Department.code.in_(wanted)))).scalars()
    return {r.code: r.name for r in rows}


async def record_delegation(session: AsyncSession, *, delegation_id: str, principal_kind: str, principal_id: str,
                            agent_id: str, items: list[str] | None, valid_until: datetime,
                            revoked_at: datetime | None = None) -> None:
    row = await session.get(Delegation, delegation_id)
    if row is None:
        session.add(Delegation(id=delegation_id, principal_kind=principal_kind, principal_id=principal_id,
                               agent_id=agent_id, items=items, valid_until=valid_until, revoked_at=revoked_at))
    else:
        row.items, row.valid_until = items, valid_until
        # A revocation is final, whatever order the events arrive in.
        row.revoked_at = row.revoked_at or revoked_at
    await session.flush()


async def get_delegation(session: AsyncSession, delegation_id: str) -> Delegation | None:
    return await session.get(Delegation, delegation_id)


# --- applications --------------------------------------------------------------------------------------------


async def add_application(session: AsyncSession, **fields: Any) -> Application:
    now = utcnow()
    app = Application(id=uuid.uuid4().hex, created_at=now, updated_at=now, notice=[], **fields)
    session.add(app)
    await session.flush()
    if app.receipt_number is None:
        session.info.setdefault(_NEW_DRAFTS, set()).add(app.id)
    return app


def _add_draft() -> Any:
    t = Application.__table__
    # A JSON column left None is SQL NULL, as the ORM's insert leaves it (not JSON's `null`).
    return insert(t).from_select([c.name for c in t.c], select(
        *(bindparam(f"v_{c.name}", type_=JSON(none_as_null=True) if isinstance(c.type, JSON) else c.type)
          for c in t.c)
    ).where(_current_version(bindparam("v_item_code")).scalar_subquery() == bindparam("v_item_version")))


#: Built once: a draft's insert, which writes it only if the version it cites is its item's current one.
_ADD_DRAFT = _add_draft()


async def add_draft(session: AsyncSession, **fields: Any) -> Application | None:
    """`add_application` of a draft against its item's current version (`item_code`, `item_version`), which the
    insert checks in the same statement (the caller may have taken it from memory, `current_item(remembered=True)`,
    and a newer one may have been published or this one withdrawn since): None, and nothing written, when it is
    not the current one any more."""
    now = utcnow()
    app = Application(id=uuid.uuid4().hex, created_at=now, updated_at=now, notice=[], **fields)
    table = Application.__table__
    # Every column set on the object as written, so that it joins the session loaded whole: a column left unset
    # would be expired there, and reading it would be a lazy load, which an async session cannot do.
    values = {c.key: getattr(app, c.key) for c in table.c}
    values["status_query_failures"] = values["status_query_failures"] or 0  # the column's default
    for k, v in values.items():
        setattr(app, k, v)
    res = await session.execute(_ADD_DRAFT, {f"v_{k}": v for k, v in values.items()})
    if res.rowcount != 1:
        _current.pop((_bind_key(session), app.item_code), None)
        return None
    make_transient_to_detached(app)
    session.add(app)
    if app.receipt_number is None:
        session.info.setdefault(_NEW_DRAFTS, set()).add(app.id)
    return app


#: Applications this transaction created without a receipt number (`session.info`): no other transaction sees them
#: before it commits, so none can give them a receipt number meanwhile, and a view without one is never rendered.
#: Its steps then change no public view until this transaction gives it a receipt number (`move`, which renders).
_NEW_DRAFTS = "intake_new_drafts"


async def get_application(session: AsyncSession, application_id: str, *, for_update: bool = False) -> Application | None:
    if not for_update:
        return (await session.execute(select(Application).where(Application.id == application_id))).scalar_one_or_none()
    # Locked to change it: its public view's body comes along, for the change to be applied to (public_status).
    row = (await session.execute(
        select(Application, public_status.body_of(Application.__table__)).where(Application.id == application_id)
        .with_for_update(of=Application)
    )).first()
    if row is None:
        return None
    public_status.read_with_lock(session, application_id, row[0].receipt_number, row[1])
    return row[0]


async def application_to_decide(session: AsyncSession, application_id: str) -> tuple[Application | None, bool]:
    """`get_application(for_update=True)` with whether a project's stage dispatched the application, in the same
    statement (a decision completes the stage only then; nearly every application is in no project)."""
    in_project = select(ProjectApplication.application_id).where(
        ProjectApplication.application_id == Application.id).exists()
    row = (await session.execute(
        select(Application, public_status.body_of(Application.__table__), in_project)
        .where(Application.id == application_id).with_for_update(of=Application)
    )).first()
    if row is None:
        return None, False
    public_status.read_with_lock(session, application_id, row[0].receipt_number, row[1])
    return row[0], bool(row[2])


def _in_project(application: Any) -> Any:
    """Whether a project's stage dispatched the application, as a column of a statement on it (named in full as
    text, as `public_status.body_of`: an UPDATE's RETURNING would not correlate it)."""
    p = ProjectApplication.__table__
    return select(p.c.application_id).where(
        p.c.application_id == literal_column(f"{application.name}.id")).exists()


#: `move_loading`'s statements, by the columns they set: built once.
_MOVES_LOADING: dict[tuple[str, ...], Any] = {}


def _move_loading_statement(columns: tuple[str, ...]) -> Any:
    stmt = _MOVES_LOADING.get(columns)
    if stmt is None:
        t = Application.__table__
        stmt = _MOVES_LOADING[columns] = (
            update(Application)
            .where(t.c.id == bindparam("application_id"), t.c.status.in_(bindparam("from_states", expanding=True)))
            .values({c: bindparam(f"v_{c}") for c in columns})
            .returning(Application, public_status.body_of(t), _in_project(t))
            .execution_options(populate_existing=True))
    return stmt


async def move_loading(session: AsyncSession, application_id: str, *, from_states: Iterable[str],
                       **values: Any) -> tuple[Application | None, bool]:
    """`move` of an application not loaded yet, loading it in the same statement (`UPDATE … RETURNING`, which also
    takes the row's lock): the application as it is after the move, and whether a project's stage dispatched it.
    (None, False) when it is unknown or in none of `from_states`: nothing changed, and the caller reads it as it
    is (`application_to_decide`)."""
    values.setdefault("updated_at", utcnow())
    columns = tuple(sorted(values))
    row = (await session.execute(_move_loading_statement(columns), {
        "application_id": application_id, "from_states": list(from_states),
        **{f"v_{c}": values[c] for c in columns}})).first()
    if row is None:
        return None, False
    app = row[0]
    # What `move` and `lock_keys` know of the row is as before the move: forgotten, as `move` does.
    session.info.get(_MOVED, {}).pop(application_id, None)
    public_status.read_with_lock(session, application_id, app.receipt_number, row[1])
    if public_status.SHOWN.intersection(values) and app.receipt_number is not None:
        public_status.moved(session, application_id, values)
    return app, bool(row[2])


def _keep_certificate() -> Any:
    t = Application.__table__
    # SET reads the row as it was: both CASEs decide on the status and method before the update.
    hands_over = (t.c.status == bindparam("from_status", type_=String)) & (
        t.c.delivery_method == bindparam("method", type_=String))
    at = bindparam("v_at", type_=UTCDateTime())
    to = bindparam("to_status", type_=String)
    return (update(Application)
            .where(t.c.id == bindparam("application_id"), Application.result["certificate_number"].as_string()
                   .is_distinct_from(bindparam("certificate_number", type_=String)))
            .values(result=bindparam("v_result"), updated_at=at, status=case((hands_over, to), else_=t.c.status),
                    delivered_at=case((hands_over, at), else_=t.c.delivered_at))
            # RETURNING reads the row as it is now: handed over by this statement.
            .returning(Application, public_status.body_of(t), (t.c.status == to) & (t.c.delivered_at == at))
            .execution_options(populate_existing=True))


#: Built once, as `move_loading`'s statements.
_KEEP_CERTIFICATE = _keep_certificate()


async def keep_certificate(session: AsyncSession, application_id: str, *, certificate_number: str,
                           result: dict[str, Any], hand_over_from: str, hand_over_to: str,
                           method: str) -> tuple[Application | None, bool]:
    """A certificate kept as the application's result, unless it holds that one already, whatever its status; one
    in `hand_over_from` handed over by `method` moves to `hand_over_to` (delivered now) in the same statement,
    which also locks and loads it. The application as it is after, and whether this handed it over; (None, False)
    when it is unknown or holds the certificate already."""
    row = (await session.execute(_KEEP_CERTIFICATE, {
        "application_id": application_id, "certificate_number": certificate_number, "v_result": result,
        "v_at": utcnow(), "from_status": hand_over_from, "to_status": hand_over_to, "method": method})).first()
    if row is None:
        return None, False
    app, handed = row[0], bool(row[2])
    session.info.get(_MOVED, {}).pop(application_id, None)
    public_status.read_with_lock(session, application_id, app.receipt_number, row[1])
    if handed and app.receipt_number is not None:
        public_status.moved(session, application_id, {"status": hand_over_to})
    return app, handed


async def by_receipt(session: AsyncSession, receipt_number: str, *, for_update: bool = False) -> Application | None:
    stmt = select(Application).where(Application.receipt_number == receipt_number)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def move(session: AsyncSession, app: Application, *, from_states: Iterable[str], **values: Any) -> bool:
    """Change an application only if it is still in one of `from_states` (a compare-and-set, so two concurrent
    transitions cannot both win)."""
    values.setdefault("updated_at", utcnow())
    session.info.get(_MOVED, {}).pop(app.id, None)
    columns = tuple(sorted(values))
    res = await session.execute(_move_statement(columns), {
        "application_id": app.id, "from_states": list(from_states), **{f"v_{c}": values[c] for c in columns}})
    if res.rowcount != 1:
        return False
    public_status.locked(session, app.id)
    if public_status.SHOWN.intersection(values) and (
            "receipt_number" in values or vars(app).get("receipt_number", "unknown") is not None):
        public_status.moved(session, app.id, values)
    # The row has these values already: the object learns them without being marked dirty, or its next flush
    # would write them a second time.
    for k, v in values.items():
        set_committed_value(app, k, v)
    return True


#: `move`'s statements, by the columns they set: built once, as `move_by_id`'s (building an update and its cache key
#: on every call cost more Python than executing it).
_MOVES: dict[tuple[str, ...], Any] = {}


def _move_statement(columns: tuple[str, ...]) -> Any:
    stmt = _MOVES.get(columns)
    if stmt is None:
        t = Application.__table__
        stmt = _MOVES[columns] = (
            update(t).where(t.c.id == bindparam("application_id"),
                            t.c.status.in_(bindparam("from_states", expanding=True)))
            .values({c: bindparam(f"v_{c}") for c in columns}))
    return stmt


#: `move_by_id`'s statements, by the columns they set: built once (building one and its cache key took as long as
#: the rest of a step's Python).
_MOVES_BY_ID: dict[tuple[str, ...], Any] = {}
#: The keys of each application this transaction locked through `move_by_id` or `lock_keys`, as they are now
#: (`session.info`): it holds the row's lock until it ends, and only `move`/`move_by_id` change an application, so
#: locking it again costs nothing and the same move again (a batch's second department step of one case) would
#: change nothing but `updated_at` by microseconds.
_MOVED = "intake_moved_rows"


def _move_by_id_statement(columns: tuple[str, ...]) -> Any:
    stmt = _MOVES_BY_ID.get(columns)
    if stmt is None:
        t = Application.__table__
        stmt = _MOVES_BY_ID[columns] = _move_statement(columns).returning(
            t.c.id, t.c.status, t.c.department, t.c.item_code, t.c.item_version, t.c.receipt_number,
            public_status.body_of(t).label("public_body"))
    return stmt


async def move_by_id(session: AsyncSession, application_id: str, *, from_states: Iterable[str],
                     **values: Any) -> Any | None:
    """`move` without loading the application first: one compare-and-set `UPDATE … RETURNING` of the keys a
    timeline step needs (id, status, department, item_code, item_version), which also takes the row's lock.
    None when the application is unknown or in none of `from_states`. An object of this application already
    loaded in the session learns the new values, as with `move`."""
    from_states = list(from_states)
    moved: dict[str, Any] = session.info.setdefault(_MOVED, {})
    before = moved.get(application_id)
    if before is not None and before.status not in from_states:
        return None  # the compare-and-set would not match: the row is locked, and its status is known
    if before is not None and values.keys() == {"status"} and values["status"] == before.status:
        return before
    values.setdefault("updated_at", utcnow())
    columns = tuple(sorted(values))
    row = (await session.execute(_move_by_id_statement(columns), {
        "application_id": application_id, "from_states": from_states,
        **{f"v_{c}": values[c] for c in columns}})).first()
    if row is None:
        return None
    moved[application_id] = row
    public_status.read_with_lock(session, application_id, row.receipt_number, row.public_body)
    if public_status.SHOWN.intersection(values):
        public_status.moved(session, application_id, values)
    known = session.sync_session.identity_map.get(identity_key(Application, application_id))
    if known is not None:
        for k, v in values.items():
            set_committed_value(known, k, v)
    return row


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_moves(session: Session, transaction: SessionTransaction) -> None:
    # Ended, or a savepoint rolled back what it moved: nothing remembered is certain any more.
    session.info.pop(_MOVED, None)
    if transaction.parent is None:
        session.info.pop(_NEW_DRAFTS, None)


#: Built once: the application locked with the keys a timeline step needs and its public view's body.
_LOCK_KEYS = (
    select(Application.__table__.c.id, Application.__table__.c.status, Application.__table__.c.department,
           Application.__table__.c.item_code, Application.__table__.c.item_version,
           Application.__table__.c.receipt_number, public_status.body_of(Application.__table__).label("public_body"))
    .where(Application.__table__.c.id == bindparam("application_id"))
    .with_for_update(of=Application.__table__)
)


async def lock_keys(session: AsyncSession, application_id: str) -> Any | None:
    """The application locked for a timeline step, without loading it (a step only writes): the keys `move_by_id`
    returns. None when it is unknown."""
    moved: dict[str, Any] = session.info.setdefault(_MOVED, {})
    if application_id in moved:  # locked by this transaction already, and as it was returned then
        return moved[application_id]
    row = (await session.execute(_LOCK_KEYS, {"application_id": application_id})).first()
    if row is not None:
        moved[application_id] = row
        public_status.read_with_lock(session, application_id, row.receipt_number, row.public_body)
    return row


def _ids_in(pg: bool) -> Any:
    """`id` among the bound `application_ids`: on PostgreSQL `= ANY(array)`, one statement text for any number of
    them (an expanded `IN` is a text per count, and each text is prepared again on every pooled connection)."""
    ids = Application.__table__.c.id
    if pg:
        return ids == any_(bindparam("application_ids", type_=postgresql.ARRAY(String)))
    return ids.in_(bindparam("application_ids", expanding=True))


#: Built once per dialect (by whether it is PostgreSQL): `_LOCK_KEYS` for several applications, locked in the
#: order of their ids (the order every batch of the consumers and the view's render take them in: no two
#: transactions wait on each other in a cycle).
_LOCK_MANY = {pg: select(*_LOCK_KEYS.selected_columns).where(_ids_in(pg)).order_by(Application.__table__.c.id)
              .with_for_update(of=Application.__table__) for pg in (False, True)}
#: Built once per dialect: several applications this transaction holds moved to one status.
_MOVE_HELD = {pg: update(Application.__table__).where(_ids_in(pg))
              .values(status=bindparam("v_status"), updated_at=bindparam("v_updated_at")) for pg in (False, True)}


async def lock_many(session: AsyncSession, application_ids: Iterable[str]) -> None:
    """`lock_keys` of several applications in one statement (a consumer's batch of many cases): each handler's own
    `lock_keys` then costs nothing, and so does its `move_by_id` to the status the case is in already."""
    moved: dict[str, Any] = session.info.setdefault(_MOVED, {})
    ids = sorted(set(application_ids) - moved.keys())
    if not ids:
        return
    stmt = _LOCK_MANY[dialect_of(session) == "postgresql"]
    for row in (await session.execute(stmt, {"application_ids": ids})).all():
        moved[row.id] = row
        public_status.read_with_lock(session, row.id, row.receipt_number, row.public_body)


async def move_held(session: AsyncSession, application_ids: Iterable[str], *, from_states: Iterable[str],
                    status: str) -> None:
    """`move_by_id(…, status=status)` of each of these applications that `lock_many` holds, in one statement: the
    ones in one of `from_states` go to `status` (the compare-and-set is decided on the status read with the lock,
    which only this transaction can change now); the others stay as they are."""
    moved: dict[str, Any] = session.info.setdefault(_MOVED, {})
    from_states = set(from_states)
    ids = sorted(a for a in set(application_ids) if a in moved and moved[a].status in from_states)
    if not ids:
        return
    values = {"status": status, "updated_at": utcnow()}
    await session.execute(_MOVE_HELD[dialect_of(session) == "postgresql"], {
        "application_ids": ids, "v_status": status, "v_updated_at": values["updated_at"]})
    for a in ids:
        moved[a] = _Keys(*moved[a])._replace(status=status)
        public_status.moved(session, a, values)
        known = session.sync_session.identity_map.get(identity_key(Application, a))
        if known is not None:
            for k, v in values.items():
                set_committed_value(known, k, v)


class _Keys(NamedTuple):
    """The keys `lock_keys` and `move_by_id` return, as they are after `move_held`."""

    id: str
    status: str
    department: str
    item_code: str
    item_version: int
    receipt_number: str | None
    public_body: str | None


def _to_submit(pg: bool) -> Any:
    """The application locked for its submission, with its version's withdrawal and its attachments (one row
    each, or one row with none). PostgreSQL: with the row version locked and the one the statement's snapshot
    holds (`xmin`), which differ when the lock was waited for (below)."""
    withdrawn = (select(ItemVersion.withdrawn_at)
                 .where(ItemVersion.code == Application.item_code, ItemVersion.version == Application.item_version)
                 .scalar_subquery())
    versions: list[Any] = []
    if pg:
        as_read = Application.__table__.alias("as_read")
        versions = [literal_column("application.xmin::text"),
                    select(literal_column("as_read.xmin::text")).select_from(as_read)
                    .where(as_read.c.id == bindparam("application_id")).scalar_subquery()]
    return (select(Application, withdrawn, Attachment, *versions)
            .outerjoin(Attachment, Attachment.application_id == Application.id)
            .where(Application.id == bindparam("application_id"))
            .order_by(Attachment.id).with_for_update(of=Application))


#: Built once per dialect (by whether it is PostgreSQL), as the other statements of a submission.
_TO_SUBMIT = {pg: _to_submit(pg) for pg in (False, True)}


async def application_to_submit(
        session: AsyncSession, application_id: str,
) -> tuple[Application | None, datetime | None, Sequence[Attachment]]:
    """The application locked for its submission, with when the version it cites was withdrawn (None: still
    published) and its attachments, in one statement.

    A statement that waits for the row's lock returns the row as the other transaction committed it, but the
    attachments as its snapshot held them, from before that commit (PostgreSQL re-reads only the locked row): when
    the locked version is not the one the snapshot read, the attachments are read again. Every writer of
    attachments updates the application's row in the same transaction (`move`), so it makes a new version."""
    pg = dialect_of(session) == "postgresql"
    rows = (await session.execute(_TO_SUBMIT[pg], {"application_id": application_id})).all()
    if not rows:
        return None, None, []
    app, withdrawn_at = rows[0][0], rows[0][1]
    if pg and rows[0][3] != rows[0][4]:
        return app, withdrawn_at, await attachments(session, application_id)
    return app, withdrawn_at, [r[2] for r in rows if r[2] is not None]


def applicant_filter(applicant_ids: Iterable[str], subject: str) -> Any:
    return Application.applicant_id.in_(list(applicant_ids))


def applications_query(*, applicant_ids: Iterable[str], subject: str, statuses: Iterable[str] | None = None) -> Any:
    stmt = select(Application).where(applicant_filter(applicant_ids, subject))
    if statuses:
        stmt = stmt.where(Application.status.in_(list(statuses)))
    return stmt


def staff_queue_query(*, service_point: str | None, department: str | None, statuses: Iterable[str]) -> Any:
    cond = None
    if service_point:
        cond = Application.service_point == service_point
    if department:
        dept = Application.department == department
        cond = dept if cond is None else (cond | dept)
    stmt = select(Application).where(Application.status.in_(list(statuses)))
    return stmt if cond is None else stmt.where(cond)


async def earlier_applications(
    session: AsyncSession, *, applicant_ids: Iterable[str], subject: str, limit: int = 50
) -> Sequence[Application]:
    stmt = (
        select(Application)
        .where(applicant_filter(applicant_ids, subject))
        .order_by(Application.created_at.desc(), Application.id.desc())
        .limit(limit)
    )
    return (await session.execute(stmt)).scalars().all()


async def next_serial(session: AsyncSession, prefix: str) -> int:
    """The next receipt serial for an item and day, in one upsert.

    On PostgreSQL the upsert runs apart (`Database.apart`: its own connection, in autocommit, one round trip):
    in the caller's transaction the counter row stayed locked until that commit, so every submission of an item
    that day queued behind the writes, the response and the commit of the one before it (under load, seconds:
    the receipt counter was the statement with the longest waits in the whole platform); in autocommit the row
    is locked for the statement alone, and its commit waits for no disk flush (the submission's commit flushes
    it). The price is that a submission whose transaction fails after this point leaves its serial unused:
    serials are unique and increasing per item and day, not gapless. Every check of the submission runs before
    it, so only a failure of the database or the process can leave such a gap. On SQLite the caller's
    transaction is the one writer anyway."""
    stmt = _NEXT_SERIAL[dialect_of(session) == "postgresql"]
    db = session.info.get("database")
    async with db.apart() if db is not None else nullcontext(None) as conn:
        return int((await (conn or session).execute(stmt, {"prefix": prefix})).scalar_one())


def _next_serial(pg: bool) -> Any:
    t = ReceiptCounter.__table__
    return ((postgresql.insert(t) if pg else sqlite.insert(t)).values(prefix=bindparam("prefix"), last=1)
            .on_conflict_do_update(index_elements=[t.c.prefix], set_={"last": t.c.last + 1}).returning(t.c.last))


#: Built once per dialect (by whether it is PostgreSQL), as the other statements of a submission.
_NEXT_SERIAL = {pg: _next_serial(pg) for pg in (False, True)}


# --- attachments and timeline ----------------------------------------------------------------------------------


async def attachments(session: AsyncSession, application_ids: str | Iterable[str]) -> Sequence[Attachment]:
    ids = [application_ids] if isinstance(application_ids, str) else list(application_ids)
    if not ids:
        return []
    return (await session.execute(_ATTACHMENTS, {"application_ids": ids})).scalars().all()


#: Built once, as the other statements of a submission.
_ATTACHMENTS = (select(Attachment).where(Attachment.application_id.in_(bindparam("application_ids", expanding=True)))
                .order_by(Attachment.id))


async def get_attachment(session: AsyncSession, attachment_id: int) -> Attachment | None:
    return await session.get(Attachment, attachment_id)


async def put_attachment(session: AsyncSession, *, application_id: str, material_code: str, kind: str,
                         replace: bool = True, **fields: Any) -> Attachment:
    """Attach a material; by default it replaces what was given for that material before."""
    if replace:
        await session.execute(
            delete(Attachment).where(
                Attachment.application_id == application_id, Attachment.material_code == material_code
            )
        )
    fields.setdefault("details", {})
    att = Attachment(application_id=application_id, material_code=material_code, kind=kind, created_at=utcnow(),
                     **fields)
    session.add(att)
    await session.flush()
    return att


#: Built once (statements are the cost, and so is building them): a step is a core insert, not an ORM object
#: and its flush.
_ADD_STEP = TimelineEntry.__table__.insert()


async def add_timeline(
    session: AsyncSession, application_id: str, *, status: str, step: str, unit: str | None = None,
    staff_name: str | None = None, staff_contact: str | None = None, note: str | None = None,
    at: datetime | None = None, code: str | None = None, purpose: str | None = None,
) -> None:
    row = {"application_id": application_id, "at": at or utcnow(), "status": status, "step": step, "unit": unit,
           "staff_name": staff_name, "staff_contact": staff_contact, "note": note, "code": code, "purpose": purpose}
    held = public_status.held_steps(session)
    if held is not None and not session.in_nested_transaction():
        held.append(row)
    else:  # inside a savepoint at once, so that rolling it back takes the step too
        await session.execute(_ADD_STEP, row)
    # Even for what this session holds as a draft: a concurrent submission may have given it a receipt number
    # meanwhile (without a body read under this transaction's lock, the render at commit reads the tables, and
    # renders nothing for a draft). Not for a draft this transaction created: it locked and read the tables at
    # the commit of every new draft for nothing.
    if application_id not in session.info.get(_NEW_DRAFTS, ()):
        public_status.stepped(session, application_id, at=row["at"], status=status, step=step, code=code,
                              unit=unit)


@asynccontextmanager
async def steps_held(session: AsyncSession) -> AsyncIterator[None]:
    """The timeline steps noted from here on are written as the transaction commits (a consumer's batch, or one
    event: one insert for all its events' steps instead of one each; on PostgreSQL inside the statement that
    advances the public views, `public_status`). Still inside the transaction and its locks, so each step's id is
    above every stored step's of its application, in the order the steps were noted, as when each was written at
    once. A read of the timeline writes what is held first (`write_held_steps`)."""
    public_status.hold_steps(session)
    yield


@asynccontextmanager
async def batch_written_at_end(session: AsyncSession) -> AsyncIterator[None]:
    """`steps_held` for a consumer's batch (or one event), which ends with its commit: as the block ends, its
    steps, its views and (PostgreSQL) the events it emitted go in one statement (`public_status.write_changed`);
    the events took one of their own at the commit before. Only for a block whose transaction changes nothing
    after it."""
    public_status.hold_steps(session)
    yield
    await session.flush()
    events = None
    if dialect_of(session) == "postgresql":
        rows = take_pending(session)
        events = outbox_write(session, rows) if rows else None
    await session.run_sync(public_status.write_changed, events)


async def write_held_steps(session: AsyncSession) -> None:
    written = public_status.steps_written(session)
    if written is not None:
        await session.execute(*written)


async def timeline(session: AsyncSession, application_id: str) -> Sequence[TimelineEntry]:
    await write_held_steps(session)
    stmt = (
        select(TimelineEntry)
        .where(TimelineEntry.application_id == application_id)
        # In the order the steps happened (events from several departments arrive in any order); entries
        # of the same instant in the order intake learned of them.
        .order_by(TimelineEntry.at, TimelineEntry.id)
    )
    return (await session.execute(stmt)).scalars().all()


async def timeline_named(session: AsyncSession, app: Application) -> tuple[list[TimelineEntry], dict[str, str]]:
    """`timeline` with the names of the units its steps name and of the application's department, in one
    statement. Under this transaction's lock of the application that is everything its public view shows: the
    render at the commit takes it from here (`public_status.read_whole`)."""
    written = public_status.steps_written(session)
    params = {"application_id": app.id, "department": app.department}
    if written is not None and dialect_of(session) == "postgresql":
        # The held steps' insert and the read in one statement (a submission's answer: its new steps, then the
        # timeline they belong to); the insert's rows are not in the read's snapshot, so they come from its
        # RETURNING.
        stmt, params = _TIMELINE_NAMED_WRITING, {**written[1], **params}
    else:
        if written is not None:
            await session.execute(*written)
        stmt = _TIMELINE_NAMED
    rows = (await session.execute(stmt, params)).all()
    steps = [r[0] for r in rows]
    names = {r[0].unit: r[1] for r in rows if r[0].unit and r[1] is not None}
    if rows and rows[0][2] is not None:
        names[app.department] = rows[0][2]
    if rows:
        public_status.read_whole(session, app, steps, names)
    return steps, names


def _named(entry: Any) -> Any:
    """Each step with the name of its unit and the application's department's, in the order the steps happened
    (as `timeline`)."""
    return (select(entry, select(Department.name).where(Department.code == entry.unit).scalar_subquery(),
                   select(Department.name).where(Department.code == bindparam("department")).scalar_subquery())
            .where(entry.application_id == bindparam("application_id"))
            .order_by(entry.at, entry.id))


def _timeline_named_writing() -> Any:
    t = TimelineEntry.__table__
    steps = public_status.steps_insert().returning(*t.c).cte("steps")
    both = union_all(select(*t.c), select(*steps.c)).subquery("timeline")
    return _named(aliased(TimelineEntry, both))


#: Built once, as the other statements of a submission.
_TIMELINE_NAMED = _named(TimelineEntry)
_TIMELINE_NAMED_WRITING = _timeline_named_writing()


# --- visits, appointments, consultations -----------------------------------------------------------------------


async def add_visit(session: AsyncSession, **fields: Any) -> Visit:
    visit = Visit(at=utcnow(), **fields)
    session.add(visit)
    await session.flush()
    return visit


async def visits(session: AsyncSession, application_id: str) -> Sequence[Visit]:
    stmt = select(Visit).where(Visit.application_id == application_id).order_by(Visit.at, Visit.id)
    return (await session.execute(stmt)).scalars().all()


async def add_slot(session: AsyncSession, *, service_point: str, item_code: str, starts_at: datetime,
                   capacity: int) -> AppointmentSlot | None:
    res = await session.execute(
        insert_ignore(session, AppointmentSlot.__table__).values(
            service_point=service_point, item_code=item_code, starts_at=starts_at, capacity=capacity, booked=0
        )
    )
    if res.rowcount != 1:
        return None
    stmt = select(AppointmentSlot).where(
        AppointmentSlot.service_point == service_point, AppointmentSlot.item_code == item_code,
        AppointmentSlot.starts_at == starts_at,
    )
    return (await session.execute(stmt)).scalar_one()


async def get_slot(session: AsyncSession, slot_id: int) -> AppointmentSlot | None:
    return await session.get(AppointmentSlot, slot_id, populate_existing=True)


def slots_query(*, service_point: str | None, item_code: str | None, after: datetime | None) -> Any:
    stmt = select(AppointmentSlot)
    if service_point:
        stmt = stmt.where(AppointmentSlot.service_point == service_point)
    if item_code:
        stmt = stmt.where(AppointmentSlot.item_code == item_code)
    if after:
        stmt = stmt.where(AppointmentSlot.starts_at >= after)
    return stmt


async def take_seat(session: AsyncSession, slot_id: int) -> bool:
    """Book one seat if one is left: a single conditional update, so concurrent bookings never overfill."""
    res = await session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.id == slot_id, AppointmentSlot.booked < AppointmentSlot.capacity)
        .values(booked=AppointmentSlot.booked + 1)
    )
    return res.rowcount == 1


async def release_seat(session: AsyncSession, slot_id: int) -> None:
    await session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.id == slot_id, AppointmentSlot.booked > 0)
        .values(booked=AppointmentSlot.booked - 1)
    )


async def add_appointment(session: AsyncSession, *, slot_id: int, applicant_id: str) -> Appointment | None:
    """None when this applicant already holds a live booking in the slot."""
    res = await session.execute(
        insert_ignore(session, Appointment.__table__).values(
            slot_id=slot_id, applicant_id=applicant_id, active_holder=applicant_id, status="booked",
            created_at=utcnow(),
        )
    )
    if res.rowcount != 1:
        return None
    stmt = select(Appointment).where(Appointment.slot_id == slot_id, Appointment.active_holder == applicant_id)
    return (await session.execute(stmt)).scalar_one()


async def get_appointment(session: AsyncSession, appointment_id: int) -> Appointment | None:
    return await session.get(Appointment, appointment_id)


def appointments_query(applicant_ids: Iterable[str]) -> Any:
    return select(Appointment).where(Appointment.applicant_id.in_(list(applicant_ids)))


async def add_consultation(session: AsyncSession, **fields: Any) -> Consultation:
    c = Consultation(created_at=utcnow(), **fields)
    session.add(c)
    await session.flush()
    return c


async def get_consultation(session: AsyncSession, consultation_id: int) -> Consultation | None:
    return await session.get(Consultation, consultation_id)


def consultations_query(*, asker_ids: Iterable[str] | None = None, department: str | None = None) -> Any:
    stmt = select(Consultation)
    if asker_ids is not None:
        stmt = stmt.where(Consultation.asker_id.in_(list(asker_ids)))
    if department is not None:
        stmt = stmt.where(Consultation.department == department)
    return stmt


# --- commitments (告知承诺) awaiting post-verification ------------------------------------------------------------


def commitments_query(*, department: str, pending_only: bool) -> Any:
    stmt = (
        select(Attachment)
        .join(Application, Application.id == Attachment.application_id)
        .where(Attachment.kind == "commitment", Application.department == department,
               Application.receipt_number.is_not(None), Application.status != "withdrawn")
    )
    if pending_only:
        stmt = stmt.where(Attachment.verification.is_(None))
    return stmt


async def applications_by_id(session: AsyncSession, ids: Iterable[str]) -> dict[str, Application]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = (await session.execute(select(Application).where(Application.id.in_(wanted)))).scalars()
    return {a.id: a for a in rows}


# --- fees (收费) and result collection (出件) -------------------------------------------------------------------


async def payment_notice(session: AsyncSession, application_id: str) -> PaymentNotice | None:
    stmt = select(PaymentNotice).where(PaymentNotice.application_id == application_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def payment_notice_by_code(session: AsyncSession, payment_code: str, *,
                                 for_update: bool = False) -> PaymentNotice | None:
    stmt = select(PaymentNotice).where(PaymentNotice.payment_code == payment_code)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_payment_notice(session: AsyncSession, *, application_id: str, payment_code: str, amount: str,
                             items: list[dict[str, Any]], due_on: date) -> PaymentNotice:
    notice = PaymentNotice(application_id=application_id, payment_code=payment_code, amount=amount, items=items,
                           due_on=due_on, status="unpaid", requested_at=utcnow())
    session.add(notice)
    await session.flush()
    return notice


async def record_payment_notification(session: AsyncSession, *, webhook_id: str, payment_code: str,
                                      outcome: str) -> bool:
    """False when this `webhook-id` was received before (the platform's retry or a replay)."""
    res = await session.execute(insert_ignore(session, PaymentNotification.__table__).values(
        webhook_id=webhook_id, payment_code=payment_code, outcome=outcome, received_at=utcnow()))
    return res.rowcount == 1


async def settle_payment_notification(session: AsyncSession, webhook_id: str, outcome: str) -> None:
    await session.execute(update(PaymentNotification).where(PaymentNotification.webhook_id == webhook_id)
                          .values(outcome=outcome))


def unpaid_query(*, service_point: str | None, department: str | None) -> Any:
    """Unpaid notices of the applications a clerk handles (their point's or their department's)."""
    stmt = (select(PaymentNotice).join(Application, Application.id == PaymentNotice.application_id)
            .where(PaymentNotice.status == "unpaid"))
    cond = None
    if service_point:
        cond = Application.service_point == service_point
    if department:
        dept = Application.department == department
        cond = dept if cond is None else (cond | dept)
    return stmt if cond is None else stmt.where(cond)


def collections_query(service_point: str) -> Any:
    """Results waiting at a point: collected there (异地领取 included), or to be posted by its clerks."""
    return select(Application).where(
        Application.status == "awaiting_pickup",
        ((Application.delivery_method == "pickup") & (Application.delivery_point == service_point))
        | ((Application.delivery_method == "post") & (Application.service_point == service_point)),
    )


async def walk_in(session: AsyncSession, application_id: str, *, for_update: bool = False) -> WalkIn | None:
    stmt = select(WalkIn).where(WalkIn.application_id == application_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_walk_in(session: AsyncSession, **fields: Any) -> WalkIn:
    row = WalkIn(created_at=utcnow(), **fields)
    session.add(row)
    await session.flush()
    return row

async def idle_drafts(session: AsyncSession, *, before: datetime, department: str | None, item: str | None,
                      limit: int) -> list[Any]:
    """(item code, item name, notice) of drafts untouched since `before`, newest first, `limit` at most."""
    stmt = (select(Application.item_code, Application.item_name, Application.notice)
            .where(Application.status == "draft", Application.updated_at < before)
            .order_by(Application.updated_at.desc()).limit(limit))
    if department:
        stmt = stmt.where(Application.department == department)
    if item:
        stmt = stmt.where(Application.item_code == item)
    return list((await session.execute(stmt)).all())


# --- pages (keyset pagination of the lists the API serves) -----------------------------------------------------


def _created_key(row: Any) -> list[Any]:
    return [row.created_at.isoformat(), row.id]


def _bad_cursor() -> Exception:
    return invalid("query.cursor", "cursor", "The cursor is not one this list issued.")


def _parse_created_key(values: list[Any]) -> list[Any]:
    try:
        at = datetime.fromisoformat(values[0])
    except (TypeError, ValueError) as exc:
        raise _bad_cursor() from exc
    if at.tzinfo is None or not isinstance(values[1], str):
        raise _bad_cursor()
    return [at, values[1]]


def _parse_id_key(values: list[Any]) -> list[Any]:
    if not isinstance(values[0], int) or isinstance(values[0], bool) or not 0 <= values[0] <= 2**53:
        raise _bad_cursor()
    return values


async def _by_created(session: AsyncSession, stmt: Any, page: PageParams, *, descending: bool = True) -> Page:
    return await paginate(session, stmt, key_columns=[Application.created_at, Application.id], params=page,
                          key_of=_created_key, parse_key=_parse_created_key, descending=descending)


async def _by_id(session: AsyncSession, stmt: Any, column: Any, page: PageParams, *, descending: bool = False) -> Page:
    return await paginate(session, stmt, key_columns=[column], params=page, key_of=lambda r: [r.id],
                          parse_key=_parse_id_key, descending=descending)


Page = tuple[list[Any], str | None]


async def applications_page(session: AsyncSession, page: PageParams, *, applicant_ids: Iterable[str], subject: str,
                            statuses: Iterable[str] | None) -> Page:
    return await _by_created(session, applications_query(applicant_ids=applicant_ids, subject=subject,
                                                         statuses=statuses), page)


async def staff_queue_page(session: AsyncSession, page: PageParams, *, service_point: str | None,
                           department: str | None, statuses: Iterable[str], receipt_number: str | None) -> Page:
    stmt = staff_queue_query(service_point=service_point, department=department, statuses=statuses)
    if receipt_number:
        stmt = stmt.where(Application.receipt_number == receipt_number)
    return await _by_created(session, stmt, page)


async def collections_page(session: AsyncSession, page: PageParams, service_point: str) -> Page:
    return await _by_created(session, collections_query(service_point), page, descending=False)


async def unpaid_page(session: AsyncSession, page: PageParams, *, service_point: str | None,
                      department: str | None) -> Page:
    return await _by_id(session, unpaid_query(service_point=service_point, department=department), PaymentNotice.id,
                        page)


async def slots_page(session: AsyncSession, page: PageParams, *, service_point: str | None, item_code: str | None,
                     after: datetime | None) -> Page:
    return await _by_id(session, slots_query(service_point=service_point, item_code=item_code, after=after),
                        AppointmentSlot.id, page)


async def appointments_page(session: AsyncSession, page: PageParams, applicant_ids: Iterable[str]) -> Page:
    return await _by_id(session, appointments_query(applicant_ids), Appointment.id, page, descending=True)


async def consultations_page(session: AsyncSession, page: PageParams, *, asker_ids: Iterable[str] | None = None,
                             department: str | None = None) -> Page:
    return await _by_id(session, consultations_query(asker_ids=asker_ids, department=department), Consultation.id,
                        page, descending=True)


async def commitments_page(session: AsyncSession, page: PageParams, *, department: str, pending_only: bool) -> Page:
    return await _by_id(session, commitments_query(department=department, pending_only=pending_only), Attachment.id,
                        page)
