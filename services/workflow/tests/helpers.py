"""Test data and helpers for the workflow tests: events as catalog and intake publish them, an event
recorder on the real bus, and a small real HTTP receiver for webhooks."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx

from shared.events import Event, new_event
from shared.testing import TokenIssuer, WebhookReceiver, eventually

FOOD_DEPARTMENTS = ["LD-SCJGJ", "LD-WJJ", "LD-XFJ", "LD-STHJJ"]


def parallel_step(departments: list[str], *, lead: str | None = None, on_reject: str = "reject_case",
                  limit_days: int = 5, deemed: bool = False, key: str = "joint-review") -> dict[str, Any]:
    return {
        "key": key, "name": "并联审批", "kind": "parallel", "departments": departments,
        "lead_department": lead or departments[0], "limit_days": limit_days, "on_reject": on_reject,
        "deemed_approval_on_timeout": deemed, "excluded_from_limit": False,
    }


def item_published(code: str, version: int, steps: list[dict[str, Any]], *, department: str = "LD-SCJGJ") -> Event:
    data = {
        "code": code, "version": version, "name": "食品经营许可", "kind": "01", "kind_name": "行政许可",
        "department": department, "audience": ["legal_person"], "case_kind": "promised",
        "statutory_limit": {"value": 20, "unit": "working_days"}, "promised_limit": {"value": 10, "unit": "working_days"},
        "visits_required": 0, "fully_online": True, "channels": ["online"], "service_points": ["*"],
        "materials": [],
        "process": {"steps": [{"key": "accept", "name": "受理", "kind": "acceptance"}, *steps,
                              {"key": "deliver", "name": "送达", "kind": "delivery"}]},
        "result": {"type": "certificate", "certificate_type": "11441781MB0000001A002", "name": "食品经营许可证"},
        "published_at": datetime.now(UTC).isoformat(),
    }
    return new_event("yimen.catalog.item.published", source="/yimen/catalog", subject=code, data=data)


def application_accepted(code: str, version: int, *, application_id: str | None = None,
                         accepted_at: datetime | None = None, applicant_id: str = "person-1",
                         applicant: dict[str, Any] | None = None) -> Event:
    app_id = application_id or uuid.uuid4().hex
    data = {
        "application_id": app_id, "receipt_number": "R" + app_id[:10], "item_code": code, "item_version": version,
        "item_name": "食品经营许可", "department": "LD-SCJGJ",
        "applicant": applicant or {"kind": "person", "id": applicant_id, "holder_id": "440000199001011234",
                                   "name": "张三", "agent_id": None},
        "channel": "online", "service_point": "LD-CENTRE", "online": True,
        "accepted_at": (accepted_at or datetime.now(UTC)).isoformat(), "accepted_by": "clerk-1", "form": {},
        "materials": [], "commitments": [], "case_kind": "promised",
        "promised_limit": {"value": 10, "unit": "working_days"}, "statutory_limit": {"value": 20, "unit": "working_days"},
    }
    return new_event("yimen.intake.application.accepted", source="/yimen/intake", subject=app_id, data=data)


def department_decision(department: str, task_id: str, outcome: str = "approve", **extra: Any) -> Event:
    return new_event(f"yimen.department.{department}.decision", source=f"/department/{department}",
                     subject=task_id, data={"task_id": task_id, "outcome": outcome, "decided_by": {"name": "系统"},
                                            **extra})


def reviewer(tokens: TokenIssuer, department: str) -> dict[str, str]:
    return tokens.headers(f"reviewer-{department}", kind="staff", roles=["department_reviewer"], dept=department)


def system(tokens: TokenIssuer, department: str) -> dict[str, str]:
    return tokens.headers(f"system-{department}", kind="department_system", roles=["department_system"],
                          dept=department)


def supervisor(tokens: TokenIssuer) -> dict[str, str]:
    return tokens.headers("supervisor-1", kind="staff", roles=["supervisor"])


class Recorder:
    """Every workflow event on the bus, once per event id (as the stream keeps it: two relays of two replicas
    may both publish a row before either marks it, and JetStream drops the second by `Nats-Msg-Id`, but a
    core subscriber like this one sees both)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._seen: set[str] = set()
        self._sub: Any = None

    async def start(self, client: httpx.AsyncClient) -> Recorder:
        return await self.start_on(client.app.state.bus)  # type: ignore[attr-defined]

    async def start_on(self, bus: Any) -> Recorder:
        async def on(msg: Any) -> None:
            event = Event.from_json(msg.data)
            if event.id not in self._seen:
                self._seen.add(event.id)
                self.events.append(event)

        self._sub = await bus.nc.subscribe(bus.names.subject("yimen.workflow.>"), cb=on)
        await bus.nc.flush()
        return self

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()

    def of(self, type_suffix: str, application_id: str | None = None) -> list[Event]:
        return [e for e in self.events if e.type.endswith(type_suffix)
                and (application_id is None or e.data.get("application_id") == application_id)]


