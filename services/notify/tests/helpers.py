"""Test support for notify: real HTTP servers (notify must be reachable by the sandbox gateway's receipts), the
sandbox SMS gateway of the real simulator, and events built the way their publishers build them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import uvicorn

from shared.events import Event, new_event
from shared.testing import eventually, free_port


class Served:
    """An ASGI app behind a real uvicorn server (with its lifespan) on a fixed port, which can be stopped and
    started again on the same port (a restart)."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Served:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                log_config=None)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        await eventually(lambda: self._server is not None and (self._server.started or self._task.done()),
                         timeout=60)
        assert self._server.started, "server did not start"
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 40)
        self._server = self._task = None


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[Served]:
    s = await Served(app).start()
    try:
        yield s
    finally:
        await s.stop()


def new_id(prefix: str = "A") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def phone() -> str:
    """A fresh mobile number per test, so the sandbox's list can be read per test."""
    return "139" + str(uuid.uuid4().int)[:8]


def _ev(type_: str, subject: str, data: dict[str, Any]) -> Event:
    return new_event(type_, source="/yimen/" + type_.split(".")[1], subject=subject, data=data)


def person_applicant(person: str) -> dict[str, Any]:
    return {"kind": "person", "id": person, "holder_id": "445381199001011230", "name": "陈小明", "agent_id": None}


def org_accepted(app: str, org: str, agent: str, mobile: str | None) -> Event:
    event = accepted(app, agent, mobile)
    event.data["applicant"] = {"kind": "organisation", "id": org, "holder_id": org, "name": "小明餐饮有限公司",
                               "agent_id": agent}
    return event


def submitted(app: str, person: str) -> Event:
    return _ev("yimen.intake.application.submitted", app, {
        "application_id": app, "receipt_number": "11441781MB0000001A40100000300002026113" + app[-5:],
        "item_code": "11441781MB0000001A4010000030000", "item_version": 1, "department": "LD-SCJGJ",
        "applicant": person_applicant(person), "channel": "online", "service_point": "LD-CENTRE",
        "submitted_at": datetime.now(UTC).isoformat()})


def accepted(app: str, person: str, mobile: str | None) -> Event:
    return _ev("yimen.intake.application.accepted", app, {
        "application_id": app, "receipt_number": "11441781MB0000001A40100000300002026113" + app[-5:],
        "item_code": "11441781MB0000001A4010000030000", "item_version": 1, "item_name": "食品经营许可",
        "department": "LD-SCJGJ", "applicant": person_applicant(person), "channel": "online",
        "service_point": "LD-CENTRE", "online": True, "accepted_at": "2026-11-26T02:00:00+00:00",
        "accepted_by": "clerk-1", "form": {"business_name": "小明餐饮", **({"phone": mobile} if mobile else {})},
        "materials": [], "commitments": [], "case_kind": "promised",
        "promised_limit": {"value": 10, "unit": "working_days"}, "statutory_limit": {"value": 20, "unit": "working_days"}})


def returned(app: str) -> Event:
    return _ev("yimen.intake.application.returned", app, {
        "application_id": app, "receipt_number": "R" + app, "reasons": "材料不齐全",
        "missing": [{"field": "materials.floor_plan", "rule": "required", "message": "请提交“经营场所平面布局图”。"},
                    {"field": "form.phone", "rule": "required", "message": "请填写“联系电话”。"}],
        "returned_at": datetime.now(UTC).isoformat()})


def not_accepted(app: str) -> Event:
    return _ev("yimen.intake.application.not_accepted", app, {
        "application_id": app, "receipt_number": "R" + app, "reasons": "不属于本机关职权范围",
        "legal_basis": "《中华人民共和国行政许可法》第三十二条", "at": datetime.now(UTC).isoformat()})


def task_assigned(app: str, task: str, department: str = "LD-WJJ") -> Event:
    now = datetime.now(UTC)
    return _ev("yimen.workflow.task.assigned", app, {
        "task_id": task, "application_id": app, "receipt_number": "R" + app, "item_code": "X", "department": department,
        "step_key": "joint-review", "step_name": "并联审批", "stage_kind": "parallel", "lead": False, "limit_days": 5,
        "due_at": (now + timedelta(days=7)).isoformat(), "assigned_at": now.isoformat()})


