"""Building events the way intake and workflow publish them, for the integration tests."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.efficacy.domain.calendar import CHINA
from shared.db import Database
from shared.events import Event, new_event


def at(s: str) -> str:
    return datetime.fromisoformat(s).replace(tzinfo=CHINA).isoformat()


def ev(type_: str, app: str, **data: object) -> Event:
    source = "/yimen/" + type_.split(".")[1]
    return new_event(type_, source=source, subject=app, data={"application_id": app, **data})


def new_id(prefix: str = "A") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def accepted(app: str, when: str, *, person: str = "p-1", hid: str = "445381199001011234", item: str = "ITEM-1",
             days: int = 5, statutory: int | None = 20, department: str = "LD-SCJGJ", channel: str = "online",
             service_point: str = "LD-CENTRE", org: str | None = None) -> Event:
    applicant = ({"kind": "organisation", "id": org, "holder_id": org, "name": "某餐饮店", "agent_id": person}
                 if org else {"kind": "person", "id": person, "holder_id": hid, "name": "张三", "agent_id": None})
    return ev("yimen.intake.application.accepted", app, receipt_number="R" + app, item_code=item, item_version=1,
              item_name="食品经营许可", department=department, applicant=applicant, channel=channel,
              service_point=service_point, online=channel in ("online", "mobile"), accepted_at=at(when),
              accepted_by="clerk", form={}, materials=[], commitments=[], case_kind="promised",
              promised_limit={"value": days, "unit": "working_days"},
              statutory_limit={"value": statutory, "unit": "working_days"} if statutory else None)


def submitted(app: str, when: str, *, item: str = "ITEM-1", channel: str = "online", department: str = "LD-SCJGJ",
              service_point: str = "LD-CENTRE") -> Event:
    return ev("yimen.intake.application.submitted", app, receipt_number="R" + app, item_code=item, item_version=1,
              department=department, applicant={"kind": "person", "id": "p-1"}, channel=channel,
              service_point=service_point, submitted_at=at(when))


def assigned(app: str, task: str, when: str, *, department: str = "LD-WJJ", limit_days: int = 3,
             step_key: str = "review") -> Event:
    return ev("yimen.workflow.task.assigned", app, task_id=task, receipt_number="R" + app, item_code="ITEM-1",
              department=department, step_key=step_key, step_name="审查", stage_kind="parallel", lead=False,
              limit_days=limit_days, due_at=at(when), assigned_at=at(when))


def task_decided(app: str, task: str, when: str, outcome: str = "approve", department: str = "LD-WJJ") -> Event:
    return ev("yimen.workflow.task.decided", app, task_id=task, receipt_number="R" + app, department=department,
              step_key="review", outcome=outcome, reasons=[], legal_basis=None, missing=[],
              decided_by={"kind": "staff", "id": "s1", "name": "李四"}, deemed=False, decided_at=at(when))


def reopened(app: str, task: str, when: str) -> Event:
    return ev("yimen.workflow.task.reopened", app, task_id=task, department="LD-WJJ", reopened_at=at(when))


def decided(app: str, when: str, outcome: str = "approved") -> Event:
    return ev("yimen.workflow.application.decided", app, receipt_number="R" + app, item_code="ITEM-1",
              item_version=1, outcome=outcome, reasons=[], legal_basis=None, decided_at=at(when),
              applicant={"kind": "person", "id": "p-1"}, department="LD-SCJGJ", result={"type": "none"})


def delivered(app: str, when: str, method: str = "electronic") -> Event:
    return ev("yimen.intake.application.delivered", app, receipt_number="R" + app, method=method,
              certificate_number=None, delivered_at=at(when), online=method == "electronic")


def visit(app: str, when: str) -> Event:
    return ev("yimen.intake.visit.recorded", app, service_point="LD-CENTRE", purpose="pickup", at=at(when))


async def efficacy_database(databases, name: str) -> Database:  # type: ignore[no-untyped-def]
    """A database of efficacy's own tables with the calendar seeded, opened as the service opens it (the caller
    disposes of it): for tests of the service's code without its app."""
    from services.efficacy.store import calendar as calendar_store
    from services.efficacy.store.tables import Base, messaging

    db = Database(databases.url(name), info={"messaging": messaging, "service": "efficacy"})
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with db.transaction() as s:
        await calendar_store.seed_from_library(s)
    return db