async def publish(client: httpx.AsyncClient, event: Event) -> None:
    await client.app.state.bus.publish(event)  # type: ignore[attr-defined]


async def start_case(client: httpx.AsyncClient, tokens: TokenIssuer, code: str, version: int = 1,
                     **kw: Any) -> dict[str, Any]:
    """Publish an accepted application and wait until its case has tasks."""
    event = application_accepted(code, version, **kw)
    await publish(client, event)
    app_id = event.data["application_id"]

    async def started() -> Any:
        r = await client.get(f"/workflow/v1/cases/{app_id}", headers=supervisor(tokens))
        return r.json() if r.status_code == 200 and r.json()["stages"] else None

    return await eventually(started)


async def define_item(client: httpx.AsyncClient, tokens: TokenIssuer, code: str, version: int,
                      steps: list[dict[str, Any]]) -> None:
    """Publish an item version and wait until workflow holds it (a probe case starts under it)."""
    await publish(client, item_published(code, version, steps))
    from services.workflow.store import repository as repo

    async def held() -> bool:
        async with client.app.state.db.transaction() as s:  # type: ignore[attr-defined]
            return await repo.get_definition(s, code, version) is not None

    await eventually(held)


def tasks_of(case: dict[str, Any], stage: int = 0) -> dict[str, dict[str, Any]]:
    return {t["department"]: t for t in case["stages"][stage]["tasks"]}


async def case(client: httpx.AsyncClient, tokens: TokenIssuer, app_id: str) -> dict[str, Any]:
    r = await client.get(f"/workflow/v1/cases/{app_id}", headers=supervisor(tokens))
    assert r.status_code == 200, r.text
    return r.json()


class Receiver(WebhookReceiver):
    """A department system's webhook endpoint (its secret set once the registration hands it out): keeps each
    delivery's headers and event."""

    def __init__(self) -> None:
        super().__init__(keep=lambda headers, event: {"headers": headers, "event": event})

    @property
    def fail_next(self) -> int:
        return self.answers.count(503)

    @fail_next.setter
    def fail_next(self, n: int) -> None:
        """Answer this many valid deliveries with 503 first (a department system that is overloaded)."""
        self.answers = [503] * n


@contextlib.asynccontextmanager
async def recording(client: httpx.AsyncClient) -> AsyncIterator[Recorder]:
    rec = await Recorder().start(client)
    try:
        yield rec
    finally:
        await rec.stop()


async def written(client: httpx.AsyncClient, application_id: str) -> list[tuple[str, str]]:
    """(type, event id) of every event the service wrote to its outbox about an application: everything it ever
    publishes about it, so a test counts effects here rather than waiting a while for late arrivals on the bus."""
    from sqlalchemy import select

    app: Any = client.app  # type: ignore[attr-defined]
    outbox = app.state.messaging.outbox
    async with app.state.db.transaction() as s:
        rows = (await s.execute(select(outbox.c.type, outbox.c.event_id)
                                .where(outbox.c.payload.contains(application_id)))).all()
    return [(r.type, r.event_id) for r in rows]


async def applied(client: httpx.AsyncClient, event_ids: list[str]) -> bool:
    """Whether the service's consumers have applied every one of these events (their inbox rows)."""
    from sqlalchemy import select

    app: Any = client.app  # type: ignore[attr-defined]
    inbox = app.state.messaging.inbox
    async with app.state.db.transaction() as s:
        seen = set((await s.execute(select(inbox.c.event_id).where(inbox.c.event_id.in_(event_ids)))).scalars())
    return seen == set(event_ids)


def count(events: list[tuple[str, str]], type_suffix: str) -> int:
    return sum(1 for t, _ in events if t.endswith(type_suffix))
