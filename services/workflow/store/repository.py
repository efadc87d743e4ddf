"""Queries of the workflow service: the only place that talks SQL. Functions flush, never commit."""

from __future__ import annotations

import json
import secrets
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Integer,
    Row,
    Select,
    String,
    Text,
    Update,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.workflow.store.tables import (
    CalendarYear,
    DepartmentWebhook,
    ProcessDefinition,
    ProcessInstance,
    Stage,
    Task,
    WebhookAttempt,
    WebhookDelivery,
    messaging,
)
from shared.db import dialect_of
from shared.messaging import insert_ignore, outbox_insert, outbox_write, take_pending
from shared.types import UTCDateTime

#: The queues' states as constants in the SQL text (`column == "open"` would send a bound parameter): the
#: planner proves a partial index's condition (`tables.OPEN_TASK`, `tables.PENDING_DELIVERY`) only from a
#: constant, and a prepared statement's generic plan has no parameter values to prove it from.
OPEN = literal_column("'open'")
PENDING = literal_column("'pending'")
PENDING_STATE = "pending"

# ---- definitions and cases ------------------------------------------------------------------------------


async def save_definition(session: AsyncSession, **values: Any) -> bool:
    """Keep one item version's process; a version already held is left as it was (versions are immutable)."""
    res = await session.execute(insert_ignore(session, ProcessDefinition.__table__).values(**values))
    return bool(res.rowcount)


async def get_definition(session: AsyncSession, item_code: str, item_version: int) -> ProcessDefinition | None:
    q = select(ProcessDefinition).where(
        ProcessDefinition.item_code == item_code, ProcessDefinition.item_version == item_version
    )
    return (await session.execute(q)).scalar_one_or_none()


#: Item versions' processes already read, per engine: a version is immutable once kept (`save_definition`
#: never overwrites), so a copy read once serves every later case of that version in this process.
_definitions: weakref.WeakKeyDictionary[Engine, dict[tuple[str, int], Row[Any]]] = weakref.WeakKeyDictionary()
_DEFINITIONS_KEPT = 512


async def definition_of(session: AsyncSession, item_code: str, item_version: int) -> Row[Any] | None:
    """`get_definition` as plain columns, remembered by version (a version not yet received is not)."""
    engine = session.get_bind()
    known = _definitions.setdefault(engine, {}) if isinstance(engine, Engine) else {}
    row = known.get((item_code, item_version))
    if row is None:
        t = ProcessDefinition.__table__
        row = (await session.execute(
            select(t.c.item_name, t.c.department, t.c.steps, t.c.result)
            .where(t.c.item_code == item_code, t.c.item_version == item_version)
        )).one_or_none()
        if row is not None:
            if len(known) >= _DEFINITIONS_KEPT:
                known.clear()
            known[(item_code, item_version)] = row
    return row


async def create_instance(session: AsyncSession, **values: Any) -> Row[Any] | None:
    """Insert the case unless it exists (a second accepted event or a second replica): None then. The new
    row comes back from the insert itself (columns, not an ORM object: nothing here changes it later)."""
    t = ProcessInstance.__table__
    res = await session.execute(insert_ignore(session, t).values(**values).returning(*t.c))
    return res.one_or_none()