def correction_requested(app: str, task: str, department: str = "LD-WJJ") -> Event:
    return _ev("yimen.workflow.task.decided", app, {
        "task_id": task, "application_id": app, "receipt_number": "R" + app, "department": department,
        "step_key": "joint-review", "outcome": "request_correction", "reasons": "经营场所平面图未标明功能分区",
        "legal_basis": None, "missing": [{"material_code": "floor_plan", "field": None,
                                          "reason": "平面图未标明功能分区"}],
        "decided_by": {"kind": "staff", "id": "s1", "name": "李四"}, "deemed": False,
        "decided_at": datetime.now(UTC).isoformat()})


def decided(app: str, person: str, outcome: str = "approved") -> Event:
    return _ev("yimen.workflow.application.decided", app, {
        "application_id": app, "receipt_number": "R" + app, "item_code": "X", "item_version": 1, "outcome": outcome,
        "reasons": None if outcome == "approved" else "不符合条件", "legal_basis": None,
        "decided_at": datetime.now(UTC).isoformat(), "applicant": person_applicant(person), "department": "LD-SCJGJ",
        "result": {"type": "certificate", "certificate_type": "11441781MB0000001A002", "name": "食品经营许可证"}})


def payment_requested(app: str, person: str) -> Event:
    return _ev("yimen.intake.payment.requested", app, {
        "application_id": app, "receipt_number": "R" + app, "applicant": {"kind": "person", "id": person},
        "item_name": "食品经营许可", "amount": "50.00", "payment_code": "4400123456789", "due_on": "2026-12-15"})


def ready_for_collection(app: str, person: str) -> Event:
    return _ev("yimen.intake.application.ready_for_collection", app, {
        "application_id": app, "receipt_number": "R" + app, "applicant": {"kind": "person", "id": person},
        "item_name": "食品经营许可", "service_point": "LD-LC", "service_point_name": "罗城街道便民服务中心"})


def delivered(app: str) -> Event:
    return _ev("yimen.intake.application.delivered", app, {
        "application_id": app, "receipt_number": "R" + app, "method": "electronic",
        "certificate_number": "11441781MB0000001A002000001", "delivered_at": datetime.now(UTC).isoformat(),
        "online": True})


def card(app: str, colour: str, department: str = "LD-WJJ") -> Event:
    return _ev(f"yimen.efficacy.card.{colour}", app, {
        "card_id": uuid.uuid4().hex, "application_id": app, "task_id": "t1", "department": department,
        "colour": colour, "reason": "near_deadline", "deadline_at": datetime.now(UTC).isoformat(),
        "raised_at": datetime.now(UTC).isoformat()})


def anomaly() -> Event:
    return _ev("yimen.datashare.access.anomaly", uuid.uuid4().hex, {
        "kind": "burst", "reason": "某账号1分钟内读取50条人口信息（445381199001011230）",
        "detected_at": datetime.now(UTC).isoformat(), "requester": {"kind": "person", "id": "p-x"}})


def certificate_issued(app: str | None, number: str, valid_until: date, holder_id: str = "445381199001011230"
                       ) -> Event:
    return _ev("yimen.datashare.certificate.issued", number, {
        "certificate_number": number, "type_code": "11441781MB0000001A002", "type_name": "食品经营许可证",
        "holder_id": holder_id, "holder_kind": "person", "holder_name": "陈小明", "issuer_department": "LD-SCJGJ",
        "application_id": app, "issued_on": date.today().isoformat(), "valid_until": valid_until.isoformat()})


async def sms_to(client: httpx.AsyncClient, number: str) -> list[dict[str, Any]]:
    r = await client.get("/simulator/v1/sms", params={"to": number, "limit": 500})
    assert r.status_code == 200, r.text
    return r.json()["items"]
