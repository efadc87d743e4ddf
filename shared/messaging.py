"""The transactional outbox and the idempotent inbox.

A service writes its events into `outbox` in the same transaction as the state change (`emit`); the
`OutboxRelay` publishes them to JetStream with `Nats-Msg-Id` = event id and marks them. A crash between
publish and mark only causes a second publish, which JetStream drops inside its duplicate window and every
consumer's inbox drops after it. Consumers apply an event and insert its id into `inbox` in one
transaction (`InboxConsumer`), so a redelivered event is a no-op."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nats.aio.msg import Msg
from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    any_,
    bindparam,
    delete,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql import Executable

from shared.bus import Bus, PullWorker, Undeliverable
from shared.db import Database, affected, dialect_of, infrastructure_failure
from shared.events import Event, new_event
from shared.tracing import set_traceparent
from shared.types import BigIntPK, UTCDateTime, utcnow

log = logging.getLogger("yimen.messaging")


@dataclass
class MessagingTables:
    outbox: Table
    inbox: Table
    idempotency: Table


def define_messaging_tables(metadata: MetaData) -> MessagingTables:
    """Add the outbox, inbox and idempotency-key tables to a service's metadata (and so its migrations)."""
    outbox = Table(
        "outbox",
        metadata,
        Column("seq", BigIntPK, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("type", String(200), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("published_at", UTCDateTime, nullable=True),
    )
    # The relay's queue: only the rows still to publish, in seq order. An index over every row kept an entry for
    # each published one (and read them until vacuum); this one loses a row's entry when it is published.
    Index("ix_outbox_unpublished", outbox.c.seq, postgresql_where=outbox.c.published_at.is_(None),
          sqlite_where=outbox.c.published_at.is_(None))
    # The hourly purge's range (`OutboxRelay.purge`), which would otherwise read the whole table. Publishing a row
    # changes an indexed column, so the mark writes every index anyway; this adds no write the old index lacked.
    Index("ix_outbox_published", outbox.c.published_at, postgresql_where=outbox.c.published_at.is_not(None),
          sqlite_where=outbox.c.published_at.is_not(None))
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(120), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("applied_at", UTCDateTime, nullable=False),
    )
    # The daily purge's range (`purge_expired`). On PostgreSQL a BRIN index: rows arrive in applied_at order, so
    # a summary per block range finds the old ones, and the consumers' hot insert adds no B-tree entry to it.
    Index("ix_inbox_applied_at", inbox.c.applied_at, postgresql_using="brin")
    idempotency = Table(
        "idempotency_key",
        metadata,
        Column("scope", String(200), primary_key=True),
        Column("key", String(200), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", Integer, nullable=True),
        Column("response_body", Text, nullable=True),
        Column("created_at", UTCDateTime, nullable=False),
        Column("completed_at", UTCDateTime, nullable=True),
    )
    Index("ix_idempotency_key_created_at", idempotency.c.created_at, postgresql_using="brin")
    return MessagingTables(outbox, inbox, idempotency)


def _tables(session: AsyncSession) -> MessagingTables:
    return session.info["messaging"]


def insert_ignore(session: AsyncSession, table: Table):  # type: ignore[no-untyped-def]
    """`INSERT … ON CONFLICT DO NOTHING` in the session's dialect."""
    dialect = dialect_of(session)
    return (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)).on_conflict_do_nothing()


def _unnest(name: str, **columns: Any) -> Any:
    """`unnest(:b_<col>, …) WITH ORDINALITY AS name(<col>, …, n)` (PostgreSQL): rows handed over as one array per
    column. A multi-row `VALUES` is a new statement text for every row count, which SQLAlchemy compiles again for
    each batch (and PostgreSQL prepares again per text); arrays keep one text for any number of rows, built and
    compiled once per process."""
    return func.unnest(*(bindparam(f"b_{k}", type_=postgresql.ARRAY(t)) for k, t in columns.items())).table_valued(
        *columns, with_ordinality="n").render_derived(name=name)


#: The outbox insert's columns. `published_at` is null but where a writer hands its events on itself (the bench's
#: bulk seed applies them to their consumers directly, so no relay must publish them again).
_OUTBOX_COLUMNS = ("event_id", "type", "payload", "created_at", "published_at")


@functools.cache
def _outbox_insert(outbox: Table, dialect: str) -> Executable:
    """The outbox insert, built once per table and dialect. On PostgreSQL the rows come as arrays, inserted in
    their order (the seq follows it); on SQLite it is the one-row insert, run over the rows (executemany)."""
    if dialect != "postgresql":
        return outbox.insert()
    rows = _unnest("rows", event_id=String, type=String, payload=Text, created_at=UTCDateTime(),
                   published_at=UTCDateTime())
    return postgresql.insert(outbox).from_select(
        list(_OUTBOX_COLUMNS), select(*(rows.c[k] for k in _OUTBOX_COLUMNS)).order_by(rows.c.n))


def _outbox_write(outbox: Table, dialect: str, rows: list[dict[str, Any]]) -> tuple[Executable, Any]:
    """The statement and parameters that write these outbox rows, in one statement (PostgreSQL) or one
    executemany (SQLite)."""
    if dialect != "postgresql":
        return _outbox_insert(outbox, dialect), rows
    return _outbox_insert(outbox, dialect), {f"b_{k}": [r.get(k) for r in rows] for k in _OUTBOX_COLUMNS}


@functools.cache
def _inbox_claim(inbox: Table, dialect: str) -> Executable:
    """The inbox insert of a consumer's events, built once per table and dialect, returning the ids that were new
    (an id already in the inbox conflicts and is skipped). PostgreSQL takes any number of events as arrays; on
    SQLite this is the one-event form (`_inbox_rows` builds its own for several)."""
    if dialect != "postgresql":
        return sqlite.insert(inbox).values(
            consumer=bindparam("b_consumer", type_=String), event_id=bindparam("b_event_id", type_=String),
            event_type=bindparam("b_event_type", type_=String),
            applied_at=bindparam("b_applied_at", type_=UTCDateTime()),
        ).on_conflict_do_nothing().returning(inbox.c.event_id)
    rows = _unnest("rows", event_id=String, event_type=String)
    return postgresql.insert(inbox).from_select(
        ["consumer", "event_id", "event_type", "applied_at"],
        select(bindparam("b_consumer", type_=String), rows.c.event_id, rows.c.event_type,
               bindparam("b_applied_at", type_=UTCDateTime())).order_by(rows.c.n),
    ).on_conflict_do_nothing().returning(inbox.c.event_id)


async def claim_in_inbox(session: AsyncSession, inbox: Table, consumer: str, events: Sequence[Event]) -> set[str]:
    """Insert the events' inbox rows for `consumer` in one statement; returns the ids inserted now, i.e. the
    events not applied before (the caller applies those, in the same transaction). `events` holds each id once."""
    dialect, now = dialect_of(session), utcnow()
    if dialect == "postgresql":
        res = await session.execute(_inbox_claim(inbox, dialect), {
            "b_consumer": consumer, "b_applied_at": now,
            "b_event_id": [e.id for e in events], "b_event_type": [e.type for e in events]})
    elif len(events) == 1:
        res = await session.execute(_inbox_claim(inbox, dialect), {
            "b_consumer": consumer, "b_event_id": events[0].id, "b_event_type": events[0].type,
            "b_applied_at": now})
    else:  # SQLite's own form: a multi-row VALUES (SQLite has no arrays; it serves development and tests)
        res = await session.execute(insert_ignore(session, inbox).values([
            dict(consumer=consumer, event_id=e.id, event_type=e.type, applied_at=now) for e in events])
            .returning(inbox.c.event_id))
    return set(res.scalars())


@functools.cache
def _relay_read(outbox: Table, dialect: str) -> Executable:
    """The relay's queue read (`ix_outbox_unpublished`), built once per table and dialect.

    On PostgreSQL the read is also the mark: one `UPDATE … WHERE seq = ANY(ARRAY(SELECT … FOR UPDATE SKIP LOCKED))
    RETURNING` sets `published_at` on the rows it takes, and the relay publishes them before it commits. A failed
    publish rolls the mark back, as the separate mark's transaction did; several replicas still split the rows.
    That is one statement per round instead of two, in every service. SQLite reads, publishes and marks: its one
    writer would otherwise be held across the publish's network round trip."""
    q = (select(outbox.c.seq, outbox.c.event_id, outbox.c.type, outbox.c.payload)
         .where(outbox.c.published_at.is_(None)).order_by(outbox.c.seq).limit(bindparam("b_limit", type_=Integer)))
    if dialect != "postgresql":
        return q
    # Taken once, as an array, before the UPDATE finds its rows by key: as `seq IN (subquery)` the planner could
    # run the locking subquery again and take more than the limit (as workflow's webhook claim, for the same reason).
    taken = func.array(q.with_only_columns(outbox.c.seq).with_for_update(skip_locked=True).scalar_subquery(),
                       type_=postgresql.ARRAY(BigInteger))
    return (update(outbox).where(outbox.c.seq == any_(taken))
            .values(published_at=bindparam("b_published_at", type_=UTCDateTime()))
            .returning(outbox.c.seq, outbox.c.event_id, outbox.c.type, outbox.c.payload))


@functools.cache
def _relay_mark(outbox: Table, dialect: str) -> Executable:
    """The relay's mark of what it published on SQLite (PostgreSQL marks in its read), built once per table:
    SQLite expands its list."""
    return (update(outbox).where(outbox.c.seq.in_(bindparam("b_seqs", expanding=True)))
            .values(published_at=bindparam("b_published_at", type_=UTCDateTime())))


#: Events written in the current transaction, held until it commits (`session.info`).
_PENDING = "outbox_pending"


def _check_publishes(session: AsyncSession) -> None:
    if session.info.get("publishes") is False:
        raise RuntimeError(f"{session.info.get('service')} runs no outbox relay (ServiceSpec.publishes is False): "
                           "an event written to its outbox would never be published")


async def emit(session: AsyncSession, event: Event) -> Event:
    """Write an event into the outbox inside the caller's transaction.

    The row is held until the transaction commits, then every event of the transaction goes in one multi-row
    `INSERT` just before the commit (statements are the cost: a fan-out to five departments is one statement,
    not five); a rollback drops them with the rest. Inside a savepoint the row is written at once, so that
    rolling the savepoint back takes it too."""
    _check_publishes(session)
    row = {"event_id": event.id, "type": event.type, "payload": event.to_json().decode(), "created_at": utcnow()}
    if session.in_nested_transaction():
        await session.execute(*_outbox_write(_tables(session).outbox, dialect_of(session), [row]))
    else:
        session.info.setdefault(_PENDING, []).append(row)
    session.info["outbox_dirty"] = True
    return event


#: An `Idempotency-Key`'s answer, held until the transaction commits (`session.info`, `complete_key_at_commit`).
_KEY_DONE = "idempotency_key_done"


def complete_key_at_commit(session: AsyncSession, table: Table, *, scope: str, key: str, status: int,
                           body: str) -> None:
    """Record the answer of an `Idempotency-Key` (`shared.idempotency`) as the transaction commits. On PostgreSQL
    it rides in the outbox's insert of the same commit as a data-modifying CTE, so a request that changed state
    and emitted events completes its key without a statement of its own; with no event to write (or on SQLite)
    it is its own `UPDATE`, as before. Either way it commits with the work, or rolls back with it."""
    if session.in_nested_transaction():
        raise RuntimeError("an idempotency key is completed by the outermost transaction")
    session.info[_KEY_DONE] = (table, {"k_scope": scope, "k_key": key, "k_status": status, "k_body": body,
                                       "k_at": utcnow()})


@functools.cache
def _key_done(table: Table) -> Any:
    return (update(table)
            .where(table.c.scope == bindparam("k_scope", type_=String), table.c.key == bindparam("k_key", type_=String))
            .values(status_code=bindparam("k_status", type_=Integer), response_body=bindparam("k_body", type_=Text),
                    completed_at=bindparam("k_at", type_=UTCDateTime())))


@functools.cache
def _outbox_insert_completing(outbox: Table, idempotency: Table) -> Executable:
    """PostgreSQL's outbox insert with a key's completion as a CTE: one statement, one round trip at commit."""
    return _outbox_insert(outbox, "postgresql").add_cte(_key_done(idempotency).cte("key_done"))  # type: ignore[attr-defined]


@sa_event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    """Runs inside AsyncSession.commit's greenlet, so the synchronous execute goes through the async driver."""
    rows = session.info.pop(_PENDING, None)
    done = session.info.pop(_KEY_DONE, None)
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    if rows and done is not None and dialect == "postgresql":
        outbox = session.info["messaging"].outbox
        _, params = _outbox_write(outbox, dialect, rows)
        session.execute(_outbox_insert_completing(outbox, done[0]), {**params, **done[1]})
        return
    if done is not None:
        session.execute(_key_done(done[0]), done[1])
    if rows:
        session.execute(*_outbox_write(session.info["messaging"].outbox, dialect, rows))


@sa_event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: committed (written above) or rolled back
        session.info.pop(_PENDING, None)
        session.info.pop(_KEY_DONE, None)


def outbox_insert(outbox: Table) -> Executable:
    """PostgreSQL's outbox insert (rows as arrays, `take_pending` gives its parameters), for a statement of a
    service's own to run as a CTE: the events go in with that statement instead of in one of their own at commit."""
    return _outbox_insert(outbox, "postgresql")


def take_pending(session: AsyncSession) -> list[dict[str, Any]]:
    """The outbox rows of the events emitted so far in this transaction, taken off the list the commit writes: the
    caller writes them now (`outbox_write`), in the order it needs. Why: a transaction that takes a contended row
    lock last (a stage's fan-in count) then holds it across the commit alone, not also across the outbox's round
    trip."""
    return session.info.pop(_PENDING, None) or []


def take_commit_write(session: AsyncSession | Session) -> tuple[Executable, dict[str, Any]] | None:
    """PostgreSQL: what the commit would write of this transaction's events and `Idempotency-Key` answer (the
    outbox's insert, the key's completion as its CTE; either alone), taken off the commit's list, for a statement
    the service writes at its commit anyway to carry as a CTE: one statement fewer per commit. None on SQLite or
    when there is nothing to write."""
    if session.bind is None or session.bind.dialect.name != "postgresql" or session.in_nested_transaction():
        return None
    rows = session.info.pop(_PENDING, None)
    done = session.info.pop(_KEY_DONE, None)
    if rows and done is not None:
        outbox = session.info["messaging"].outbox
        return _outbox_insert_completing(outbox, done[0]), {**_outbox_write(outbox, "postgresql", rows)[1], **done[1]}
    if done is not None:
        return _key_done(done[0]), done[1]
    if rows:
        return _outbox_write(session.info["messaging"].outbox, "postgresql", rows)
    return None


def outbox_row(session: AsyncSession, event: Event) -> dict[str, Any]:
    """`event`'s outbox row for a statement of the caller's own to write (with `take_pending`'s rows before it), as
    the commit would have; the relay is told that the transaction wrote events."""
    _check_publishes(session)
    session.info["outbox_dirty"] = True
    return {"event_id": event.id, "type": event.type, "payload": event.to_json().decode(), "created_at": utcnow()}


def outbox_write(session: AsyncSession, rows: list[dict[str, Any]]) -> tuple[Executable, Any]:
    """The statement and parameters that write `take_pending`'s rows in the session's dialect (on PostgreSQL
    `outbox_insert`, whose arrays may be empty; on SQLite an executemany, which needs a row)."""
    return _outbox_write(_tables(session).outbox, dialect_of(session), rows)


async def emit_many(session: AsyncSession, events: list[Event]) -> None:
    """Write many events into the outbox in one statement (a batch job raising thousands of cards)."""
    if not events:
        return
    _check_publishes(session)
    now = utcnow()
    # Events emitted earlier in the transaction keep their place before these, in the same statement.
    rows = session.info.pop(_PENDING, None) or []
    rows += [{"event_id": e.id, "type": e.type, "payload": e.to_json().decode(), "created_at": now} for e in events]
    await session.execute(*_outbox_write(_tables(session).outbox, dialect_of(session), rows))
    session.info["outbox_dirty"] = True


async def publish(
    session: AsyncSession,
    type: str,
    *,
    subject: str | None,
    data: BaseModel | dict[str, Any],
    version: int = 1,
) -> Event:
    """Build an event from this service and put it in the outbox."""
    return await emit(session, service_event(session, type, subject=subject, data=data, version=version))


def service_event(session: AsyncSession, type: str, *, subject: str | None, data: BaseModel | dict[str, Any],
                  version: int = 1) -> Event:
    """An event from this service, as `publish` builds it (for a statement of the caller's own to write)."""
    source = f"/yimen/{session.info.get('service', 'unknown')}"
    return new_event(type, source=source, subject=subject, data=data, version=version)


class OutboxRelay:
    """Publishes committed outbox rows in order. Several replicas may run: on PostgreSQL they split rows with
    `FOR UPDATE SKIP LOCKED`; on SQLite there is one writer anyway."""

    def __init__(
        self,
        db: Database,
        bus: Bus,
        tables: MessagingTables,
        *,
        interval: float = 0.5,
        idle_interval: float = 5.0,
        retention: timedelta = timedelta(days=7),
        on_published: Callable[[int], None] | None = None,
        batch: int = 200,
    ) -> None:
        self.db, self.bus, self.tables = db, bus, tables
        self.batch = batch
        self.interval = interval
        self.idle_interval = max(interval, idle_interval)
        self.retention = retention
        self.on_published = on_published or (lambda _n: None)
        self._stop = asyncio.Event()

    async def run(self) -> None:
        last_purge = 0.0
        loop = asyncio.get_running_loop()
        # This process's commits wake the relay at once; the poll is only the safety net for rows no signal
        # announced (a crashed replica's, another process's). So it slows down to `idle_interval`, work or not:
        # back at `interval` after each round that published, it cost an empty read and its transaction every
        # half second of a busy spell (1.6 per case in workflow, bench smoke). It is back at `interval` only
        # after a failed round, whose rows no signal will announce again.
        wait = self.interval
        while not self._stop.is_set():
            failed = False
            try:
                self.db.committed.clear()
                # A short batch took every row there was: one committed since then set the signal (it was
                # cleared above), so asking again at once would only cost an empty SELECT and its transaction.
                while (n := await self.publish_pending(self.batch)) > 0:
                    if n < self.batch:
                        break
                if loop.time() - last_purge > 3600:
                    await self.purge()
                    last_purge = loop.time()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay: %r; retrying", exc)
                failed = True
            wait = self.interval if failed else min(self.idle_interval, wait * 2)
            try:
                await asyncio.wait_for(self.db.committed.wait(), wait)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()

    async def publish_pending(self, limit: int = 200) -> int:
        async with self.db.transaction() as s:
            rows = sorted((await s.execute(_relay_read(self.tables.outbox, dialect_of(s)),  # RETURNING: no order
                                           {"b_limit": limit, "b_published_at": utcnow()})).all(),
                          key=lambda r: r.seq)
            if not rows:
                return 0
            await self._publish(rows)
            await self._mark(s, [r.seq for r in rows])
        self.on_published(len(rows))
        return len(rows)

    async def _publish(self, rows: Sequence[Any]) -> None:
        # Written in seq order, the acks awaited together. Any failure leaves every row unmarked (the
        # transaction rolls back): the next round publishes them all again and the stream drops those it had.
        subject = self.bus.names.subject
        await self.bus.publish_batch([(subject(r.type), r.payload.encode(), r.event_id) for r in rows])

    async def _mark(self, session: AsyncSession, seqs: list[int]) -> None:
        """What was published is marked when the transaction commits: PostgreSQL's read marked it already."""
        if dialect_of(session) != "postgresql":
            await session.execute(_relay_mark(self.tables.outbox, dialect_of(session)),
                                  {"b_seqs": seqs, "b_published_at": utcnow()})

    async def purge(self) -> int:
        ob = self.tables.outbox
        async with self.db.transaction() as s:
            res = await s.execute(
                delete(ob).where(ob.c.published_at.is_not(None), ob.c.published_at < utcnow() - self.retention)
            )
        return affected(res)

    async def republish(self, since: datetime, until: datetime) -> int:
        """Mark the events created in [since, until) for publishing again (after a bus failure lost them)."""
        ob = self.tables.outbox
        async with self.db.transaction() as s:
            res = await s.execute(
                update(ob)
                .where(ob.c.created_at >= since, ob.c.created_at < until, ob.c.published_at.is_not(None))
                .values(published_at=None)
            )
            s.info["outbox_dirty"] = True
        return affected(res)


async def purge_expired(db: Database, tables: MessagingTables, *, inbox_older_than: timedelta,
                        idempotency_older_than: timedelta, batch: int = 5000) -> dict[str, int]:
    """Delete inbox rows and `Idempotency-Key` records past their retention, `batch` rows per transaction so
    that a first purge of a large table holds no lock for long. Both tables otherwise grow with every event and
    every keyed request forever. Replicas may purge at the same time: a row deleted twice is deleted once."""
    now = utcnow()
    done = {}
    for name, table, key, column, cut in (
        ("inbox", tables.inbox, (tables.inbox.c.consumer, tables.inbox.c.event_id), tables.inbox.c.applied_at,
         now - inbox_older_than),
        ("idempotency_key", tables.idempotency, (tables.idempotency.c.scope, tables.idempotency.c.key),
         tables.idempotency.c.created_at, now - idempotency_older_than),
    ):
        doomed = select(*key).where(column < cut).limit(batch)
        total = 0
        while True:
            async with db.transaction() as s:
                n = affected(await s.execute(delete(table).where(tuple_(*key).in_(doomed))))
            total += n
            if n < batch:
                break
            await asyncio.sleep(0)
        done[name] = total
    if any(done.values()):
        log.info("purged past retention: %s", done)
    return done


EventHandler = Callable[[AsyncSession, Event], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, list[Event]], Awaitable[None]]


