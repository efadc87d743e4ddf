"""The use cases of notify (通知推送): turn what happened on the bus into messages and live-stream steps,
let people choose channels and quiet hours, let an admin edit templates, take the gateway's receipts, and
run the daily reminders. One function per thing a caller can do; each runs inside its caller's transaction."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from services.notify.config import NotifyConfig
from services.notify.domain import messages as msgs
from services.notify.domain.schedule import QuietHours, chinese_date, chinese_moment, local_day, parse_hhmm
from services.notify.events import contracts as c
from services.notify.store import repo
from shared.errors import Conflict, NotFound, PreconditionFailed, PreconditionRequired, invalid
from shared.events import Event
from shared.principal import ADMIN, SUPERVISOR, Principal
from shared.privacy import mask_text
from shared.types import utcnow
from shared.workdays import WorkCalendar

log = logging.getLogger("yimen.notify")

_config = NotifyConfig()
_calendar = WorkCalendar()
MOBILE = re.compile(r"^1[3-9]\d{9}$")


def set_config(config: NotifyConfig) -> None:
    global _config
    _config = config


def current_config() -> NotifyConfig:
    return _config


#: What a commit of notify's may wake: `feed` the open live streams (new feed rows), `dispatch` the senders
#: (SMS or push rows due now). Notify's own signals rather than the database's commit signal: that one is set
#: only by a commit that wrote events, and notify writes none; and a feed row has nothing to send.
FEED, DISPATCH = "feed", "dispatch"
_WAKE = "notify_wake"
_signals: weakref.WeakKeyDictionary[Any, dict[str, list[asyncio.Event]]] = weakref.WeakKeyDictionary()


def commit_signal(engine: AsyncEngine, what: str) -> asyncio.Event:
    """An event set after each commit on `engine` that wrote what `what` names; its waiter clears it."""
    signal = asyncio.Event()
    _signals.setdefault(engine.sync_engine, {}).setdefault(what, []).append(signal)
    return signal


def _wake(session: AsyncSession, *what: str) -> None:
    session.info.setdefault(_WAKE, set()).update(what)


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    what = session.info.pop(_WAKE, None)
    if what and session.bind is not None:
        by_kind = _signals.get(session.bind, {})
        for w in what:
            for signal in by_kind.get(w, ()):
                signal.set()


@sa_event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_WAKE, None)


def holder_hash(holder_id: str | None) -> str | None:
    return hashlib.sha256(holder_id.encode()).hexdigest() if holder_id else None


def mobile_or_none(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    v = value.strip().replace(" ", "").replace("-", "")
    if v.startswith("+86"):
        v = v[3:]
    return v if MOBILE.match(v) else None


# --- recipients -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    kind: str  # person | organisation | department | role | contact
    id: str

    @property
    def audience(self) -> str:
        return f"{self.kind}:{self.id}"


def recipients_of(p: Principal) -> list[tuple[str, str]]:
    """Every address whose messages this principal reads: itself, its organisation, whom it acts for, its
    department (staff and department systems), and the supervisors' digest."""
    out = [("person", p.subject)]
    if p.organisation:
        out.append(("organisation", p.organisation))
    if p.acting_for:
        out.append(("person" if p.acting_for.kind == "person" else "organisation", p.acting_for.subject))
    if p.department and (p.is_staff or p.is_department_system):
        out.append(("department", p.department))
    if p.has(SUPERVISOR):
        out.append(("role", "supervisor"))
    return list(dict.fromkeys(out))


def audiences_of(p: Principal) -> tuple[list[str], list[str]]:
    """The people and organisations whose cases this principal follows live."""
    mine = recipients_of(p)
    return [i for k, i in mine if k == "person"], [i for k, i in mine if k == "organisation"]


