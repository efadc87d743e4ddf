"""A fetched batch of events applied together (`on_events`: the handlers in order, the batch's messages and feed
steps written in one statement) leaves exactly what the same events leave applied one at a time, wherever the
batches are cut: the messages (recipients, channels, texts, numbers, statuses), the live feed in the same order,
the cases, certificates and cards. And still exactly once: a batch delivered again, whole or in part, and events
applied again behind the inbox's back, make no second message and no second feed step."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from services.notify.events.handlers import CONSUMERS
from services.notify.service import current_config, on_events, seed_templates, set_config
from services.notify.store import repo
from services.notify.store.tables import (
    Base,
    card_seen,
    case_contact,
    certificate,
    department,
    feed_entry,
    message,
    messaging,
)
from services.notify.tests import helpers as h
from shared.bus import Bus
from shared.db import Database
from shared.events import Event, new_event
from shared.messaging import InboxConsumer
from shared.testing import recording_statements


@pytest_asyncio.fixture
async def two(databases) -> AsyncIterator[tuple[Database, Database]]:
    before = current_config()
    set_config(before.model_copy(update={
        "push_webhook_url": "http://127.0.0.1:9/push", "department_contacts": {"LD-WJJ": "13700137000"},
        "quiet_start": "00:00", "quiet_end": "00:00"}))
    dbs = []
    for name in ("notify_one_by_one", "notify_batched"):
        db = Database(databases.url(name), info={"messaging": messaging, "service": "notify"})
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with db.transaction() as s:
            await seed_templates(s)
            await repo.upsert_department(s, "LD-WJJ", "卫生健康局")
            # One person chose the inbox only for payment notices and gave their own number.
            await repo.put_preference(s, "p-pref", channels={"payment_due": ["inbox"]}, quiet_start="00:00",
                                      quiet_end="00:00", phone="13800138999")
        dbs.append(db)
    yield dbs[0], dbs[1]
    for db in dbs:
        await db.dispose()
    set_config(before)


def consumer(db: Database) -> InboxConsumer:
    """Notify's own consumer, applying through the inbox as the worker does (the bus only names subjects when a
    worker fetches; these tests hand it the events)."""
    return InboxConsumer(db, messaging, CONSUMERS[0], Bus("nats://127.0.0.1:1", prefix="unused"))


def _ev(type_: str, subject: str, data: dict[str, Any]) -> Event:
    return new_event(type_, source="/yimen/" + type_.split(".")[1], subject=subject, data=data)


def _events(*, late_cases: bool = False) -> list[Event]:
    """Three cases interleaved: a five-department one with a correction round, whose item is renamed by the
    payment request between two of its departments' steps; an organisation's case; a person with their own
    channel choices and number. A department renamed in between, a card, an anomaly, a certificate issued and
    revoked, steps of a case notify never learned of, and the same payload again under a new id."""
    a, b, c, d = h.new_id("A"), h.new_id("B"), h.new_id("C"), h.new_id("D")
    tasks = [h.new_id("t") for _ in range(5)]
    depts = ["LD-WJJ", "LD-ZSJ", "LD-SCJGJ", "LD-ZRZYJ", "LD-ZJJ"]
    renamed_payment = h.payment_requested(a, "p-a")
    renamed_payment.data["item_name"] = "食品经营许可（含连锁）"
    out = [
        h.submitted(a, "p-a"),
        h.accepted(a, "p-a", "13900139001"),
        h.org_accepted(b, "91441781MA0000000X", "agent-b", "13900139002"),
        *(h.task_assigned(a, t, d) for t, d in zip(tasks, depts, strict=True)),
        h.accepted(c, "p-pref", None),
        h.correction_requested(a, tasks[0], depts[0]),
        h.task_assigned(b, h.new_id("t"), "LD-WJJ"),
        _ev("yimen.catalog.department.upserted", "LD-ZSJ", {"code": "LD-ZSJ", "name": "政务服务数据管理局"}),
        _ev("yimen.intake.application.corrected", a, {"application_id": a}),
        _ev("yimen.workflow.task.reopened", a, {"application_id": a, "task_id": tasks[0]}),
        *(_decided_task(a, t, d) for t, d in zip(tasks[:2], depts[:2], strict=True)),
        renamed_payment,
        *(_decided_task(a, t, d) for t, d in zip(tasks[2:], depts[2:], strict=True)),
        h.task_assigned(h.new_id("Z"), h.new_id("t")),  # a case notify never learned of
        h.card(a, "yellow"),
        h.payment_requested(c, "p-pref"),
        h.decided(a, "p-a"),
        h.anomaly(),
        h.ready_for_collection(a, "p-a"),
        h.decided(b, "agent-b", "rejected"),
        h.delivered(a),
        h.certificate_issued(a, "CERT-" + a, h.date.today()),
        h.card(b, "red"),
        _ev("yimen.datashare.certificate.revoked", "CERT-" + a, {"certificate_number": "CERT-" + a}),
        h.delivered(b),
    ]
    if late_cases:
        # Certificates whose holder is read from the holder's latest case (issued by hand; or for an application
        # notify learns of only after): a case upserted after them in a batch must not change whom they name.
        # (Applied again, the latter names the case it then has: not for a replay.)
        out += [h.certificate_issued(None, "CERT-hand-" + a, h.date.today()),
                h.certificate_issued(d, "CERT-" + d, h.date.today()), h.submitted(d, "p-d"),
                h.accepted(d, "p-d", "13900139004")]
    again = out[8]  # the same payload under another id (a publisher's retry): a step of its own, as one by one
    out.insert(9, new_event(again.type, source=again.source, subject=again.subject, data=dict(again.data)))
    return out


def _decided_task(app: str, task: str, department: str) -> Event:
    e = h.correction_requested(app, task, department)
    e.data.update(outcome="approve", reasons=None, missing=[])
    return e


async def _state(db: Database, *, feed_in_order: bool = True) -> dict[str, Any]:
    async with db.transaction() as s:
        messages = sorted(tuple(str(v) for v in r) for r in (await s.execute(select(
            message.c.event_id, message.c.kind, message.c.channel, message.c.recipient_kind, message.c.recipient_id,
            message.c.application_id, message.c.title, message.c.body, message.c.status, message.c.destination,
            message.c.reason, message.c.urgent, message.c.template_version))).all())
        feed = [(r.event_id, r.person_id, r.organisation_id, r.application_id, r.step, r.data)
                for r in (await s.execute(select(feed_entry).order_by(feed_entry.c.seq))).all()]
        if not feed_in_order:
            feed = sorted(feed, key=repr)
        cases = sorted(tuple(str(v) for k, v in r._mapping.items() if k != "updated_at")
                       for r in (await s.execute(select(case_contact))).all())
        certificates = sorted(tuple(r) for r in (await s.execute(select(certificate))).all())
        cards = sorted(tuple(str(v) for v in r) for r in (await s.execute(select(card_seen))).all())
        departments = sorted(tuple(r) for r in (await s.execute(select(department))).all())
    return dict(messages=messages, feed=feed, cases=cases, certificates=certificates, cards=cards,
                departments=departments)


def _cuts(n: int, seed: int | None) -> list[tuple[int, int]]:
    """All in one batch, or cut at random places (a batch ends anywhere: at a fetch's size, or what had arrived)."""
    cuts = sorted(random.Random(seed).sample(range(1, n), min(6, n - 1))) if seed is not None else []
    return list(zip([0, *cuts], [*cuts, n], strict=True))


async def _apply_both(two: tuple[Database, Database], events: list[Event], seed: int | None) -> None:
    one_by_one, batched = consumer(two[0]), consumer(two[1])
    for e in events:
        assert await one_by_one.apply(e)
    for start, end in _cuts(len(events), seed):
        assert await batched.apply_batch(events[start:end]) == end - start


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
async def test_events_applied_in_batches_leave_what_they_leave_one_at_a_time(two, seed):
    events = _events(late_cases=True)
    await _apply_both(two, events, seed)
    expected, got = await _state(two[0]), await _state(two[1])
    # The scenario does what it says: messages on every channel, steps copying the renamed item from the payment
    # request on, the renamed department, the person's own choices.
    assert {m[2] for m in expected["messages"]} == {"inbox", "sms", "push"}
    a = events[0].data["application_id"]
    names = [f[5]["item_name"] for f in expected["feed"] if f[3] == a]
    assert names.count("食品经营许可（含连锁）") >= 4 and names.index("食品经营许可（含连锁）") > 5, names
    assert any("政务服务数据管理局" in f[5]["title"] for f in expected["feed"])
    pref_payment = [m for m in expected["messages"] if m[4] == "p-pref" and m[1] == "payment_due"]
    assert [m[2] for m in pref_payment] == ["inbox"], pref_payment
    assert any(m[4] == "p-pref" and m[2] == "sms" and m[9] == "13800138999" for m in expected["messages"])
    for key in expected:
        assert got[key] == expected[key], key


@pytest.mark.parametrize("seed", [None, 4])
async def test_a_case_changed_behind_this_process_s_memory_is_read_again_in_a_batch(two, seed):
    """Another replica updated a case this process remembers: steps made from the memory are checked against
    the row and, where it changed, made again from the case read, one at a time and in a batch alike. (In a
    batch those come after the batch's other steps: their order is not one across replicas anyway.)"""
    events = _events(late_cases=True)
    await _apply_both(two, events[:5], None)
    a = events[0].data["application_id"]
    for db in two:
        async with db.transaction() as s:
            await s.execute(update(case_contact).where(case_contact.c.application_id == a)
                            .values(item_name="另一副本写入的事项名"))
    await _apply_both(two, events[5:], seed)
    expected, got = await _state(two[0], feed_in_order=False), await _state(two[1], feed_in_order=False)
    assert "另一副本写入的事项名" in [f[5]["item_name"] for f in expected["feed"] if f[3] == a]
    for key in expected:
        assert got[key] == expected[key], key


async def test_a_batch_delivered_again_makes_no_second_message_or_step(two):
    _, db = two
    events = _events()
    c = consumer(db)
    for start, end in _cuts(len(events), 5):
        await c.apply_batch(events[start:end])
    once = await _state(db)
    assert once["messages"] and once["feed"]
    # The whole stream again in other cuts, with duplicates inside batches: the inbox skips every event.
    for start, end in _cuts(len(events), 6):
        assert await c.apply_batch(events[start:end] + events[start:end]) == 0
    # And past the inbox (a replay after its rows were purged): the unique keys make nothing a second time.
    for start, end in _cuts(len(events), 7):
        async with db.transaction() as s:
            await on_events(s, events[start:end])
    assert await _state(db) == once
    # A batch mixing new events with old ones applies only the new ones.
    fresh = h.new_id("N")
    new = [h.submitted(fresh, "p-n"), h.accepted(fresh, "p-n", "13900139003")]
    assert await c.apply_batch([*events[:3], *new]) == 2
    after = await _state(db)
    assert [f[0] for f in after["feed"]] == [f[0] for f in once["feed"]] + [e.id for e in new]
    added = sorted(set(after["messages"]) - set(once["messages"]))
    assert len(after["messages"]) == len(once["messages"]) + len(added)
    assert sorted((m[0], m[2]) for m in added) == sorted((new[1].id, ch) for ch in ("inbox", "sms", "push"))


async def test_a_batch_reads_its_cases_in_one_statement_and_an_accepted_notice_no_preference_apart(two):
    """What a batch's handlers read of their cases is read together, until the batch upserts a case; its
    certificates go in with its messages (PostgreSQL); and on PostgreSQL the upsert of an accepted case returns
    the applicant's preference and known number beside it. (The batched equivalence above shows that this leaves
    what one event at a time leaves.)"""
    db = two[1]
    pg = db.engine.dialect.name == "postgresql"
    a, b = h.new_id("A"), h.new_id("B")
    with recording_statements(db.engine) as log:
        assert await consumer(db).apply_batch([h.accepted(a, "p-a", "13900139001"), h.accepted(b, "p-pref", None)]) == 2
    apart = [s for s in log.statements if s.startswith("SELECT") and "FROM PREFERENCE" in s]
    assert len(apart) == (0 if pg else 2), apart
    with recording_statements(db.engine) as log:
        assert await consumer(db).apply_batch([h.decided(a, "p-a"), h.card(a, "yellow"), h.delivered(b),
                                               h.certificate_issued(a, "CERT-" + a, h.date.today())]) == 4
    reads = [s for s in log.statements if s.startswith("SELECT") and "FROM CASE_CONTACT" in s]
    assert len(reads) == 1, reads
    apart = [s for s in log.statements if s.startswith("INSERT INTO CERTIFICATE")]
    assert len(apart) == (0 if pg else 1), apart
    async with db.transaction() as s:
        held = (await s.execute(select(certificate.c.person_id).where(
            certificate.c.certificate_number == "CERT-" + a))).scalar_one()
    assert held == "p-a"
    state = await _state(db)
    assert {m[1] for m in state["messages"] if m[5] in (a, b)} >= {
        "application_decided", "application_delivered", "card_raised"}


def test_a_gathered_batch_holds_several_cases_events():
    """Issue 14: notify's batch is what arrives within its gathering window, not the worker's default of 20
    messages: a five-department case alone is 17 events notify applies, so at 20 every case cost a transaction and
    its statements (bench, 10 clients: 1.0 per case)."""
    from shared.bus import Bus
    from shared.messaging import InboxConsumer

    worker = InboxConsumer(None, messaging, CONSUMERS[0], Bus("nats://127.0.0.1:1", prefix="unused")).worker()  # type: ignore[arg-type]
    assert worker.gather > 0
    assert worker.batch >= 10 * 17, "ten five-department cases' events in one batch"


async def test_a_batch_s_inbox_lists_newest_first_in_the_stream_s_order(two):
    """Messages one batch makes are written in one moment; their order in the inbox (newest first by `created_at`,
    then `id`) is still the order they were made in: a case's delivery above its acceptance, every time."""
    db = two[1]
    for _ in range(8):  # random ids decided the order before: half the batches came out the other way
        app, person = h.new_id("O"), h.new_id("p")
        assert await consumer(db).apply_batch([h.accepted(app, person, None), h.delivered(app)]) == 2
        async with db.transaction() as s:
            rows, _ = await repo.inbox_page(s, [("person", person)], unread=None, cursor=None, limit=10)
        # The delivery makes two (its notice, then the invitation to rate the service), the acceptance one.
        assert [r.kind for r in rows] == ["rating_invited", "application_delivered", "application_accepted"]