@dataclass
class Consumer:
    """A durable subscription of one service: `name` is the durable consumer's name (unique per service and
    purpose), `subject` the event type it listens to (wildcards allowed)."""

    name: str
    subject: str
    handler: EventHandler
    description: str = ""
    #: When set, the only event types that change this consumer's state: any other event on its subject is
    #: acknowledged without a transaction (and without an inbox row: nothing was applied). A subject stays
    #: broad where one consumer must see its events in the stream's order (notify).
    types: frozenset[str] | None = None
    #: When set, a fetched batch's new events are handed to it at once, in order, in the batch's transaction (so
    #: that the events of one entity can be applied together); it must leave the same state as `handler` applied
    #: to each in turn. A single event, and the one-at-a-time fallback of a failed batch, go to `handler`.
    batch_handler: BatchHandler | None = None
    #: When set, a busy consumer's batch is what arrives within this many seconds (`PullWorker.gather`): a
    #: consumer whose events may wait that long (notify: a message or a live-stream step a fraction of a second
    #: later) applies a burst of them (a five-department case's task events) in one transaction.
    gather: float = 0.0
    #: The most messages one fetch (and so one transaction) takes; None: the worker's default
    #: (`PullWorker.batch`, 20). A consumer that gathers and handles a batch at a cost that grows more slowly than
    #: its events (one statement for all of them) takes more: at 20, a five-department case's 17 events filled
    #: a gathered batch each, and every case cost efficacy and notify a transaction and its statements.
    batch: int | None = None

    def wants(self, event_type: str) -> bool:
        return self.types is None or event_type in self.types