def _applicant(applicant: c.Applicant | dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(person account to address, organisation credit code) of an event's applicant."""
    if isinstance(applicant, dict):
        try:
            applicant = c.Applicant.model_validate(applicant)
        except ValueError:  # a decision event's applicant without an id: nobody to address from it
            return None, None
    if applicant is None or not applicant.id:
        return None, None
    a = applicant
    if a.kind == "organisation":
        return a.agent_id, a.id
    return a.agent_id or a.id, None


# --- making messages --------------------------------------------------------------------------------------


async def template_of(session: AsyncSession, code: str) -> tuple[int, dict[str, Any]]:
    row = await repo.current_template(session, code)
    if row is None:
        return 0, msgs.KINDS[code].template()
    return row.version, row.channels


#: `pref` not given: the person's preference is read when it matters (a case read by `repo.case` carries it).
_READ: Any = object()


def _pref_beside(case: Any) -> Any:
    """The applicant's preference as read beside the case ((channels, phone), or None), or `_READ`."""
    if case is not None and "pref_person" in case._fields:
        return (case.pref_channels, case.pref_phone) if case.pref_person is not None else None
    return _READ


def _known_phone_beside(case: Any) -> Any:
    """The applicant's most recent number on any form as read beside the case (or None), or `_READ`."""
    return case.known_phone if case is not None and "known_phone" in case._fields else _READ


async def _channels_for(session: AsyncSession, kind: msgs.Kind, recipient: Recipient,
                        pref: Any = _READ) -> tuple[set[str], str | None]:
    """The channels a recipient gets this kind on, and the person's own SMS number if they gave one."""
    chosen: set[str] = set(kind.default_channels)
    own_phone = None
    if recipient.kind == "person":
        if pref is _READ:
            row = await repo.preference_of(session, recipient.id)
            pref = (row.channels, row.phone) if row is not None else None
        if pref is not None:
            channels, own_phone = pref
            if kind.code in (channels or {}):
                chosen = set(channels[kind.code])
    chosen.add("inbox")
    if not _config.push_webhook_url:
        chosen.discard("push")
    return chosen, own_phone


async def _messages(session: AsyncSession, *, event_id: str, kind_code: str, recipient: Recipient,
                    values: dict[str, Any], application_id: str | None = None, phone: str | None = None,
                    urgent: bool | None = None, extra_sms: list[str] | None = None,
                    pref: Any = _READ, known_phone: Any = _READ) -> list[dict[str, Any]]:
    """One kind rendered for one recipient on each chosen channel: the message rows to insert."""
    kind = msgs.KINDS[kind_code]
    personalisation = {k: str(values.get(k) or "") for k in kind.placeholders}
    version, template = (await repo.template_in_force(session, kind_code)) or (0, kind.template())
    rendered = msgs.render_all(template, personalisation, signature=_config.sms_signature)
    channels, own_phone = await _channels_for(session, kind, recipient, pref)
    urgent = kind.urgent if urgent is None else urgent
    now = utcnow()
    rows: list[dict[str, Any]] = []
    common = {"event_id": event_id, "kind": kind_code, "application_id": application_id,
              "template_version": version, "urgent": urgent}
    for channel in msgs.CHANNELS:
        if channel not in channels:
            continue
        r = rendered[channel]
        row: dict[str, Any] = {**common, "channel": channel, "recipient_kind": recipient.kind,
                               "recipient_id": recipient.id, "title": r.title, "body": r.body}
        if channel == "inbox":
            row.update(status="delivered", delivered_at=now)
        elif channel == "sms":
            number = own_phone or phone
            if number is None and recipient.kind == "person":
                number = (await repo.known_phone(session, recipient.id) if known_phone is _READ
                          else known_phone)
            if number:
                row.update(status="queued", destination=number, next_attempt_at=now)
            elif recipient.kind in ("department", "role"):
                continue  # no contact configured: the staff's inbox is the channel
            else:
                row.update(status="failed", reason="no_contact_number: 没有可用的手机号码")
        else:
            row.update(status="queued", next_attempt_at=now)
        rows.append(row)
    for number in extra_sms or []:
        contact = Recipient("contact", hashlib.sha256(number.encode()).hexdigest()[:32])
        rows.append({**common, "channel": "sms", "recipient_kind": contact.kind, "recipient_id": contact.id,
                     "title": None, "body": rendered["sms"].body, "status": "queued", "destination": number,
                     "next_attempt_at": now})
    return rows


async def _store(session: AsyncSession, messages: list[dict[str, Any]], steps: list[repo.FeedStep],
                 certificates: Sequence[dict[str, Any]] = ()) -> tuple[list[str], set[str]]:
    """Insert messages and feed steps, and upsert certificates (one statement on PostgreSQL), and wake what they
    concern."""
    created, added = await repo.add_messages_and_feed(session, messages, steps, certificates)
    if added:
        _wake(session, FEED)
    if created and any(m["status"] == "queued" for m in messages):
        _wake(session, DISPATCH)
    return created, added


#: While a fetched batch of events is applied (`on_events`), what its handlers make is held here and written
#: together: one statement for the batch's messages and feed steps rather than one per event.
_HELD = "notify_held"


@dataclass
class _Held:
    messages: list[dict[str, Any]] = field(default_factory=list)
    steps: list[repo.FeedStep] = field(default_factory=list)
    #: The steps made from a remembered case, by event id: made again from the case read if the check fails.
    remembered: dict[str, tuple[Event, str, str, str, dict[str, Any]]] = field(default_factory=dict)
    #: The cases that the batch's handlers read, by the position of their event; those the handlers of the events
    #: not applied yet will read (`_case`), as read together since the batch last upserted a case.
    reads: list[tuple[int, str]] = field(default_factory=list)
    position: int = 0
    cases: dict[str, Any] = field(default_factory=dict)
    #: The certificates issued in the batch (`repo.certificate_params`), by number: written with the messages.
    certificates: dict[str, dict[str, Any]] = field(default_factory=dict)


async def _write_held(session: AsyncSession, held: _Held) -> None:
    messages, steps, remembered, certificates = held.messages, held.steps, held.remembered, held.certificates
    held.messages, held.steps, held.remembered, held.certificates = [], [], {}, {}
    if not messages and not steps and not certificates:
        return
    _, added = await _store(session, messages, steps, list(certificates.values()))
    for event_id, (event, application_id, step, title, extra) in remembered.items():
        if event_id not in added:  # the case changed since this process knew it (another replica's write)
            feed = _feed(event, await repo.case(session, application_id), step, title, **extra)
            if feed is not None:
                await _store(session, [], [(None, feed)])


async def _write(session: AsyncSession, messages: list[dict[str, Any]], feed: dict[str, Any] | None = None
                 ) -> list[str]:
    """Insert what an event makes, messages and feed step together; a second time for the same event makes
    nothing (the unique keys), which is what keeps redelivery and replays from sending twice. Inside a batch
    (`on_events`) they are held for the batch's one write, and no ids are returned."""
    if not messages and feed is None:
        return []
    held: _Held | None = session.info.get(_HELD)
    if held is not None:
        held.messages.extend(messages)
        if feed is not None:
            held.steps.append((None, feed))
        return []
    return (await _store(session, messages, [(None, feed)] if feed is not None else []))[0]


async def _upsert_case(session: AsyncSession, application_id: str, *, beside: bool = False, **values: Any) -> Any:
    """`repo.upsert_case`; inside a batch, the held steps made from this case as remembered are written first,
    so that they are checked against the case as it read when their events came, as one at a time."""
    held: _Held | None = session.info.get(_HELD)
    if held is not None and (any(k is not None and f["application_id"] == application_id for k, f in held.steps)
                             or any(_reads_case(session, p, application_id) for p in held.certificates.values())):
        await _write_held(session, held)
    if held is not None:
        held.cases = {}  # the case, and the known number of its person's others, may read otherwise now
    return await repo.upsert_case(session, application_id, beside=beside, **values)


def _reads_case(session: AsyncSession, certificate: dict[str, Any], application_id: str) -> bool:
    """Whether a held certificate's holder may be read from this application's case: its own application's, or,
    without a case of its application (a case once known here is never deleted), the holder's latest case, which
    any upsert may make another."""
    app = certificate["b_application_id"]
    return app == application_id or app is None or repo.remembered_case(session, app) is None


async def send(session: AsyncSession, *, event_id: str, kind_code: str, recipient: Recipient,
               values: dict[str, Any], application_id: str | None = None, phone: str | None = None,
               urgent: bool | None = None, extra_sms: list[str] | None = None) -> list[str]:
    """Render one kind for one recipient on each chosen channel and insert the messages; their ids."""
    return await _write(session, await _messages(
        session, event_id=event_id, kind_code=kind_code, recipient=recipient, values=values,
        application_id=application_id, phone=phone, urgent=urgent, extra_sms=extra_sms))


def _feed_step(event: Event, application_id: str, known: Any, step: str, title: str,
               **extra: Any) -> dict[str, Any]:
    data = {"application_id": application_id, "receipt_number": known["receipt_number"],
            "item_name": known["item_name"], "step": step, "title": title, "at": event.time.isoformat(), **extra}
    return {"event_id": event.id, "person_id": known["person_id"], "organisation_id": known["organisation_id"],
            "application_id": application_id, "step": step, "data": data}


def _feed(event: Event, case: Any, step: str, title: str, **extra: Any) -> dict[str, Any] | None:
    """The feed step an event makes of a case; None when no one follows the case."""
    if case is None or not (case.person_id or case.organisation_id):
        return None
    return _feed_step(event, case.application_id, case._mapping, step, title, **extra)


async def _feed_only(session: AsyncSession, event: Event, application_id: str, step: str, title: str,
                     **extra: Any) -> None:
    """A step that makes no message: written from the case as this process last knew it, in one statement
    that checks the case still reads so; otherwise (unknown, changed, another replica's) the case is read."""
    known = repo.remembered_case(session, application_id)
    if known is not None and (known["person_id"] or known["organisation_id"]):
        step_row = _feed_step(event, application_id, known, step, title, **extra)
        held: _Held | None = session.info.get(_HELD)
        if held is not None:
            held.steps.append((known, step_row))
            held.remembered[event.id] = (event, application_id, step, title, extra)
            return
        if (await _store(session, [], [(known, step_row)]))[1]:
            return
    await _write(session, [], _feed(event, await repo.case(session, application_id), step, title, **extra))


def _case_values(case: Any) -> dict[str, Any]:
    return {"item_name": case.item_name or "申请事项", "receipt_number": case.receipt_number or "",
            "receipt_short": msgs.receipt_short(case.receipt_number),
            "promised_on": chinese_date(case.promised_on) if case.promised_on else "承诺时限内"}


def _case_recipient(case: Any) -> Recipient | None:
    if case is None:
        return None
    if case.person_id:
        return Recipient("person", case.person_id)
    if case.organisation_id:
        return Recipient("organisation", case.organisation_id)
    return None


async def _to_applicant(session: AsyncSession, event: Event, case: Any, kind: str, **values: Any
                        ) -> list[dict[str, Any]]:
    """The messages of one kind to the case's applicant (none when no applicant is known)."""
    recipient = _case_recipient(case)
    if recipient is None:
        log.info("notify: no recipient known for %s of application %s", event.type, event.subject)
        return []
    beside = case
    if _pref_beside(case) is _READ and recipient.kind == "person":  # a case upserted without `beside`
        beside = await repo.person_beside(session, recipient.id)
    return await _messages(session, event_id=event.id, kind_code=kind, recipient=recipient,
                           values={**_case_values(case), **values}, application_id=case.application_id,
                           phone=case.phone, pref=_pref_beside(beside), known_phone=_known_phone_beside(beside))


def promised_on(accepted_at: datetime, limit: c.Limit | None) -> date | None:
    if limit is None or limit.value <= 0:
        return None
    start = local_day(accepted_at)
    if limit.unit == "working_days":
        return _calendar.add_workdays(start, limit.value).value
    if limit.unit == "calendar_days":
        return start + timedelta(days=limit.value)
    return None


OUTCOME_TEXT = {"approved": "准予许可", "rejected": "不予许可"}
METHOD_TEXT = {"electronic": "以电子证照", "pickup": "在服务窗口", "post": "通过邮寄"}
CARD_REASON = {"near_deadline": "即将超过承诺时限", "promised_limit_exceeded": "已超过承诺时限",
               "statutory_limit_exceeded": "已超过法定时限"}


async def on_event(session: AsyncSession, event: Event) -> None:
    """Everything notify does with one event from the bus (one transaction with its inbox row)."""
    handler = _HANDLERS.get(event.type)
    if handler is not None:
        await handler(session, event)


async def on_events(session: AsyncSession, events: list[Event]) -> None:
    """A fetched batch of events in one transaction, leaving what `on_event` leaves applied to each in turn:
    each handler runs in order (reads and case updates as they come), and the messages and feed steps they make
    are written together at the end (feed steps in the events' order)."""
    held = session.info[_HELD] = _Held(reads=[(i, a) for i, e in enumerate(events) if (a := _case_read_by(e))])
    try:
        for held.position, event in enumerate(events):
            await on_event(session, event)
        await _write_held(session, held)
    finally:
        session.info.pop(_HELD, None)


def _case_read_by(event: Event) -> str | None:
    """The application whose case `event`'s handler reads (`_case`), if it reads one."""
    if event.type not in _READ_CASE and not (
            event.type == c.TASK_DECIDED and event.data.get("outcome") == "request_correction"):
        return None
    app = event.data.get("application_id")
    return app if isinstance(app, str) else None


async def _case(session: AsyncSession, application_id: str) -> Any:
    """`repo.case`. Inside a batch, the first read reads the cases of the batch's later events too, in one
    statement: they stay as read until the batch upserts a case (`_upsert_case`), as nothing else in a batch
    writes one; a read after that reads again."""
    held: _Held | None = session.info.get(_HELD)
    if held is None:
        return await repo.case(session, application_id)
    if application_id not in held.cases:
        held.cases = await repo.cases(session, {application_id, *(a for i, a in held.reads if i >= held.position)})
    return held.cases[application_id]


async def _submitted(session: AsyncSession, event: Event) -> None:
    e = c.Submitted.model_validate(event.data)
    person, org = _applicant(e.applicant)
    case = await _upsert_case(session, e.application_id, person_id=person, organisation_id=org,
                                  receipt_number=e.receipt_number, item_code=e.item_code, department=e.department,
                                  holder_hash=holder_hash(e.applicant.holder_id))
    await _write(session, [], _feed(event, case, "submitted", "申请已提交"))


async def _accepted(session: AsyncSession, event: Event) -> None:
    e = c.Accepted.model_validate(event.data)
    person, org = _applicant(e.applicant)
    phone = next((p for k in ("phone", "contact_phone", "mobile") if (p := mobile_or_none(e.form.get(k)))), None)
    case = await _upsert_case(session, e.application_id, beside=True, person_id=person, organisation_id=org,
                              phone=phone, receipt_number=e.receipt_number, item_code=e.item_code,
                              item_name=e.item_name, department=e.department,
                              holder_hash=holder_hash(e.applicant.holder_id),
                              promised_on=promised_on(e.accepted_at, e.promised_limit))
    await _write(session, await _to_applicant(session, event, case, "application_accepted"),
                 _feed(event, case, "accepted", "已受理",
                       promised_on=case.promised_on.isoformat() if case.promised_on else None))


async def _returned(session: AsyncSession, event: Event) -> None:
    e = c.Returned.model_validate(event.data)
    case = await _case(session, e.application_id)
    notice = msgs.notice_text([m.message or m.field or "" for m in e.missing])
    await _write(session, await _to_applicant(session, event, case, "application_returned",
                                              reasons=e.reasons or "材料需补正", notice=notice),
                 _feed(event, case, "returned", "需补正后受理（一次性告知）", reasons=e.reasons))


async def _not_accepted(session: AsyncSession, event: Event) -> None:
    e = c.NotAccepted.model_validate(event.data)
    case = await _case(session, e.application_id)
    await _write(session, await _to_applicant(session, event, case, "application_not_accepted",
                                              reasons=e.reasons or "见受理部门说明",
                                              legal_basis=e.legal_basis or "见受理部门说明"),
                 _feed(event, case, "not_accepted", "不予受理", reasons=e.reasons))


def _simple(step: str, title: str) -> Any:
    async def handle(session: AsyncSession, event: Event) -> None:
        app = event.data.get("application_id")
        if isinstance(app, str):
            await _feed_only(session, event, app, step, title)
    return handle


async def _task_assigned(session: AsyncSession, event: Event) -> None:
    e = c.TaskAssigned.model_validate(event.data)
    name = await repo.department_name(session, e.department) or e.department
    await _feed_only(session, event, e.application_id, "task_assigned",
                     f"{name}开始办理" + (f"（{e.step_name}）" if e.step_name else ""), department=e.department,
                     department_name=name)


async def _task_decided(session: AsyncSession, event: Event) -> None:
    e = c.TaskDecided.model_validate(event.data)
    name = await repo.department_name(session, e.department) or e.department
    if e.outcome != "request_correction":
        await _feed_only(session, event, e.application_id, f"task_{e.outcome}",
                         f"{name}已{'同意' if e.outcome == 'approve' else '作出决定'}", department=e.department,
                         department_name=name)
        return
    case = await _case(session, e.application_id)
    notice = msgs.notice_text([m.reason or m.field or m.material_code or "" for m in e.missing])
    await _write(session, await _to_applicant(session, event, case, "correction_requested", department_name=name,
                                              reasons=e.reasons or "材料需补正", notice=notice),
                 _feed(event, case, f"task_{e.outcome}", f"{name}要求补正", department=e.department,
                       department_name=name))


async def _decided(session: AsyncSession, event: Event) -> None:
    e = c.ApplicationDecided.model_validate(event.data)
    case = await _case(session, e.application_id)
    if case is None:
        person, org = _applicant(e.applicant)
        case = await _upsert_case(session, e.application_id, beside=True, person_id=person, organisation_id=org,
                                  receipt_number=e.receipt_number, department=e.department)
    outcome = OUTCOME_TEXT.get(e.outcome, e.outcome)
    reasons = f"理由：{e.reasons}" if e.reasons and e.outcome != "approved" else ""
    await _write(session, await _to_applicant(session, event, case, "application_decided", outcome_text=outcome,
                                              reasons=reasons),
                 _feed(event, case, "decided", f"审批结果：{outcome}", outcome=e.outcome))


async def _payment(session: AsyncSession, event: Event) -> None:
    e = c.PaymentRequested.model_validate(event.data)
    person, org = _applicant(e.applicant)
    case = await _upsert_case(session, e.application_id, beside=True, person_id=person, organisation_id=org,
                              receipt_number=e.receipt_number, item_name=e.item_name)
    amount = f"{e.amount:.2f}"
    await _write(session, await _to_applicant(session, event, case, "payment_due", amount=amount,
                                              payment_code=e.payment_code,
                                              due_on=chinese_date(e.due_on) if e.due_on else "缴费期限内"),
                 _feed(event, case, "payment_due", f"待缴费{amount}元", amount=amount,
                       due_on=e.due_on.isoformat() if e.due_on else None))


async def _ready(session: AsyncSession, event: Event) -> None:
    e = c.ReadyForCollection.model_validate(event.data)
    person, org = _applicant(e.applicant)
    case = await _upsert_case(session, e.application_id, beside=True, person_id=person, organisation_id=org,
                              receipt_number=e.receipt_number, item_name=e.item_name)
    point = e.service_point_name or e.service_point or "选定的服务点"
    await _write(session, await _to_applicant(session, event, case, "ready_for_collection", service_point_name=point),
                 _feed(event, case, "ready_for_collection", f"结果已到{point}，可领取", service_point=e.service_point))


async def _delivered(session: AsyncSession, event: Event) -> None:
    e = c.Delivered.model_validate(event.data)
    case = await _case(session, e.application_id)
    await _write(session, [*await _to_applicant(session, event, case, "application_delivered",
                                                method_text=METHOD_TEXT.get(e.method or "", "")),
                           *await _to_applicant(session, event, case, "rating_invited")],
                 _feed(event, case, "delivered", "办理结果已送达", method=e.method))


async def _certificate_issued(session: AsyncSession, event: Event) -> None:
    e = c.CertificateIssued.model_validate(event.data)
    params = repo.certificate_params(e.certificate_number, application_id=e.application_id or None,
                                     holder_hash=holder_hash(e.holder_id) if e.holder_id else None,
                                     type_code=e.type_code, type_name=e.type_name, valid_until=e.valid_until)
    held: _Held | None = session.info.get(_HELD)
    if held is None:
        await repo.upsert_certificate(session, e.certificate_number, application_id=params["b_application_id"],
                                      holder_hash=params["b_holder_hash"], type_code=e.type_code,
                                      type_name=e.type_name, valid_until=e.valid_until)
        return
    # Issued again in the batch: the last issue's values, as applying both in turn leaves (nothing in between
    # changed the case it reads: `_upsert_case` writes the held ones first).
    held.certificates.pop(e.certificate_number, None)
    held.certificates[e.certificate_number] = params


async def _certificate_revoked(session: AsyncSession, event: Event) -> None:
    number = c.CertificateRevoked.model_validate(event.data).certificate_number
    held: _Held | None = session.info.get(_HELD)
    if held is not None and number in held.certificates:
        await _write_held(session, held)
    await repo.revoke_certificate(session, number)


async def _card(session: AsyncSession, event: Event) -> None:
    e = c.CardRaised.model_validate(event.data)
    await repo.record_card(session, e.card_id, e.department, e.colour, local_day(e.raised_at))
    if not e.department:
        return
    case = await _case(session, e.application_id)
    receipt = case.receipt_number if case and case.receipt_number else e.application_id
    name = await repo.department_name(session, e.department) or e.department
    contact = _config.department_contacts.get(e.department)
    await send(session, event_id=event.id, kind_code="card_raised", recipient=Recipient("department", e.department),
               values={"receipt_number": receipt, "receipt_short": msgs.receipt_short(receipt),
                       "department_name": name, "colour_text": "红牌" if e.colour == "red" else "黄牌",
                       "reason": CARD_REASON.get(e.reason or "", e.reason or "")},
               application_id=e.application_id, phone=contact, urgent=e.colour == "red")


async def _anomaly(session: AsyncSession, event: Event) -> None:
    e = c.AccessAnomaly.model_validate(event.data)
    office = _config.data_office_department
    name = await repo.department_name(session, office) or office
    # Whatever datashare wrote, only its kind and a masked, bounded reason reach a message.
    what = mask_text(" ".join(x for x in (e.kind, e.reason) if x))[:80] or "访问异常"
    await send(session, event_id=event.id, kind_code="access_anomaly", recipient=Recipient("department", office),
               values={"department_name": name, "anomaly": what, "at": chinese_moment(e.detected_at or event.time)},
               phone=_config.department_contacts.get(office))


async def _department(session: AsyncSession, event: Event) -> None:
    e = c.DepartmentUpserted.model_validate(event.data)
    await repo.upsert_department(session, e.code, e.name)


_HANDLERS = {
    c.SUBMITTED: _submitted, c.ACCEPTED: _accepted, c.RETURNED: _returned,
    c.NOT_ACCEPTED: _not_accepted, c.WITHDRAWN: _simple("withdrawn", "申请已撤回"),
    c.CORRECTED: _simple("corrected", "已提交补正材料"), c.TASK_REOPENED: _simple("task_reopened", "补正后继续办理"),
    c.TASK_ASSIGNED: _task_assigned, c.TASK_DECIDED: _task_decided, c.APPLICATION_DECIDED: _decided,
    c.PAYMENT_REQUESTED: _payment, c.READY_FOR_COLLECTION: _ready, c.DELIVERED: _delivered,
    c.CERTIFICATE_ISSUED: _certificate_issued, c.CERTIFICATE_REVOKED: _certificate_revoked,
    c.CARD_YELLOW: _card, c.CARD_RED: _card, c.ACCESS_ANOMALY: _anomaly, c.DEPARTMENT_UPSERTED: _department,
}
HANDLED_TYPES = tuple(_HANDLERS)
#: The events whose handlers read their case (`_case`); and a task decision asking for a correction.
_READ_CASE = frozenset({c.RETURNED, c.NOT_ACCEPTED, c.APPLICATION_DECIDED, c.DELIVERED, c.CARD_YELLOW, c.CARD_RED})


# --- daily jobs -------------------------------------------------------------------------------------------


async def run_daily(session: AsyncSession, today: date) -> dict[str, int]:
    """The day's expiry reminders (到期提醒) and the supervisors' digest (督办日报), each once per day."""
    out = {"expiry": 0, "digest": 0, "purged": 0}
    if await repo.claim_job(session, "purge", today):
        out["purged"] = await repo.purge_feed(session, utcnow() - timedelta(days=_config.feed_retention_days))
    if await repo.claim_job(session, "expiry", today):
        days = [_config.expiry_notice_default_days, *_config.expiry_notice_days.values()]
        for cert in await repo.certificates_expiring(session, today + timedelta(days=max(days))):
            window = _config.expiry_notice_days.get(cert.type_code, _config.expiry_notice_default_days)
            left = (cert.valid_until - today).days
            if not 0 <= left <= window:
                continue
            out["expiry"] += len(await send(
                session, event_id=f"expiry:{cert.certificate_number}:{cert.valid_until.isoformat()}",
                kind_code="certificate_expiring", recipient=Recipient("person", cert.person_id),
                values={"certificate_name": cert.type_name or "电子证照",
                        "valid_until": chinese_date(cert.valid_until), "days_left": str(left)}))
    if await repo.claim_job(session, "digest", today):
        day = today - timedelta(days=1)
        cards = await repo.cards_on(session, day)
        names = []
        for code in sorted({r.department for r in cards if r.department}):
            names.append(await repo.department_name(session, code) or code)
        out["digest"] = len(await send(
            session, event_id=f"digest:{day.isoformat()}", kind_code="supervisor_digest",
            recipient=Recipient("role", "supervisor"),
            values={"day": chinese_date(day), "yellow": str(sum(r.colour == "yellow" for r in cards)),
                    "red": str(sum(r.colour == "red" for r in cards)), "departments": "、".join(names) or "无"},
            extra_sms=list(_config.supervisor_contacts)))
    return out


# --- preferences ------------------------------------------------------------------------------------------


@dataclass
class Preferences:
    channels: dict[str, list[str]]
    quiet_start: str | None
    quiet_end: str | None
    phone: str | None


async def get_preferences(session: AsyncSession, person_id: str) -> Preferences:
    row = await repo.preference_of(session, person_id)
    chosen = dict(row.channels) if row is not None else {}
    offered = set(msgs.CHANNELS) if _config.push_webhook_url else set(msgs.CHANNELS) - {"push"}
    channels = {k: sorted((set(chosen.get(k, msgs.KINDS[k].default_channels)) | {"inbox"}) & offered)
                for k in msgs.APPLICANT_KINDS}
    if row is None:
        return Preferences(channels, _config.quiet_start, _config.quiet_end, None)
    return Preferences(channels, row.quiet_start, row.quiet_end, row.phone)


async def put_preferences(session: AsyncSession, person_id: str, *, channels: dict[str, list[str]],
                          quiet_hours: tuple[str, str] | None, phone: str | None) -> Preferences:
    for kind, chosen in channels.items():
        if kind not in msgs.APPLICANT_KINDS:
            raise invalid(f"body.channels.{kind}", "unknown_kind",
                          f"Choose channels for: {', '.join(msgs.APPLICANT_KINDS)}.")
        for i, ch in enumerate(chosen):
            if ch not in msgs.CHANNELS:
                raise invalid(f"body.channels.{kind}.{i}", "unknown_channel", "Channels are inbox, sms and push.")
    if quiet_hours is not None:
        for name, value in zip(("start", "end"), quiet_hours, strict=True):
            try:
                parse_hhmm(value)
            except ValueError as exc:
                raise invalid(f"body.quiet_hours.{name}", "time_of_day", str(exc)) from None
    number = None
    if phone:
        number = mobile_or_none(phone)
        if number is None:
            raise invalid("body.phone", "mobile_number", "A mainland mobile number of 11 digits (1[3-9]…).")
    await repo.put_preference(session, person_id, channels={k: sorted(set(v)) for k, v in channels.items()},
                              quiet_start=quiet_hours[0] if quiet_hours else "00:00",
                              quiet_end=quiet_hours[1] if quiet_hours else "00:00", phone=number)
    await repo.release_held(session, person_id)
    _wake(session, DISPATCH)
    return await get_preferences(session, person_id)


def default_quiet_hours() -> QuietHours:
    return QuietHours.of(_config.quiet_start, _config.quiet_end)


async def quiet_hours_of(session: AsyncSession, person_ids: list[str]) -> dict[str, QuietHours]:
    """The quiet hours of those of these people who chose their own (the rest keep the default)."""
    return {p: QuietHours.of(start, end) for p, (start, end) in (await repo.quiet_hours_of(session, person_ids)).items()
            if start and end}


# --- templates --------------------------------------------------------------------------------------------


def kind_or_404(code: str) -> msgs.Kind:
    kind = msgs.KINDS.get(code)
    if kind is None:
        raise NotFound(f"No message kind {code!r}; kinds: {', '.join(msgs.KINDS)}.")
    return kind


async def get_template(session: AsyncSession, code: str) -> tuple[int, dict[str, Any]]:
    """One kind's template in force: its version (the ETag) and its text per channel; 404 for an unknown kind."""
    kind_or_404(code)
    return await template_of(session, code)


async def list_templates(session: AsyncSession) -> list[tuple[str, int, dict[str, Any]]]:
    """Every kind's template in force, in the kinds' order."""
    return [(code, *(await template_of(session, code))) for code in msgs.KINDS]


async def preview_template(session: AsyncSession, code: str, *, draft: dict[str, Any] | None,
                           personalisation: dict[str, Any] | None) -> tuple[int | None, dict[str, msgs.Rendered]]:
    """Render the version in force, or a draft, with the values given (else the kind's samples). The version is
    None for a draft."""
    kind = kind_or_404(code)
    version: int | None = None
    if draft is not None:
        template = draft
    else:
        version, template = await template_of(session, code)
    values = personalisation if personalisation is not None else kind.sample
    return version, preview(kind, template, dict(values))


async def seed_templates(session: AsyncSession) -> None:
    for code, kind in msgs.KINDS.items():
        if await repo.current_template(session, code) is None:
            await repo.add_template(session, code, 1, kind.template(), "seed")


async def put_template(session: AsyncSession, code: str, channels: dict[str, dict[str, str]], *,
                       if_match: str | None, by: str) -> tuple[int, dict[str, Any]]:
    kind = kind_or_404(code)
    if not if_match:
        raise PreconditionRequired("Send If-Match with the ETag of the version you edited.")
    version, _ = await template_of(session, code)
    if if_match.strip().strip('"').removeprefix("W/").strip('"') != str(version):
        raise PreconditionFailed(f"The template is at version {version}; reload it and edit again.")
    try:
        msgs.check_template(kind, channels)
    except msgs.TemplateProblem as p:
        raise invalid(p.field, p.rule, p.message) from None
    if not await repo.add_template(session, code, version + 1, channels, by):
        raise Conflict("Someone saved a new version at the same moment; reload it and edit again.")
    return version + 1, channels


def preview(kind: msgs.Kind, template: dict[str, Any], values: dict[str, Any]) -> dict[str, msgs.Rendered]:
    try:
        msgs.check_template(kind, template, field_prefix="body.channels")
        personalisation = msgs.check_personalisation(kind, values)
    except msgs.TemplateProblem as p:
        raise invalid(p.field, p.rule, p.message) from None
    return msgs.render_all(template, personalisation, signature=_config.sms_signature)


# --- reading messages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxEntry:
    """An in-app message with the same message on the other channels it went out on."""

    message: Any
    others: list[Any]


async def inbox(session: AsyncSession, principal: Principal, *, unread: bool | None, cursor: str | None,
                limit: int) -> tuple[list[InboxEntry], str | None]:
    """The caller's in-app inbox, newest first, with each message's fate on SMS and push."""
    rows, nxt = await repo.inbox_page(session, recipients_of(principal), unread=unread, cursor=cursor, limit=limit)
    others: dict[tuple[str, str, str, str], list[Any]] = {}
    for s in await repo.siblings(session, {(r.event_id, r.kind) for r in rows}):
        others.setdefault((s.event_id, s.kind, s.recipient_kind, s.recipient_id), []).append(s)
    return [InboxEntry(r, sorted(others.get((r.event_id, r.kind, r.recipient_kind, r.recipient_id), []),
                                 key=lambda o: o.channel)) for r in rows], nxt


async def mark_read(session: AsyncSession, principal: Principal, notification_id: str) -> None:
    """Idempotent: marking a read message again changes nothing."""
    row = await repo.message_by_id(session, notification_id[:64])
    if row is None or row.channel != "inbox" or (row.recipient_kind, row.recipient_id) not in recipients_of(principal):
        raise NotFound("No such notification in your inbox.")
    await repo.mark_read(session, row.id)


async def get_message(session: AsyncSession, principal: Principal, message_id: str) -> Any:
    row = await repo.message_by_id(session, message_id[:64])
    if row is None or not may_see(principal, row.recipient_kind, row.recipient_id):
        raise NotFound("No such message.")
    return row


async def list_messages(session: AsyncSession, *, application_id: str | None, channel: str | None,
                        status: str | None, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
    """Every message, for operators (the route admits admins only)."""
    return await repo.list_messages(session, application_id=application_id, channel=channel, status=status,
                                    cursor=cursor, limit=limit)


async def feed_head(session: AsyncSession) -> int:
    """The live feed's present position: a stream opened without `Last-Event-ID` starts there."""
    return await repo.feed_head(session)


async def feed_after(session: AsyncSession, persons: list[str], organisations: list[str], after: int
                     ) -> Sequence[Any]:
    """The steps after `after` of the cases these people and organisations follow, in order."""
    return await repo.feed_after(session, persons, organisations, after)


# --- who may see a message --------------------------------------------------------------------------------


def may_see(p: Principal, recipient_kind: str, recipient_id: str) -> bool:
    return p.has(ADMIN) or (recipient_kind, recipient_id) in recipients_of(p)


# --- delivery receipts ------------------------------------------------------------------------------------


async def record_receipt(session: AsyncSession, *, reference: str, gateway_id: str | None, status: str,
                         reason: str | None, at: datetime | None) -> str:
    """Apply the gateway's receipt once; a late or repeated one never undoes a delivery."""
    row = await repo.message_by_id(session, reference)
    if row is None and gateway_id:
        row = await repo.message_by_gateway_id(session, gateway_id)
    if row is None or row.channel != "sms":
        raise NotFound("No SMS with that reference.")
    if gateway_id and row.gateway_id and row.gateway_id != gateway_id:
        raise NotFound("No SMS with that reference.")
    if row.status in ("delivered", "failed"):
        return row.status
    if status == "delivered":
        await repo.set_message(session, row.id, status="delivered", delivered_at=at or utcnow(),
                               gateway_id=gateway_id or row.gateway_id, reason=None)
        return "delivered"
    await repo.set_message(session, row.id, status="failed", reason=f"carrier: {(reason or 'undelivered')[:200]}",
                           gateway_id=gateway_id or row.gateway_id)
    return "failed"