async def get_instance(session: AsyncSession, application_id: str) -> ProcessInstance | None:
    q = select(ProcessInstance).where(ProcessInstance.application_id == application_id)
    return (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()


_instance_row = select(*ProcessInstance.__table__.c).where(ProcessInstance.__table__.c.id == bindparam("w_id"))


async def instance_row(session: AsyncSession, instance_id: int) -> Row[Any]:
    """The case's columns (for moving it on after a fan-in), without an ORM load (built once, like
    `_decide_statements`)."""
    return (await session.execute(_instance_row, {"w_id": instance_id})).one()


async def finish_instance(session: AsyncSession, instance_id: int, **values: Any) -> bool:
    res = await session.execute(
        update(ProcessInstance)
        .where(ProcessInstance.id == instance_id, ProcessInstance.decided_at.is_(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(res.rowcount)


async def advance_instance(session: AsyncSession, instance_id: int, step_index: int) -> None:
    await session.execute(
        update(ProcessInstance)
        .where(ProcessInstance.id == instance_id, ProcessInstance.current_step != step_index)
        .values(current_step=step_index)
        .execution_options(synchronize_session=False)
    )


# ---- stages and tasks -----------------------------------------------------------------------------------


async def add(session: AsyncSession, row: Any) -> Any:
    session.add(row)
    await session.flush()
    return row


async def add_stage(session: AsyncSession, **values: Any) -> int:
    """Insert a stage; its id comes back from the insert."""
    t = Stage.__table__
    return int((await session.execute(insert(t).values(**values).returning(t.c.id))).scalar_one())


async def add_tasks(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """A stage's tasks in one statement (their ids are ours, so nothing needs to come back)."""
    if rows:
        await session.execute(insert(Task.__table__), rows)


#: What differs between the tasks of one stage (the rest is the stage's, the same for each).
_TASK_OWN = {"id": String, "department": String, "lead": Boolean, "limit_days": Integer, "due_at": UTCDateTime()}
_DELIVERY_OWN = {"department": String, "event_id": String, "event_type": String, "task_id": String, "payload": Text}
_DELIVERY_SHARED = {"attempts", "next_attempt_at", "created_at"}


def _rows(name: str, columns: dict[str, Any]) -> Any:
    """`unnest(:<name>_<col>, …) WITH ORDINALITY`: any number of rows as one array per column, one statement text."""
    return func.unnest(*(bindparam(f"{name}_{k}", type_=ARRAY(t)) for k, t in columns.items())).table_valued(
        *columns, with_ordinality="n").render_derived(name=name)


_open_stage: Select[Any] | None = None


def _open_stage_statement() -> Select[Any]:
    """A stage, its tasks and their deliveries in one statement (PostgreSQL), built once: the tasks' own columns
    and the deliveries come as arrays, a delivery is `pending` where its department has an enabled endpoint and
    `missed` where not (as `enabled_webhooks` decides it)."""
    global _open_stage
    if _open_stage is None:
        s, t, d, w = Stage.__table__, Task.__table__, WebhookDelivery.__table__, DepartmentWebhook.__table__
        stage = insert(s).values({c.name: bindparam(f"s_{c.name}", type_=c.type) for c in s.c if c.name != "id"}
                                 ).returning(s.c.id).cte("new_stage")
        own = _rows("task_rows", _TASK_OWN)
        task_columns = [c.name for c in t.c if c.name != "seq"]
        tasks = insert(t).from_select(task_columns, select(*(
            own.c[k] if k in _TASK_OWN else stage.c.id if k == "stage_id" else bindparam(f"t_{k}", type_=t.c[k].type)
            for k in task_columns)).select_from(own).join(stage, literal_column("true")).order_by(own.c.n)
        ).returning(t.c.seq).cte("new_tasks")
        sent = _rows("delivery_rows", _DELIVERY_OWN)
        endpoint = select(w.c.department).where(w.c.department == sent.c.department, w.c.enabled.is_(True)).exists()
        delivery_columns = [*_DELIVERY_OWN, "state", *sorted(_DELIVERY_SHARED)]
        deliveries = pg_insert(d).from_select(delivery_columns, select(
            *(sent.c[k] for k in _DELIVERY_OWN), case((endpoint, PENDING), else_=literal_column("'missed'")),
            *(bindparam(f"d_{k}", type_=d.c[k].type) for k in sorted(_DELIVERY_SHARED))).order_by(sent.c.n)
        ).on_conflict_do_nothing().returning(d.c.id, d.c.department, d.c.event_id, d.c.state).cte("new_deliveries")
        # The pending ones with their endpoint as this statement reads it (the one the `pending` test just saw): what
        # the sender needs of a delivery it sends without claiming it (`webhooks.Handoff`).
        pending = (
            select(func.json_agg(func.json_build_array(deliveries.c.id, deliveries.c.event_id, w.c.url, w.c.secret),
                                 type_=JSON))
            .select_from(deliveries.join(w, w.c.department == deliveries.c.department))
            .where(deliveries.c.state == PENDING, w.c.enabled.is_(True))
        )
        # The case moves on to the stage's step (a later stage; the first is the case's current step already).
        i = ProcessInstance.__table__
        step = bindparam("s_step_index", type_=s.c.step_index.type)
        advanced = (update(i).where(i.c.id == bindparam("s_instance_id", type_=i.c.id.type), i.c.current_step != step)
                    .values(current_step=step).returning(i.c.id).cte("advanced"))
        # The stage before it completes in the same statement when a fan-in opens this one (`c_stage_id` null
        # otherwise: it matches no row), and the transaction's pending events go in with it (the arrays may be
        # empty): a fan-in is one statement, not a completion, an insert and the outbox's write at commit.
        completed = (update(s).where(s.c.id == bindparam("c_stage_id", type_=s.c.id.type), s.c.completed_at.is_(None))
                     .values(completed_at=bindparam("c_at", type_=s.c.completed_at.type),
                             outcome=bindparam("c_outcome", type_=s.c.outcome.type))
                     .returning(s.c.id).cte("completed"))
        _open_stage = select(
            stage.c.id, select(func.count()).select_from(tasks).scalar_subquery(),
            pending.scalar_subquery(),
            select(func.count()).select_from(advanced).scalar_subquery(),
            select(func.count()).select_from(completed).scalar_subquery(),
        ).add_cte(outbox_insert(messaging.outbox).cte("outbox_rows"))
    return _open_stage


@dataclass(frozen=True)
class PendingDelivery:
    """A delivery `open_stage` queued to an enabled endpoint, with that endpoint."""

    id: int
    event_id: str
    endpoint_url: str
    endpoint_secret: str


@dataclass(frozen=True)
class Completion:
    """The stage a fan-in completes as it opens the next one (`complete_stage`'s arguments)."""

    stage_id: int
    outcome: str
    at: datetime


async def open_stage(session: AsyncSession, stage: dict[str, Any], tasks: list[dict[str, Any]],
                     deliveries: list[dict[str, Any]], *, current_step: int,
                     completing: Completion | None = None) -> tuple[int, list[PendingDelivery], bool]:
    """Complete the stage before (`completing`, as `complete_stage` does), move the case to the stage's step
    (`advance_instance`, where its `current_step` is another), insert the stage (`stage`: its columns), its tasks
    (each with every column but `stage_id`, which is the new stage's; what is not in `_TASK_OWN` the same for all)
    and their webhook deliveries (as `add_deliveries` takes them, without `state`: it is the endpoint's), and write
    the events emitted so far in the transaction. Returns the stage's id, the deliveries pending (with their
    endpoint: the sender may send them without claiming them, `webhooks.Handoff`), and whether
    `completing` completed its stage (False without one; the caller must not commit a stage opened after a
    completion that failed). One statement on PostgreSQL; on SQLite the completion (which stops there when it
    fails), the inserts and the endpoints' read in turn, the events at commit."""
    if dialect_of(session) != "postgresql" or not tasks:
        completed = False
        if completing is not None:
            completed = await complete_stage(session, completing.stage_id, outcome=completing.outcome,
                                             at=completing.at)
            if not completed:
                return 0, [], False
        if stage["step_index"] != current_step:
            await advance_instance(session, stage["instance_id"], stage["step_index"])
        stage_id = await add_stage(session, **stage)
        await add_tasks(session, [{**row, "stage_id": stage_id} for row in tasks])
        endpoints = await enabled_endpoints(session, {r["department"] for r in deliveries}) if deliveries else {}
        await add_deliveries(session, [{**r, "state": PENDING_STATE if r["department"] in endpoints else "missed"}
                                       for r in deliveries])
        pending = [r for r in deliveries if r["department"] in endpoints]
        ids = await delivery_ids(session, [(r["department"], r["event_id"]) for r in pending]) if pending else {}
        return stage_id, [PendingDelivery(ids[(r["department"], r["event_id"])], r["event_id"],
                                          *endpoints[r["department"]]) for r in pending
                          if (r["department"], r["event_id"]) in ids], completed
    s, t = Stage.__table__, Task.__table__
    first = tasks[0]
    _, params = outbox_write(session, take_pending(session))
    params.update({f"s_{c.name}": stage.get(c.name) for c in s.c if c.name != "id"})
    params.update(c_stage_id=completing.stage_id if completing else None, c_at=completing.at if completing else None,
                  c_outcome=completing.outcome if completing else None)
    params.update({f"t_{c.name}": first[c.name] for c in t.c if c.name not in _TASK_OWN and c.name not in (
        "seq", "stage_id")})
    params.update({f"task_rows_{k}": [r[k] for r in tasks] for k in _TASK_OWN})
    params.update({f"delivery_rows_{k}": [r[k] for r in deliveries] for k in _DELIVERY_OWN})
    shared = deliveries[0] if deliveries else {"attempts": 0, "next_attempt_at": None, "created_at": None}
    params.update({f"d_{k}": shared[k] for k in _DELIVERY_SHARED})
    stage_id, _, pending, _, completed = (await session.execute(_open_stage_statement(), params)).one()
    return int(stage_id), [PendingDelivery(*p) for p in pending or []], bool(completed)


async def stages_of(session: AsyncSession, instance_id: int) -> list[Stage]:
    q = select(Stage).where(Stage.instance_id == instance_id).order_by(Stage.step_index)
    return list((await session.execute(q.execution_options(populate_existing=True))).scalars())


async def tasks_of_instance(session: AsyncSession, instance_id: int) -> list[Task]:
    q = select(Task).where(Task.instance_id == instance_id).order_by(Task.seq)
    return list((await session.execute(q.execution_options(populate_existing=True))).scalars())


_decided_tasks_of_stage = (
    select(Task.__table__.c.department, Task.__table__.c.outcome, Task.__table__.c.reasons,
           Task.__table__.c.legal_basis)
    .where(Task.__table__.c.stage_id == bindparam("w_stage_id"), Task.__table__.c.state == "decided")
    .order_by(Task.__table__.c.seq)
)


async def decided_tasks_of_stage(session: AsyncSession, stage_id: int) -> list[Row[Any]]:
    """What fan-in needs of a stage's decided tasks, as columns (built once, like `_decide_statements`)."""
    return list((await session.execute(_decided_tasks_of_stage, {"w_stage_id": stage_id})).all())


async def get_task(session: AsyncSession, task_id: str) -> Task | None:
    q = select(Task).where(Task.id == task_id)
    return (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()


async def task_guard(session: AsyncSession, task_id: str) -> Row[Any] | None:
    """What deciding checks of a task (its department, state, kind and case), as columns."""
    t = Task.__table__
    q = select(t.c.id, t.c.department, t.c.state, t.c.stage_kind, t.c.application_id).where(t.c.id == task_id)
    return (await session.execute(q)).one_or_none()


#: The statements every decision runs, built once. A statement object keeps its cache key, so running the same
#: object again skips building it and walking it for the compiled-statement cache (issue #14: for the decision's
#: UPDATE with its nine values, that walk cost more than the rest of the call).
_decide_statements: dict[tuple[bool, bool, tuple[str, ...], str, bool], Update] = {}


def _decide_statement(by_department: bool, by_kind: bool, columns: tuple[str, ...], prefix: str = "",
                      leaves_room: bool = False) -> Update:
    """`prefix` names the values' parameters (`<prefix><column>`): in a statement with an UPDATE of another table
    that has a column of the same name, SQLAlchemy would also set that column from an unprefixed parameter.
    `leaves_room`: only if the task's stage, as the statement's snapshot sees it (no lock), still waits for more
    than one decision (`decide_alone`)."""
    q = _decide_statements.get((by_department, by_kind, columns, prefix, leaves_room))
    if q is None:
        t = Task.__table__
        # By the task's id alone: its state is compared with IS NOT DISTINCT FROM (the same test on a NOT NULL
        # column), which no index serves and no partial index's condition follows from. With `state = 'open'`,
        # a table whose statistics were missing or stale (a new or bulk-loaded database) had the planner price
        # an index of open tasks by department like the id's unique index, and take it: every decision then
        # walked all the department's open tasks (bench run J: 77–249 pages per call; by id, a handful).
        q = update(t).where(t.c.id == bindparam("w_task_id"), t.c.state.is_not_distinct_from(OPEN))
        if by_department:
            q = q.where(t.c.department == bindparam("w_department"))
        if by_kind:
            q = q.where(t.c.stage_kind != bindparam("w_not_kind"))
        if leaves_room:
            s = Stage.__table__
            q = q.where(select(s.c.id).where(s.c.id == t.c.stage_id, s.c.completed_at.is_(None),
                                             s.c.decided + literal_column("1") < s.c.tasks_total).exists())
        q = q.values({c: bindparam(prefix + c, type_=t.c[c].type) for c in columns}).returning(*t.c)
        _decide_statements[(by_department, by_kind, columns, prefix, leaves_room)] = q
    return q


async def decide_task_if(session: AsyncSession, task_id: str, *, department: str | None, not_kind: str | None,
                         values: dict[str, Any]) -> Row[Any] | None:
    """Compare-and-set of a decision in one `UPDATE … RETURNING`: only an open task (of `department` when
    given, not of kind `not_kind` when given) changes, and the whole row comes back as the update left it.
    None when nothing matched (the caller reads why)."""
    q = _decide_statement(department is not None, not_kind is not None, tuple(values))
    params = {**values, "w_task_id": task_id}
    if department is not None:
        params["w_department"] = department
    if not_kind is not None:
        params["w_not_kind"] = not_kind
    return (await session.execute(q, params)).one_or_none()


#: What fan-in reads of the stage a decision counts in, and of its case once the count reaches the total: labelled
#: columns of the count's result (the stage and the case both have an `id`).
_FAN_IN_STAGE = ("id", "instance_id", "step_index", "step_key", "lead_department", "on_reject", "tasks_total",
                 "decided", "completed_at")
_FAN_IN_CASE = tuple(c.name for c in ProcessInstance.__table__.c)
_STAGE_LABEL, _CASE_LABEL = "fan_in_stage_", "fan_in_case_"
#: What fan-in reads of a stage's decided tasks (`decided_tasks_of_stage`).
_FAN_IN_TASK = ("seq", "department", "outcome", "reasons", "legal_basis")
_DECIDED_LABEL = "fan_in_decided_tasks"


def _labelled(row: Row[Any], prefix: str, names: tuple[str, ...]) -> SimpleNamespace | None:
    m = row._mapping
    return None if m[prefix + "id"] is None else SimpleNamespace(**{k: m[prefix + k] for k in names})


#: The task's columns a decision's event carries that the decider does not know: the event's payload holds a mark
#: for each (`decision_marks`), which the decision's own statement replaces with the task's value as JSON.
_MARKED = ("application_id", "receipt_number", "department", "step_key")
_TASK_LABEL = "decided_task_"
_OUTBOX_ROW = {"event_id": String, "type": String, "payload": Text, "created_at": UTCDateTime(),
               "published_at": UTCDateTime()}


def decision_marks() -> dict[str, str]:
    """Marks for `_MARKED`, new for each decision: 128 random bits, so no text a decider wrote holds one."""
    nonce = secrets.token_hex(16)
    return {k: f"@yimen-{nonce}-{k}@" for k in _MARKED}


_decide_counted: dict[tuple[bool, bool, tuple[str, ...], bool], Select[Any]] = {}

#: The text of the error `decide_alone`'s statement raises when its count completes the stage: PostgreSQL then rolls
#: the whole statement back, its own transaction.
COMPLETES_STAGE = "yimen: this decision completes stage "


def _decide_counted_statement(by_department: bool, by_kind: bool, columns: tuple[str, ...],
                              alone: bool = False) -> Select[Any]:
    """`decide_task_if`, its event and, for a final decision, `count_decision` with what fan-in reads, in one
    statement (PostgreSQL), built once per form (`_decide_statements`). `alone`: the statement is a transaction of
    its own (`decide_alone`) and fails, changing nothing, when its count completes the stage."""
    key = (by_department, by_kind, columns, alone)
    q = _decide_counted.get(key)
    if q is None:
        s, t, i, o = Stage.__table__, Task.__table__, ProcessInstance.__table__, messaging.outbox
        decided = _decide_statement(by_department, by_kind, columns, "d_", leaves_room=alone).cte("decided")
        # Counted only when the decision matched and is final (a correction request pauses the task). The UPDATE
        # takes the stage row's lock (after the task's: every decision of a stage locks its own task first, so two
        # never wait for each other's in turn): a concurrent decision of the same stage waits for it, and
        # PostgreSQL then re-reads the row it updates (READ COMMITTED), so the count that reaches the total is seen
        # by exactly one transaction, the last one. The case comes with the decision that completes the count
        # (what moves it on), not with every decision; so do the stage's decisions. Those are not read from the
        # tasks: this statement's snapshot predates the commit of a decision it waited for (READ COMMITTED re-reads
        # the locked row alone), so at a fan-in of concurrent decisions it missed one nearly every time. Each count
        # appends its decision to the stage row instead, and the row as re-read under the lock has them all.
        final = select(decided.c.stage_id).where(decided.c.state == literal_column("'decided'")).scalar_subquery()
        entry = select(func.jsonb_build_array(func.jsonb_build_object(
            *(x for k in _FAN_IN_TASK for x in (literal_column(f"'{k}'"), decided.c[k]))))).scalar_subquery()
        counted = (update(s).where(s.c.id == final)
                   .values(decided=s.c.decided + literal_column("1"),
                           decisions=func.coalesce(s.c.decisions, literal_column("'[]'::jsonb")).op("||")(entry))
                   .returning(*(s.c[k] for k in _FAN_IN_STAGE), s.c.decisions).cte("counted"))
        payload: Any = bindparam("e_payload", type_=Text)
        for k in _MARKED:
            payload = func.replace(payload, bindparam(f"m_{k}", type_=Text), cast(func.to_json(decided.c[k]), Text))
        # The events emitted before in the transaction, then the decision's (only if it matched), in that order.
        pending = _rows("ob", _OUTBOX_ROW)
        both = union_all(
            select(*(pending.c[k] for k in _OUTBOX_ROW), literal_column("0").label("part"), pending.c.n),
            select(bindparam("e_event_id", type_=String), bindparam("e_type", type_=String), payload,
                   bindparam("e_created_at", type_=UTCDateTime()), null(), literal_column("1"), literal_column("0"))
            .select_from(decided),
        ).subquery("outbox_new")
        written = insert(o).from_select(
            list(_OUTBOX_ROW), select(*(both.c[k] for k in _OUTBOX_ROW)).order_by(both.c.part, both.c.n)
        ).cte("outbox_rows")
        # The stage's decisions and its case come only with the decision that completes the count.
        complete = counted.c.decided >= counted.c.tasks_total
        decisions = case((complete, counted.c.decisions), else_=null()).label(_DECIDED_LABEL)
        case_ = i.alias("fan_in_case")
        q = (
            select(*(decided.c[c.name].label(_TASK_LABEL + c.name) for c in t.c),
                   *(counted.c[k].label(_STAGE_LABEL + k) for k in _FAN_IN_STAGE),
                   *(case_.c[k].label(_CASE_LABEL + k) for k in _FAN_IN_CASE), decisions)
            .select_from(decided.outerjoin(counted, literal_column("true"))
                         .outerjoin(case_, and_(case_.c.id == counted.c.instance_id, complete)))
            .add_cte(written)
        )
        if alone:
            # The task's UPDATE leaves alone a task whose stage its snapshot saw waiting for this decision only; when
            # a concurrent decision counted meanwhile (the count re-reads the stage row under its lock), the
            # statement fails instead. Not a constant, so the planner cannot fold the cast and fail every
            # execution: an error only when evaluated for a row whose count reached the total.
            failed = cast(literal_column(f"'{COMPLETES_STAGE}'").op("||")(cast(counted.c.id, Text)), Integer)
            q = q.add_columns(case((complete, failed), else_=literal_column("0")).label("fan_in_completes"))
        _decide_counted[key] = q
    return q


async def decide_and_count(session: AsyncSession, task_id: str, *, department: str | None, not_kind: str | None,
                           values: dict[str, Any], event: dict[str, Any], marks: dict[str, str],
                           ) -> tuple[Any, Any, Any, list[Any] | None]:
    """`decide_task_if`, then the decision's event (`event`: its outbox row, whose payload holds `marks` for the
    task's `_MARKED` columns), written after the transaction's pending ones, then, for a final decision,
    `count_decision`. Returns the task as decided (None when nothing matched: the pending events are written all
    the same), the stage as counted (None unless final) and, once its count reached the total, the case and the
    stage's decided tasks in their order as the stage row holds them (`Stage.decisions`; else None, None, and fewer
    than the total for a stage counted before that column existed: fan-in reads them then).

    Why one statement: a decision was two (its UPDATE, whose row the event needs, then the count with the event);
    here the database puts the task's values into the event. The count still comes last, so the stage row's
    lock is held across the commit alone. On SQLite (no data-modifying CTE) the same steps in turn."""
    if dialect_of(session) != "postgresql":
        task = await decide_task_if(session, task_id, department=department, not_kind=not_kind, values=values)
        rows = take_pending(session)
        if task is not None:
            payload = event["payload"]
            for k, mark in marks.items():
                payload = payload.replace(json.dumps(mark), json.dumps(getattr(task, k), ensure_ascii=False))
            rows.append({**event, "payload": payload})
        if rows:
            await session.execute(*outbox_write(session, rows))
        if task is None or task.state != "decided":
            return task, None, None, None
        return task, await count_decision(session, task.stage_id), None, None
    params = _decide_counted_params(task_id, department, not_kind, values, event, marks, take_pending(session))
    q = _decide_counted_statement(department is not None, not_kind is not None, tuple(values))
    row = (await session.execute(q, params)).one_or_none()
    if row is None:
        return None, None, None, None
    m = row._mapping
    task = SimpleNamespace(**{c.name: m[_TASK_LABEL + c.name] for c in Task.__table__.c})
    stage = _labelled(row, _STAGE_LABEL, _FAN_IN_STAGE)
    case = _labelled(row, _CASE_LABEL, _FAN_IN_CASE)
    decided = None
    if case is not None:  # this decision is among them (its count appended it)
        decided = sorted((SimpleNamespace(**t) for t in m[_DECIDED_LABEL] or []), key=lambda t: t.seq)
    return task, stage, case, decided


def _decide_counted_params(task_id: str, department: str | None, not_kind: str | None, values: dict[str, Any],
                           event: dict[str, Any], marks: dict[str, str], pending: list[dict[str, Any]],
                           ) -> dict[str, Any]:
    params: dict[str, Any] = {f"d_{k}": v for k, v in values.items()}
    params["w_task_id"] = task_id
    if department is not None:
        params["w_department"] = department
    if not_kind is not None:
        params["w_not_kind"] = not_kind
    params.update({f"ob_{k}": [r.get(k) for r in pending] for k in _OUTBOX_ROW})
    params.update(e_event_id=event["event_id"], e_type=event["type"], e_payload=event["payload"],
                  e_created_at=event["created_at"])
    params.update({f"m_{k}": json.dumps(marks[k]) for k in _MARKED})
    return params


async def decide_alone(conn: AsyncConnection, task_id: str, *, department: str | None, not_kind: str | None,
                       values: dict[str, Any], event: dict[str, Any], marks: dict[str, str]) -> Any:
    """`decide_and_count` as a transaction of its own on `conn` (PostgreSQL, in autocommit: no BEGIN, no COMMIT,
    and the stage row's lock, which the stage's other decisions wait for, is released when the statement ends rather
    than after a round trip more). Only for a decision that is all its transaction does and that needs nothing
    after it: it fails, changing nothing (PostgreSQL rolls the statement back), when its count completes the stage,
    which fan-in must then move on in the same transaction; so as not to run and roll back, it does not decide a task
    whose stage its snapshot sees waiting for it alone. Returns the task as decided, or None when the statement
    changed nothing: nothing matched, the stage waits for this decision alone, or the count completed the stage (the
    caller decides in a transaction then, where the same statement says which)."""
    params = _decide_counted_params(task_id, department, not_kind, values, event, marks, [])
    q = _decide_counted_statement(department is not None, not_kind is not None, tuple(values), alone=True)
    try:
        row = (await conn.execute(q, params)).one_or_none()
    except DBAPIError as exc:
        if COMPLETES_STAGE in str(exc.orig):
            return None
        raise
    if row is None:
        return None
    m = row._mapping
    return SimpleNamespace(**{c.name: m[_TASK_LABEL + c.name] for c in Task.__table__.c})


async def update_task_if(session: AsyncSession, task_id: str, *, state: str, values: dict[str, Any]) -> bool:
    """Change a task only if it is still in `state`: the guard that makes one decision per task even when
    two arrive at once."""
    res = await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.state == state)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(res.rowcount)


_count_decision = (
    update(Stage.__table__).where(Stage.__table__.c.id == bindparam("w_stage_id"))
    .values(decided=Stage.__table__.c.decided + 1).returning(*Stage.__table__.c)
)


async def count_decision(session: AsyncSession, stage_id: int) -> Row[Any]:
    """Add one final decision to the stage and return it fresh (as columns). The UPDATE takes the stage row's
    lock, so concurrent decisions of one stage are counted one after the other and the last one sees them all.
    Built once (`_decide_statements`)."""
    return (await session.execute(_count_decision, {"w_stage_id": stage_id})).one()  # the updated row is the fresh one


_complete_stage = (
    update(Stage.__table__)
    .where(Stage.__table__.c.id == bindparam("w_stage_id"), Stage.__table__.c.completed_at.is_(None))
    .values(completed_at=bindparam("w_at", type_=Stage.__table__.c.completed_at.type),
            outcome=bindparam("w_outcome", type_=Stage.__table__.c.outcome.type))
)


async def complete_stage(session: AsyncSession, stage_id: int, *, outcome: str, at: datetime) -> bool:
    """Set `completed_at` once: True only for the transaction that did it (built once)."""
    res = await session.execute(_complete_stage, {"w_stage_id": stage_id, "w_at": at, "w_outcome": outcome})
    return res.rowcount == 1


_complete_stage_and_case: Select[Any] | None = None


def _complete_stage_and_case_statement() -> Select[Any]:
    global _complete_stage_and_case
    if _complete_stage_and_case is None:
        s, i = Stage.__table__, ProcessInstance.__table__
        completed = _complete_stage.returning(s.c.id).cte("completed")
        # The case is decided only by the transaction that completed the stage (the stage row's lock is held).
        finished = (
            update(i).where(i.c.id == bindparam("w_instance_id"), i.c.decided_at.is_(None),
                            select(completed.c.id).exists())
            .values({c: bindparam(f"i_{c}", type_=i.c[c].type) for c in _FINISH_COLUMNS})
            .returning(i.c.id).cte("finished")
        )
        # The transaction's pending events (the completion's among them) go in with it, not at commit.
        _complete_stage_and_case = select(
            select(func.count()).select_from(completed).scalar_subquery(),
            select(func.count()).select_from(finished).scalar_subquery(),
        ).add_cte(outbox_insert(messaging.outbox).cte("outbox_rows"))
    return _complete_stage_and_case


#: What deciding a case sets on it.
_FINISH_COLUMNS = ("state", "outcome", "decided_at", "reasons", "legal_basis")


async def complete_stage_and_case(session: AsyncSession, stage_id: int, instance_id: int, *, outcome: str,
                                  at: datetime, case: dict[str, Any]) -> tuple[bool, bool]:
    """`complete_stage` and, only when that completed it, `finish_instance` with `case` (its `_FINISH_COLUMNS`):
    whether each changed a row. The events emitted so far in the transaction are written with them, so the caller
    emits what the completion announces first and must not commit it when either is False. One statement on
    PostgreSQL; on SQLite the two in turn, the events at commit."""
    if dialect_of(session) != "postgresql":
        if not await complete_stage(session, stage_id, outcome=outcome, at=at):
            return False, False
        return True, await finish_instance(session, instance_id, **case)
    _, params = outbox_write(session, take_pending(session))
    params.update({"w_stage_id": stage_id, "w_at": at, "w_outcome": outcome, "w_instance_id": instance_id,
                   **{f"i_{c}": case[c] for c in _FINISH_COLUMNS}})
    completed, finished = (await session.execute(_complete_stage_and_case_statement(), params)).one()
    return bool(completed), bool(finished)


async def cancel_instance(session: AsyncSession, instance_id: int, at: datetime) -> bool:
    res = await session.execute(
        update(ProcessInstance)
        .where(ProcessInstance.id == instance_id, ProcessInstance.state == "running")
        .values(state="withdrawn", decided_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(res.rowcount)


async def get_stage(session: AsyncSession, stage_id: int) -> Stage:
    q = select(Stage).where(Stage.id == stage_id).execution_options(populate_existing=True)
    return (await session.execute(q)).scalar_one()


def task_list_query(*, department: str | None, state: str | None, item_code: str | None) -> Select[Any]:
    q = select(Task)
    if department:
        q = q.where(Task.department == department)
    if state:
        q = q.where(Task.state == (OPEN if state == "open" else state))
    if item_code:
        q = q.where(Task.item_code == item_code)
    return q


async def overdue_deemed_tasks(session: AsyncSession, now: datetime, limit: int = 100) -> list[Task]:
    q = (
        select(Task)
        .join(Stage, Stage.id == Task.stage_id)
        .where(Task.state == OPEN, Task.due_at < now, Stage.deemed_approval_on_timeout.is_(True))
        .order_by(Task.due_at)
        .limit(limit)
    )
    return list((await session.execute(q)).scalars())


# ---- webhooks -------------------------------------------------------------------------------------------


async def get_webhook(session: AsyncSession, department: str) -> DepartmentWebhook | None:
    q = select(DepartmentWebhook).where(DepartmentWebhook.department == department)
    return (await session.execute(q.execution_options(populate_existing=True))).scalar_one_or_none()


async def save_webhook(session: AsyncSession, **values: Any) -> DepartmentWebhook:
    existing = await get_webhook(session, values["department"])
    if existing is None:
        return await add(session, DepartmentWebhook(**values))
    for k, v in values.items():
        setattr(existing, k, v)
    await session.flush()
    return existing


async def add_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Several deliveries in one statement (a stage's fan-out)."""
    if rows:
        await session.execute(insert_ignore(session, WebhookDelivery.__table__), rows)


_enabled_webhooks = (
    select(DepartmentWebhook.__table__.c.department)
    .where(DepartmentWebhook.__table__.c.department.in_(bindparam("w_departments", expanding=True)),
           DepartmentWebhook.__table__.c.enabled.is_(True))
)


async def enabled_webhooks(session: AsyncSession, departments: Iterable[str]) -> set[str]:
    """Which of `departments` have an enabled endpoint, in one read (built once, like `_decide_statements`)."""
    return set((await session.execute(_enabled_webhooks, {"w_departments": sorted(set(departments))})).scalars())


_enabled_endpoints = (
    select(DepartmentWebhook.__table__.c.department, DepartmentWebhook.__table__.c.url,
           DepartmentWebhook.__table__.c.secret)
    .where(DepartmentWebhook.__table__.c.department.in_(bindparam("w_departments", expanding=True)),
           DepartmentWebhook.__table__.c.enabled.is_(True))
)


async def enabled_endpoints(session: AsyncSession, departments: Iterable[str]) -> dict[str, tuple[str, str]]:
    """`enabled_webhooks` with each endpoint's URL and secret."""
    rows = await session.execute(_enabled_endpoints, {"w_departments": sorted(set(departments))})
    return {department: (url, secret) for department, url, secret in rows}


async def delivery_ids(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The ids of deliveries by (department, event id), their unique key."""
    t = WebhookDelivery.__table__
    rows = await session.execute(select(t.c.department, t.c.event_id, t.c.id).where(
        t.c.department.in_({k[0] for k in keys}), t.c.event_id.in_({k[1] for k in keys})))
    wanted = set(keys)
    return {(d, e): i for d, e, i in rows if (d, e) in wanted}


#: How many due deliveries one round of the sender claims at most.
CLAIM_LIMIT = 20

#: The sender's statements, built once per dialect and limit (see `_decide_statements`).
_claim_statements: dict[tuple[str, int], Update] = {}


def _claim_statement(dialect: str, limit: int) -> Update:
    q = _claim_statements.get((dialect, limit))
    if q is None:
        t = WebhookDelivery.__table__
        now = bindparam("w_now", type_=t.c.next_attempt_at.type)
        # The pending deliveries' own index in its order (`ix_webhook_delivery_pending_due`): the scan stops at
        # the limit, and a delivered row is no longer in it.
        due = (
            select(t.c.id)
            .where(t.c.state == PENDING, t.c.next_attempt_at <= now)
            .order_by(t.c.next_attempt_at, t.c.id)
            .limit(limit)
        )
        if dialect == "postgresql":
            # Taken once, as an array, before the UPDATE finds its rows by primary key: as `id IN (subquery)`
            # the planner could join the subquery with a second scan of the queue, or run it again. The rows
            # are locked by it, the due condition checked again as each is locked (a row another replica
            # claimed meanwhile is skipped), so nothing can change them before the UPDATE.
            ids = func.array(due.with_for_update(skip_locked=True).scalar_subquery(), type_=ARRAY(t.c.id.type))
            chosen = t.c.id == any_(ids)
        else:
            chosen = t.c.id.in_(due.scalar_subquery())  # one statement of the one writer: nothing runs between
        q = (
            update(t)
            .where(chosen)
            .values(next_attempt_at=bindparam("w_until", type_=t.c.next_attempt_at.type))
            .returning(t.c.id, t.c.department, t.c.event_id, t.c.payload, t.c.attempts,
                       *(_endpoint(t, k) for k in ("url", "secret", "enabled")))
        )
        _claim_statements[(dialect, limit)] = q
    return q


def _endpoint(deliveries: Any, column: str) -> Any:
    """The delivery's department's endpoint `column` (null without one), read with the claim: the endpoint as it
    is when the delivery is sent, in the claim's one statement."""
    w = DepartmentWebhook.__table__
    # The delivery's column spelled with its table: SQLite writes RETURNING's own columns unqualified, and an
    # unqualified `department` inside the subquery would be the endpoint's own (any endpoint's row would match).
    delivery_department = literal_column(f"{deliveries.name}.{deliveries.c.department.name}")
    return (select(w.c[column]).where(w.c.department == delivery_department).scalar_subquery()
            .label(f"endpoint_{column}"))


async def claim_due_deliveries(session: AsyncSession, now: datetime, lease: timedelta,
                               limit: int = CLAIM_LIMIT) -> list[Row[Any]]:
    """Claim the due deliveries in one statement: push their next attempt past the lease and return them (the
    columns sending needs, and their endpoint's `endpoint_url`, `endpoint_secret`, `endpoint_enabled`). Replicas skip each other's locked rows (PostgreSQL), so two never send the same
    delivery at once."""
    dialect = session.bind.dialect.name if session.bind is not None else ""
    q = _claim_statement(dialect, limit)
    return sorted((await session.execute(q, {"w_now": now, "w_until": now + lease})).all(), key=lambda d: d.id)


_add_attempts = insert(WebhookAttempt.__table__)


async def add_attempts(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_add_attempts, rows)


_ATTEMPT_COLUMNS = {"delivery_id": BigInteger, "attempted_at": UTCDateTime(), "url": String, "status_code": Integer,
                    "error": Text, "duration_ms": Integer}
_attempts_and_delivered: Select[Any] | None = None


def _attempts_and_delivered_statement() -> Select[Any]:
    """A round's attempts and its deliveries that answered alike, in one statement (PostgreSQL), built once."""
    global _attempts_and_delivered
    if _attempts_and_delivered is None:
        a, d = WebhookAttempt.__table__, WebhookDelivery.__table__
        rows = _rows("attempt_rows", _ATTEMPT_COLUMNS)
        attempted = insert(a).from_select(
            list(_ATTEMPT_COLUMNS), select(*(rows.c[k] for k in _ATTEMPT_COLUMNS)).order_by(rows.c.n)
        ).returning(a.c.id).cte("attempted")
        delivered = (
            update(d).where(d.c.id == any_(bindparam("w_ids", type_=ARRAY(d.c.id.type))))
            .values(state=literal_column("'delivered'"), attempts=d.c.attempts + literal_column("1"),
                    delivered_at=bindparam("w_at", type_=d.c.delivered_at.type),
                    last_status=bindparam("w_status", type_=d.c.last_status.type), last_error=literal_column("NULL"))
            .returning(d.c.id).cte("delivered")
        )
        _attempts_and_delivered = select(select(func.count()).select_from(attempted).scalar_subquery(),
                                         select(func.count()).select_from(delivered).scalar_subquery())
    return _attempts_and_delivered


async def record_round(session: AsyncSession, attempts: list[dict[str, Any]], delivered: Sequence[int], *,
                       at: datetime, status: int | None) -> None:
    """`add_attempts` and `mark_delivered` of the deliveries that answered `status`: one statement on PostgreSQL,
    the two in turn on SQLite."""
    if dialect_of(session) != "postgresql":
        await add_attempts(session, attempts)
        await mark_delivered(session, delivered, at=at, status=status)
        return
    params: dict[str, Any] = {f"attempt_rows_{k}": [r[k] for r in attempts] for k in _ATTEMPT_COLUMNS}
    params.update(w_ids=list(delivered), w_at=at, w_status=status)
    await session.execute(_attempts_and_delivered_statement(), params)


async def update_deliveries(session: AsyncSession, delivery_ids: Sequence[int], **values: Any) -> None:
    """The same change to several deliveries (values may be SQL expressions of the row, e.g. attempts + 1)."""
    if delivery_ids:
        await session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id.in_(list(delivery_ids))).values(**values)
            .execution_options(synchronize_session=False)
        )


_mark_delivered = (
    update(WebhookDelivery.__table__)
    .where(WebhookDelivery.__table__.c.id.in_(bindparam("w_ids", expanding=True)))
    .values(state="delivered", attempts=WebhookDelivery.__table__.c.attempts + 1,
            delivered_at=bindparam("w_at", type_=WebhookDelivery.__table__.c.delivered_at.type),
            last_status=bindparam("w_status", type_=WebhookDelivery.__table__.c.last_status.type), last_error=None)
)


async def mark_delivered(session: AsyncSession, delivery_ids: Sequence[int], *, at: datetime,
                         status: int | None) -> None:
    """Deliveries that answered `status` alike: delivered, one more attempt (built once, every round has one)."""
    if delivery_ids:
        await session.execute(_mark_delivered, {"w_ids": list(delivery_ids), "w_at": at, "w_status": status})


async def update_delivery(session: AsyncSession, delivery_id: int, **values: Any) -> None:
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def delivery_list_query(department: str, state: str | None) -> Select[Any]:
    q = select(WebhookDelivery).where(WebhookDelivery.department == department)
    if state:
        q = q.where(WebhookDelivery.state == state)
    return q


async def attempts_of(session: AsyncSession, delivery_ids: Sequence[int]) -> dict[int, list[WebhookAttempt]]:
    if not delivery_ids:
        return {}
    q = select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids)).order_by(WebhookAttempt.id)
    out: dict[int, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    for a in (await session.execute(q)).scalars():
        out[a.delivery_id].append(a)
    return out


async def replay_deliveries(session: AsyncSession, department: str, *, since: datetime | None,
                            now: datetime) -> int:
    """Queue again what was missed (endpoint absent or disabled) or given up on."""
    q = update(WebhookDelivery).where(
        WebhookDelivery.department == department,
        or_(WebhookDelivery.state == "missed", WebhookDelivery.state == "failed"),
    )
    if since is not None:
        q = q.where(WebhookDelivery.created_at >= since)
    res = await session.execute(
        q.values(state="pending", attempts=0, next_attempt_at=now).execution_options(synchronize_session=False)
    )
    return res.rowcount or 0


async def miss_pending(session: AsyncSession, department: str) -> int:
    """A disabled endpoint gets nothing: what was waiting becomes `missed` (replayable once re-enabled)."""
    res = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.department == department, WebhookDelivery.state == "pending")
        .values(state="missed")
        .execution_options(synchronize_session=False)
    )
    return res.rowcount or 0


async def pending_count(session: AsyncSession, department: str) -> int:
    q = select(func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.department == department, WebhookDelivery.state == "pending"
    )
    return int((await session.execute(q)).scalar_one())


async def save_calendar_year(session: AsyncSession, *, year: int, holidays: list[str], workdays: list[str],
                             source: str, loaded_at: datetime) -> None:
    row = await session.get(CalendarYear, year)
    if row is None:
        session.add(CalendarYear(year=year, holidays=holidays, workdays=workdays, source=source, loaded_at=loaded_at))
    else:
        row.holidays, row.workdays, row.source, row.loaded_at = holidays, workdays, source, loaded_at
    await session.flush()


async def calendar_years(session: AsyncSession) -> list[CalendarYear]:
    return list((await session.execute(select(CalendarYear))).scalars())


async def open_tasks_due_from(session: AsyncSession, since: datetime) -> list[tuple[Task, Stage, ProcessInstance]]:
    """Open tasks (and their stage and case) whose due date is at or after `since`."""
    rows = await session.execute(
        select(Task, Stage, ProcessInstance)
        .join(Stage, Stage.id == Task.stage_id).join(ProcessInstance, ProcessInstance.id == Task.instance_id)
        .where(Task.state == OPEN, Task.due_at >= since)
    )
    return [(t, s, i) for t, s, i in rows.all()]