@dataclass
class InboxConsumer:
    """Applies each event at most once: the inbox row and the handler's effects commit together."""

    db: Database
    tables: MessagingTables
    consumer: Consumer
    bus: Bus
    max_deliver: int = 5
    ack_wait: float = 30.0
    on_result: Callable[[str], None] = field(default=lambda _r: None)

    def worker(self) -> PullWorker:
        return PullWorker(
            self.bus,
            self.consumer.name,
            self.consumer.subject,
            self.handle_msg,
            max_deliver=self.max_deliver,
            ack_wait=self.ack_wait,
            on_result=self.on_result,
            is_transient=infrastructure_failure,
            handle_batch=self.handle_batch,
            gather=self.consumer.gather,
            only=self.consumer.types,
            **({"batch": self.consumer.batch} if self.consumer.batch else {}),
        )

    def _event_of(self, msg: Msg) -> Event:
        event = Event.from_json(msg.data)
        arrived_as = self.bus.names.event_type(msg.subject)
        if event.type != arrived_as:
            # NATS permissions vouch for the subject, not for the payload: a department allowed to publish only
            # its own decision subject must not pass another department's decision (or any service's event)
            # inside it.
            raise Undeliverable(f"event {event.id} of type {event.type} arrived on subject {arrived_as}")
        return event

    def _wanted(self, msg: Msg) -> bool:
        # The subject names the type: an event this consumer does not apply is acknowledged unread (nothing
        # of it is trusted or applied, so there is nothing to verify). A server that filters by type never
        # delivers one.
        return self.consumer.types is None or self.bus.names.event_type(msg.subject) in self.consumer.types

    async def handle_msg(self, msg: Msg) -> None:
        if self._wanted(msg):
            await self.apply(self._event_of(msg))

    async def handle_batch(self, msgs: list[Msg]) -> None:
        """A fetched batch in one transaction with its inbox rows. If anything in it fails (a bad message, a
        handler's error, a lock conflict), nothing of it commits and the worker goes through the batch again
        one message at a time, where each failure gets its own retries and dead letter."""
        await self.apply_batch([self._event_of(m) for m in msgs if self._wanted(m)])

    async def apply(self, event: Event) -> bool:
        """Apply one event; False when it had been applied before."""
        token = set_traceparent(event.traceparent)
        try:
            async with self.db.transaction() as session:
                if not await claim_in_inbox(session, self.tables.inbox, self.consumer.name, [event]):
                    return False
                await self.consumer.handler(session, event)
            return True
        finally:
            set_traceparent(None)
            del token

    async def apply_batch(self, events: list[Event]) -> int:
        """Apply many events in one transaction (事务合并): one inbox statement for all, then each new event's
        handler in order (or the consumer's batch handler once with all of them); the ones applied before are
        skipped. Returns how many were applied."""
        unique = list({e.id: e for e in events}.values())
        if not unique:
            return 0
        try:
            async with self.db.transaction() as session:
                fresh = await claim_in_inbox(session, self.tables.inbox, self.consumer.name, unique)
                if self.consumer.batch_handler is not None:
                    new = [e for e in unique if e.id in fresh]
                    if new:
                        set_traceparent(new[0].traceparent)
                        await self.consumer.batch_handler(session, new)
                    return len(fresh)
                for event in unique:
                    if event.id in fresh:
                        set_traceparent(event.traceparent)
                        await self.consumer.handler(session, event)
                        # Each handler starts as in a session of its own: nothing it loaded (and may have
                        # changed with a core UPDATE behind the ORM's back) is handed to the next one stale.
                        await session.flush()
                        session.expunge_all()
            return len(fresh)
        finally:
            set_traceparent(None)


def event_data(event: Event, model: type[BaseModel]) -> Any:
    """Parse an event's payload into its contract model."""
    return model.model_validate(event.data)
