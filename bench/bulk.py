"""The bulk seed of open cases: many cases opened through the services' own code, without the bus or HTTP.

Through the bus (copies of an `accepted` event applied by the platform's consumers) the platform opened 53–87
cases a second on two cores, so 100,000 took half an hour. Here the bench process itself opens each service's
database the way the service does (its `ServiceSpec`: tables, outbox, inbox) and runs:

1. intake's own use cases, `create_draft` and `submit`, for each case (with the `Idempotency-Key` record the
   submit route keeps): the application, its receipt serial, timeline, public status and the `submitted` and
   `accepted` events in intake's outbox, exactly as the route writes them (a fully online item is accepted on
   submission);
2. then every event those transactions wrote, and every event the next ones write, goes to each consumer of
   every service that subscribes to its type (`Consumer.subject` and `Consumer.types`, as JetStream filters
   them), through `InboxConsumer.apply_batch`: the consumers' own batch-apply path (inbox rows, batch
   handlers), in big batches, round after round in causal order (intake's events, then what workflow emitted
   for them, then what those caused …) until no service emits anything new.

So each service holds what its consumers would have made of the same events: workflow's instance, stages, the
assigned task and its webhook delivery; efficacy's case file, events, running clocks with their next crossing,
KPI facts and (for a repeated application) the supervision item; datashare's archive row and open-task view;
notify's case contact, messages and feed; intake's timeline entries for the task. Each event written to an
outbox here is marked published in the same insert (the running services' relays never see it unpublished):
its consumers got it from here, as they would have from the stream. What the bench does not do is anything
outside the databases' write path: the department webhooks are queued by workflow as `pending` and delivered
afterwards by the running workflow's own dispatcher (the seed waits for that), so the simulator sees every task.

That path costs what the cases' SQL statements cost (7–10 cases/s on a loaded two-core machine), so past a
thousand cases `copy_template` copies the rows of a template batch opened that way, with PostgreSQL's COPY,
under new identifiers (see its docstring): a copy is the template's cases again under new identities.

`bench.system.check_bulk_seed` compares, table by table and service by service, the rows a few hundred
cases add through `bulk_open` with the rows as many cases add through the public API, and
`bench.system.bulk_open_cases` checks that each table gained copies × the template's rows; either stops the
bench if they differ."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
from sqlalchemy import MetaData, Table, UniqueConstraint, func, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from shared.bus import Bus, subject_matches
from shared.db import Database
from shared.events import Event
from shared.idempotency import fingerprint
from shared.messaging import Consumer, InboxConsumer, MessagingTables
from shared.principal import Principal
from shared.types import utcnow

#: The services whose tables hold something of a case (catalog and identity hold none per case; the simulator,
#: a department system, has no database and learns its tasks by webhook).
CASE_SERVICES = ("intake", "workflow", "efficacy", "datashare", "notify")
#: `session.info` key of a bulk session: the list that collects the events its transactions write.
_SINK = "bulk_seed_sink"
#: `shared.messaging` holds a transaction's events here until its commit writes them.
_OUTBOX_PENDING = "outbox_pending"


class _Sunk(list[dict[str, Any]]):
    """A bulk session's held outbox rows: each is marked published and its event handed to the next round as it is
    emitted. A service may take its transaction's rows before the commit to write them in a statement of its own
    (`shared.messaging.take_pending`: workflow's stage, intake's batch), so the commit alone would not see them."""

    def __init__(self, sink: list[Event]) -> None:
        super().__init__()
        self.sink = sink

    def append(self, row: dict[str, Any]) -> None:
        row["published_at"] = utcnow()
        self.sink.append(Event.from_json(row["payload"].encode()))
        super().append(row)


class _SinkingInfo(dict[str, Any]):
    """A bulk session's `info`: every list of held outbox rows it starts is a `_Sunk`. A service may take the held
    rows more than once in a transaction (a consumer batch that opens many cases writes each case's events in the
    statement that opens it): each take leaves no list behind, and the next event emitted starts a new one, which
    must sink its rows too (a plain list's rows, written before the commit, were published by the running
    platform's relay instead, and its consumers applied them before the bulk seed had written what they need)."""

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key == _OUTBOX_PENDING and key not in self:
            default = _Sunk(self[_SINK])
        return super().setdefault(key, default)


@sa_event.listens_for(Session, "after_transaction_create")
def _sink_as_emitted(session: Session, transaction: Any) -> None:
    sink = session.info.get(_SINK)
    if sink is None or transaction.parent is not None:
        return
    if not isinstance(session.info, _SinkingInfo):
        session.__dict__["info"] = _SinkingInfo(session.info)  # `Session.info` is memoized in the instance
    if _OUTBOX_PENDING not in session.info:
        session.info[_OUTBOX_PENDING] = _Sunk(sink)


@sa_event.listens_for(Session, "before_commit", insert=True)
def _collect_and_mark(session: Session) -> None:
    """Runs before `shared.messaging` writes the held outbox rows (insert=True puts it first): in a bulk session
    each row emitted after a service took the held ones (a plain list again) is marked and handed on here."""
    sink = session.info.get(_SINK)
    pending = session.info.get(_OUTBOX_PENDING, ())
    if sink is None or isinstance(pending, _Sunk):
        return
    now = utcnow()
    for row in pending:
        row["published_at"] = now
        sink.append(Event.from_json(row["payload"].encode()))


def wants(consumer: Consumer, event_type: str) -> bool:
    return subject_matches(consumer.subject, event_type) and consumer.wants(event_type)


@dataclass
class ServiceStore:
    """One service's database, opened in this process as the service opens it."""

    name: str
    db: Database
    messaging: MessagingTables
    metadata: MetaData
    consumers: list[Consumer]
    sink: list[Event] = field(default_factory=list)

    @classmethod
    def open(cls, name: str, url: str) -> ServiceStore:
        spec = importlib.import_module(f"services.{name}.app").SPEC
        sink: list[Event] = []
        db = Database(url, info={"messaging": spec.messaging, "service": name, "publishes": spec.publishes,
                                 _SINK: sink}, pool_size=2)
        return cls(name, db, spec.messaging, spec.metadata, list(spec.consumers), sink)

    def take_events(self) -> list[Event]:
        out = list(self.sink)
        self.sink.clear()
        return out

    async def row_counts(self) -> dict[str, int]:
        """Rows per table of the service (its metadata's tables and the outbox, inbox and idempotency keys)."""
        tables: list[Table] = [t for t in self.metadata.sorted_tables]
        out = {}
        async with self.db.transaction() as s:
            for t in tables:
                out[t.name] = int((await s.execute(select(func.count()).select_from(t))).scalar_one())
        return out


class Stores:
    def __init__(self, urls: dict[str, str], services: tuple[str, ...] = CASE_SERVICES) -> None:
        self.by_name = {s: ServiceStore.open(s, urls[s]) for s in services}

    async def close(self) -> None:
        for s in self.by_name.values():
            await s.db.dispose()

    async def row_counts(self) -> dict[str, dict[str, int]]:
        return {n: await s.row_counts() for n, s in self.by_name.items()}


async def cascade(stores: Stores, events: list[Event], batch: int = 1000) -> dict[str, int]:
    """Apply `events` with every consumer that subscribes to them, then the events those applications wrote,
    and so on until none are new. Returns the number of events applied per consumer."""
    applied: dict[str, int] = {}
    rounds = 0
    while events:
        rounds += 1
        for store in stores.by_name.values():
            for consumer in store.consumers:
                wanted = [e for e in events if wants(consumer, e.type)]
                inbox = InboxConsumer(store.db, store.messaging, consumer, cast(Bus, None))
                for i in range(0, len(wanted), batch):
                    applied[consumer.name] = applied.get(consumer.name, 0) + await inbox.apply_batch(
                        wanted[i:i + batch])
        events = [e for s in stores.by_name.values() for e in s.take_events()]
        if rounds > 50:
            raise RuntimeError("the bulk seed's events keep causing new events after 50 rounds")
    return applied


def claims_of(token: str) -> dict[str, Any]:
    """The claims of an access token issued by identity (read, not verified: the bench got it from identity)."""
    body = token.split(".")[1]
    return cast(dict[str, Any], json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


async def open_in_intake(store: ServiceStore, principals: list[Principal], item_code: str) -> list[str]:
    """Draft and submit one application per principal through intake's use cases, in one transaction; each with
    the idempotency record the submit route keeps for its `Idempotency-Key` (bench/system.py sends one)."""
    from services.intake import service as intake
    from services.intake.api.deps import application_read
    from services.intake.api.schemas import Delivery

    ids = []
    table = store.messaging.idempotency
    delivery = Delivery()  # the route's default: bench/system.py's drafts name none
    async with store.db.transaction() as s:
        rows = []
        for principal in principals:
            draft = await intake.create_draft(
                s, principal, item_code=item_code, channel="online", service_point="LD-CENTRE", form={},
                on_behalf_of=None, fee_exemption=None, delivery_method=delivery.method,
                delivery_point=delivery.service_point, delivery_address=delivery.address)
            app_id = draft.app.id
            done = await intake.submit(s, principal, app_id, {})
            now = utcnow()
            rows.append(dict(scope=f"intake:submit:{principal.subject}", key=f"submit-{app_id}",
                             request_hash=fingerprint({"application_id": app_id}), status_code=200,
                             response_body=json.dumps(application_read(done).model_dump(mode="json"), default=str),
                             created_at=now, completed_at=now))
            ids.append(app_id)
            await s.flush()
            s.expunge_all()
        await s.execute(table.insert(), rows)
    return ids


async def bulk_open(stores: Stores, principal_of: Callable[[int], Principal], item_code: str, n: int, *,
                    chunk: int = 500, report: Callable[[str], None] | None = None,
                    every: float = 15.0) -> dict[str, Any]:
    """Open `n` cases of `item_code`: intake's use cases for each (principal `principal_of(i)`), then the cascade
    of their events through every consumer. `report` gets a progress line every `every` seconds."""
    t = time.perf_counter()
    last = t
    made = 0
    applied: dict[str, int] = {}
    intake_s = cascade_s = 0.0
    while made < n:
        k = min(chunk, n - made)
        t0 = time.perf_counter()
        await open_in_intake(stores.by_name["intake"], [principal_of(made + i) for i in range(k)], item_code)
        t1 = time.perf_counter()
        for name, v in (await cascade(stores, stores.by_name["intake"].take_events())).items():
            applied[name] = applied.get(name, 0) + v
        t2 = time.perf_counter()
        intake_s += t1 - t0
        cascade_s += t2 - t1
        made += k
        if report and (time.perf_counter() - last >= every or made == n):
            last = time.perf_counter()
            secs = last - t
            report(f"  bulk: {made} of {n} cases open in {secs:.0f}s ({made / secs:.0f}/s; intake {intake_s:.0f}s, "
                   f"consumers {cascade_s:.0f}s)")
    secs = time.perf_counter() - t
    return {"seeded": made, "seconds": round(secs, 1), "per_second": round(made / secs, 1) if secs else 0.0,
            "intake_seconds": round(intake_s, 1), "consumers_seconds": round(cascade_s, 1),
            "events_applied_per_consumer": applied}


def synthetic_person(template: dict[str, Any], i: int, run: str) -> Principal:
    """A person of its own for each bulk case, with the claims identity gives a registered citizen (`template`,
    a real token's): 100,000 open cases are 100,000 applicants, not 60 people applying 1,700 times each (which
    efficacy would rightly flag as repeated submissions, 重复提交). Identity keeps nothing per case."""
    claims = dict(template)
    claims.update(sub=f"bulk-{run}-{i}", name=f"批量{i}", hid=f"BULK{run}{i:012d}")
    return Principal.from_claims(claims)

# ---- copies of a template batch ------------------------------------------------------------------------------

def _pg_url(db: Database) -> str:
    return db.url.replace("postgresql+asyncpg://", "postgresql://", 1)


def derive(value: str, copy: int) -> str:
    """The copy's own value of an identifier: the same in every service (so a copied case's application id,
    task id, event ids … still meet across workflow, efficacy, datashare and notify), never one of another copy.
    A long identifier keeps its beginning (a receipt number its item and day) and gets a new 48-bit end."""
    h = hashlib.blake2b(f"{copy}:{value}".encode(), digest_size=12).hexdigest()
    return value[:-12] + h[:12] if len(value) >= 24 else h[:len(value)]


@dataclass
class _TableCopy:
    table: Table
    columns: list[str]
    rows: list[Any]
    #: column → stride of the integer key it holds (its own autoincrement key, or the one it references)
    strides: dict[str, int]


async def table_keys(stores: Stores) -> dict[str, dict[str, set[tuple[Any, ...]]]]:
    """The primary keys of every row of every table of the case services: what a template batch adds is what
    is not among them afterwards."""
    out: dict[str, dict[str, set[tuple[Any, ...]]]] = {}
    for name, store in stores.by_name.items():
        conn = await asyncpg.connect(_pg_url(store.db))
        try:
            out[name] = {}
            for t in store.metadata.sorted_tables:
                pk = ", ".join(f'"{c.name}"' for c in t.primary_key.columns)
                out[name][t.name] = {tuple(r) for r in await conn.fetch(f'SELECT {pk} FROM "{t.name}"')}
        finally:
            await conn.close()
    return out


async def copy_template(stores: Stores, before: dict[str, dict[str, set[tuple[Any, ...]]]], copies: int, *,
                        people: set[str], report: Callable[[str], None] | None = None,
                        per_statement: int = 5) -> dict[str, Any]:
    """Copy, `copies` times, every row the template batch added (what is not in `before`) to every table of every
    case service, in PostgreSQL's COPY. In each copy every identifier of a template case gets its copy's own value
    (`derive`), the same in every service; integer keys (and the integer foreign keys to them) move by a stride
    past every existing key; everything else (timestamps, states, clocks' next crossings, JSON bodies) is the
    template's. So each copy is the template's cases again, as the services' own code wrote them, under new
    identities. The identifiers are the string values of a primary-key, unique or indexed column that occur in
    exactly one template row of that table (an application id, a task id, an event id, a receipt number; not an inbox
    row's consumer name, which every row shares), and the template applicants' own ids (`people`)."""
    t0 = time.perf_counter()
    plans: dict[str, list[_TableCopy]] = {}
    identities: set[str] = set(people)
    conns = {name: await asyncpg.connect(_pg_url(s.db)) for name, s in stores.by_name.items()}
    try:
        for name, store in stores.by_name.items():
            conn = conns[name]
            plans[name] = []
            strides: dict[str, int] = {}
            for t in store.metadata.sorted_tables:
                pk = [c.name for c in t.primary_key.columns]
                rows = [r for r in await conn.fetch(f'SELECT * FROM "{t.name}"')
                        if tuple(r[c] for c in pk) not in before[name][t.name]]
                auto = t.autoincrement_column
                if auto is not None:
                    top = await conn.fetchval(f'SELECT coalesce(max("{auto.name}"), 0) FROM "{t.name}"')
                    strides[t.name] = int(top) + 1
                if not rows:
                    continue
                unique_cols = {c.name for c in t.primary_key.columns} | {c.name for c in t.columns if c.unique}
                for con in t.constraints:
                    if isinstance(con, UniqueConstraint):
                        unique_cols |= {c.name for c in con.columns}
                # Indexed columns too: a case's own value there is looked up (efficacy's `applicant_key`, a key
                # derived from the applicant, finds a person's earlier cases), so it must not be shared by copies.
                unique_cols |= {c.name for c in t.columns if c.index}
                for ix in t.indexes:
                    unique_cols |= {c.name for c in ix.columns}
                # A table with a single new row says nothing about which of its values are a case's own (a
                # department code in a row per department and day would be taken for one).
                for col in unique_cols if len(rows) >= 2 else ():
                    seen = Counter(r[col] for r in rows if isinstance(r[col], str))
                    identities |= {v for v, k in seen.items() if k == 1 and len(v) >= 8}
                col_strides = {auto.name: strides[t.name]} if auto is not None else {}
                for c in t.columns:
                    for fk in c.foreign_keys:
                        if fk.column.table.name in strides and fk.column is fk.column.table.autoincrement_column:
                            col_strides[c.name] = strides[fk.column.table.name]
                plans[name].append(_TableCopy(t, list(rows[0].keys()), rows, col_strides))
        template_rows = {n: {p.table.name: len(p.rows) for p in ps} for n, ps in plans.items()}

        def copied(plan: _TableCopy, k: int) -> list[tuple[Any, ...]]:
            out = []
            for r in plan.rows:
                vals = []
                for c in plan.columns:
                    v = r[c]
                    if c in plan.strides and v is not None:
                        v = v + k * plan.strides[c]
                    elif isinstance(v, str) and v in identities:
                        v = derive(v, k)
                    vals.append(v)
                out.append(tuple(vals))
            return out

        last = time.perf_counter()
        for first in range(1, copies + 1, per_statement):
            ks = range(first, min(copies, first + per_statement - 1) + 1)
            for name, plan_list in plans.items():
                conn = conns[name]
                async with conn.transaction():
                    for plan in plan_list:  # parents before children (sorted_tables)
                        await conn.copy_records_to_table(plan.table.name, columns=plan.columns,
                                                         records=[row for k in ks for row in copied(plan, k)])
            if report and (time.perf_counter() - last >= 15 or ks[-1] == copies):
                last = time.perf_counter()
                report(f"  copies: {ks[-1]} of {copies} in {last - t0:.0f}s")
        # New rows of the running services take keys after the copies'; the planner sees the tables' new sizes
        # (in a database that grew over months autovacuum would have analysed them long ago).
        for name, store in stores.by_name.items():
            for t in store.metadata.sorted_tables:
                auto = t.autoincrement_column
                if auto is not None:
                    await conns[name].execute(
                        f"SELECT setval(pg_get_serial_sequence('\"{t.name}\"', '{auto.name}'), "
                        f'(SELECT max("{auto.name}") FROM "{t.name}"))')
            await conns[name].execute("ANALYZE")
    finally:
        for c in conns.values():
            await c.close()
    return {"copies": copies, "identifiers_rewritten": len(identities), "template_rows": template_rows,
            "seconds": round(time.perf_counter() - t0, 1)}
