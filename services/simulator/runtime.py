"""The running simulator: the departments it plays, their credentials and secrets, the decisions it made.

No database: state lives in memory, and the credentials and webhook secrets are also written to
`var/simulator.json` so a restart reuses them. Decisions scheduled but not yet sent when the process stops are
lost; workflow's clock (and its yellow cards) are what a real department's outage looks like too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx

from services.simulator.buses import DepartmentBuses
from services.simulator.clients import ApiError, IssuedToken, Platform, decision_client
from services.simulator.config import SimulatorSettings
from services.simulator.domain import webhooks
from services.simulator.domain.rules import (
    JOINT_EVENTS,
    Channel,
    CorrectionMemory,
    DecisionDraft,
    JointAction,
    JointNotice,
    PointMemory,
    Rule,
    TaskNotice,
    evaluate,
    joint_action,
)
from shared.events import new_event
from shared.http1 import KeepAliveClient

log = logging.getLogger("yimen.simulator")

#: The workflow events a department acts on; any other type is acknowledged and ignored.
ACTIONABLE = frozenset({"yimen.workflow.task.assigned", "yimen.workflow.task.reopened"})


def decision_event_type(code: str) -> str:
    return f"yimen.department.{code}.decision"


class DecisionStatus(StrEnum):
    SCHEDULED = "scheduled"
    SENT = "sent"
    #: Workflow answered 409: the task was already decided or closed.
    CONFLICT = "conflict"
    #: Workflow refused the decision (another 4xx); not retried.
    REFUSED = "refused"
    FAILED = "failed"
    #: Mode `never`: the department keeps the task and does not answer.
    WITHHELD = "withheld"
    CANCELLED = "cancelled"


@dataclass
class Department:
    code: str
    name: str
    rule: Rule
    client_id: str | None = None
    client_secret: str | None = None
    webhook_secret: str | None = None
    webhook_url: str | None = None
    token: IssuedToken | None = None

    @property
    def registered(self) -> bool:
        return bool(self.client_id and self.webhook_secret)


@dataclass
class DecisionRecord:
    id: str
    webhook_id: str
    event_type: str
    department: str
    task_id: str
    application_id: str
    step_key: str | None
    mode: str
    channel: str
    outcome: str | None
    status: DecisionStatus
    received_at: datetime
    due_at: datetime | None
    body: dict[str, Any] | None
    sent_at: datetime | None = None
    attempts: int = 0
    response_status: int | None = None
    detail: str | None = None


class UnknownDepartment(Exception):
    pass


class NotRegistered(Exception):
    """The department has no webhook secret yet (registration still running)."""


class BadTaskEvent(Exception):
    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field, self.rule, self.message = field, rule, message


@dataclass
class Ack:
    status: str
    decision: DecisionRecord | None = None


@dataclass
class Simulator:
    settings: SimulatorSettings
    http: httpx.AsyncClient
    bus: DepartmentBuses
    departments: dict[str, Department] = field(default_factory=dict)
    decisions: deque[DecisionRecord] = field(default_factory=lambda: deque(maxlen=10_000))
    #: One replay guard per department: workflow sends one event (one `webhook-id`) to several departments when a
    #: joint review is scheduled, and each department's system takes its own copy.
    guards: dict[str, webhooks.ReplayGuard] = field(default_factory=dict)
    memory: CorrectionMemory = field(default_factory=CorrectionMemory)
    points: PointMemory = field(default_factory=PointMemory)
    registration: str = "pending"
    _pending: set[asyncio.Task[None]] = field(default_factory=set)
    #: Each department's own client for its decisions and joint review actions (`clients.decision_client`), made
    #: on its first one.
    _decision_http: dict[str, KeepAliveClient] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.platform = Platform(self.settings, self.http)
        self.load_departments(self.settings.departments_file)
        self.load_state()

    # ---- configuration and state -------------------------------------------------------------------------

    def load_departments(self, path: Path) -> None:
        raw = json.loads(path.read_text(encoding="utf-8"))
        for entry in raw["departments"]:
            self.departments[entry["code"]] = Department(
                code=entry["code"], name=entry["name"], rule=Rule.model_validate(entry["rule"])
            )

    def load_state(self) -> None:
        path = self.settings.resolved_state_file()
        if not path.exists():
            return
        try:
            saved = json.loads(path.read_text(encoding="utf-8")).get("departments", {})
        except (OSError, ValueError):
            log.warning("simulator: %s is unreadable; registering afresh", path)
            return
        for code, values in saved.items():
            if dept := self.departments.get(code):
                dept.client_id = values.get("client_id")
                dept.client_secret = values.get("client_secret")
                dept.webhook_secret = values.get("webhook_secret")
                dept.webhook_url = values.get("webhook_url")

    def save_state(self) -> None:
        path = self.settings.resolved_state_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "departments": {
                d.code: {
                    "client_id": d.client_id,
                    "client_secret": d.client_secret,
                    "webhook_secret": d.webhook_secret,
                    "webhook_url": d.webhook_url,
                }
                for d in self.departments.values()
                if d.client_id
            }
        }
        tmp = path.with_suffix(".tmp")
        # Secrets: readable by the simulator's user only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False, indent=2)
        os.replace(tmp, path)

    def department(self, code: str) -> Department:
        dept = self.departments.get(code)
        if dept is None:
            raise UnknownDepartment(code)
        return dept

    def set_rule(self, code: str, rule: Rule) -> Department:
        dept = self.department(code)
        dept.rule = rule
        return dept

    # ---- registration ------------------------------------------------------------------------------------

    async def register_all(self) -> None:
        """Wait for identity and workflow, then give every department a client and a webhook. Departments are
        registered one by one and a failing one is retried later without holding up the others."""
        pending = list(self.departments.values())
        attempt = 0
        while pending:
            attempt += 1
            pause = min(self.settings.retry_seconds * attempt, self.settings.retry_seconds * 10)
            try:
                self.registration = "waiting for identity and workflow"
                await self.platform.wait_ready()
                admin = await self.platform.password_token(self.settings.admin_username, self.settings.admin_password)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.registration = f"retrying: {exc}"[:300]
                log.warning("simulator: cannot log in as admin (%s); retrying", exc)
                await asyncio.sleep(self._login_pause(exc, pause))
                continue
            failed: list[tuple[Department, str]] = []
            for dept in pending:
                try:
                    await self._register(dept, admin.access_token)
                    self.save_state()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failed.append((dept, str(exc)))
                    log.warning("simulator: cannot register %s (%s); retrying", dept.code, exc)
            pending = [d for d, _ in failed]
            if pending:
                self.registration = ("retrying: " + "; ".join(f"{d.code}: {why}" for d, why in failed))[:500]
                await asyncio.sleep(pause)
        self.registration = "ok"
        log.info("simulator: %d departments registered", len(self.departments))

    def _login_pause(self, exc: Exception, pause: float) -> float:
        """Wrong admin credentials are retried slowly: identity locks a username after five failures."""
        if isinstance(exc, ApiError) and exc.status == 429:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                return float(json.loads(exc.body).get("retry_after"))
            return self.settings.auth_retry_seconds
        if isinstance(exc, ApiError) and exc.status in (400, 401, 403):
            return self.settings.auth_retry_seconds
        return pause

    async def _register(self, dept: Department, admin_token: str) -> None:
        dept.token = None
        if dept.client_id and dept.client_secret:
            try:
                dept.token = await self.platform.client_token(dept.client_id, dept.client_secret)
            except ApiError as exc:
                if exc.status >= 500 or exc.status == 429:
                    raise
                log.info("simulator: saved client of %s no longer accepted; creating a new one", dept.code)
                dept.client_id = dept.client_secret = None
        if dept.token is None:
            dept.client_id, dept.client_secret = await self.platform.create_department_client(
                admin_token, dept.code, f"{dept.name} 业务系统（模拟）"
            )
            dept.token = await self.platform.client_token(dept.client_id, dept.client_secret)
        url = self.settings.webhook_url(dept.code)
        if dept.webhook_secret and dept.webhook_url == url:
            current = await self.platform.current_webhook(dept.token.access_token, dept.code)
            if current and current.get("url") == url and current.get("enabled", True):
                # Workflow shows the secret to its department: follow a rotation made elsewhere.
                dept.webhook_secret = str(current.get("secret") or dept.webhook_secret)
                return
        dept.webhook_secret = await self.platform.register_webhook(dept.token.access_token, dept.code, url)
        dept.webhook_url = url

    async def department_token(self, dept: Department, *, renew: bool = False) -> str:
        if renew or dept.token is None or not dept.token.fresh():
            if not (dept.client_id and dept.client_secret):
                raise NotRegistered(dept.code)
            dept.token = await self.platform.client_token(dept.client_id, dept.client_secret)
        return dept.token.access_token

    # ---- receiving ---------------------------------------------------------------------------------------

    def receive(self, code: str, body: bytes, headers: dict[str, str], *, now: datetime | None = None) -> Ack:
        """Take one webhook delivery: verify it, and schedule the department's answer."""
        now = now or datetime.now(UTC)
        dept = self.department(code)
        if not dept.webhook_secret:
            raise NotRegistered(code)
        guard = self.guards.setdefault(code, webhooks.ReplayGuard())
        delivery = webhooks.verify(dept.webhook_secret, body, headers, guard=guard, now=now)
        if delivery.verdict is webhooks.Verdict.DUPLICATE:
            return Ack("duplicate")
        joint = parse_joint_event(body)
        if joint is not None:
            guard.take(delivery)
            return self._take_joint(dept, joint, delivery.webhook_id, now)
        notice = parse_task_event(body)
        if notice is not None and notice.department != code:
            raise BadTaskEvent(
                "body.data.department", "department_mismatch",
                f"The task is for {notice.department}, but was delivered to {code}'s endpoint.",
            )
        guard.take(delivery)
        if notice is None:
            return Ack("ignored")
        event_type = notice.event_type
        rule = dept.rule
        draft = evaluate(rule, notice, self.memory)
        record = DecisionRecord(
            id=uuid.uuid4().hex,
            webhook_id=delivery.webhook_id,
            event_type=event_type,
            department=code,
            task_id=notice.task_id,
            application_id=notice.application_id,
            step_key=notice.step_key,
            mode=rule.mode.value,
            channel=rule.channel.value,
            outcome=draft.outcome.value if draft else None,
            status=DecisionStatus.SCHEDULED if draft else DecisionStatus.WITHHELD,
            received_at=now,
            due_at=now + timedelta(seconds=rule.delay_seconds) if draft else None,
            body=draft.model_dump(mode="json") if draft else None,
        )
        self.decisions.append(record)
        if draft is not None:
            task = asyncio.create_task(self._answer(dept, record, draft, rule), name=f"decide-{notice.task_id}")
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return Ack("scheduled" if draft else "withheld", record)

    def _take_joint(self, dept: Department, notice: JointNotice, webhook_id: str, now: datetime) -> Ack:
        """A joint review (联合审图 / 联合验收) event: the lead schedules and consolidates, a participant gives its
        opinion, per the department's rule. Recorded like a decision (`task_id` holds the review's id)."""
        rule = dept.rule
        today = (now + timedelta(hours=8)).date().isoformat()  # the review's date in Asia/Shanghai
        action = joint_action(rule, dept.code, notice, self.points, today)
        if action is None:
            return Ack("ignored")
        record = DecisionRecord(
            id=uuid.uuid4().hex, webhook_id=webhook_id, event_type=notice.event_type, department=dept.code,
            task_id=notice.review_id, application_id=notice.application_id, step_key=f"joint_review:{action.action}",
            mode=rule.mode.value, channel=Channel.REST.value, outcome=str(action.body.get("verdict") or action.action),
            status=DecisionStatus.SCHEDULED, received_at=now, due_at=now + timedelta(seconds=rule.delay_seconds),
            body=dict(action.body),
        )
        self.decisions.append(record)
        task = asyncio.create_task(self._act_joint(dept, record, action, rule), name=f"joint-{notice.review_id}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return Ack("scheduled", record)

    async def _act_joint(self, dept: Department, record: DecisionRecord, action: JointAction, rule: Rule) -> None:
        try:
            await asyncio.sleep(rule.delay_seconds)
            pause = 0.2
            while True:
                record.attempts += 1
                try:
                    http = self.decision_http(dept)
                    response = await self.platform.joint_review_action(
                        await self.department_token(dept), record.task_id, action.action, action.body, http)
                    if response.status_code == 401:
                        response = await self.platform.joint_review_action(
                            await self.department_token(dept, renew=True), record.task_id, action.action, action.body,
                            http)
                    record.response_status = response.status_code
                    if response.status_code >= 500:
                        raise ApiError(f"joint review {action.action}", response.status_code, response.text)
                    record.sent_at = datetime.now(UTC)
                    if response.status_code < 300:
                        record.status, record.detail = DecisionStatus.SENT, None
                    elif response.status_code == 409:
                        record.status, record.detail = DecisionStatus.CONFLICT, response.text[:300]
                    else:
                        record.status, record.detail = DecisionStatus.REFUSED, response.text[:300]
                    return
                except Exception as exc:
                    record.detail = f"{type(exc).__name__}: {exc}"[:300]
                    if record.attempts >= self.settings.decision_attempts:
                        record.status = DecisionStatus.FAILED
                        log.warning("simulator: joint review %s on %s failed: %s", action.action, record.task_id,
                                    record.detail)
                        return
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 10.0)
        except asyncio.CancelledError:
            record.status = DecisionStatus.CANCELLED
            raise

    # ---- answering ---------------------------------------------------------------------------------------

    async def _answer(self, dept: Department, record: DecisionRecord, draft: DecisionDraft, rule: Rule) -> None:
        try:
            await asyncio.sleep(rule.delay_seconds)
            pause = 0.2
            while True:
                record.attempts += 1
                try:
                    if rule.channel is Channel.BUS:
                        await self._publish(dept, record, draft)
                    else:
                        await self._post(dept, record, draft)
                    return
                except Exception as exc:  # the department's system keeps trying, as a real one would
                    record.detail = f"{type(exc).__name__}: {exc}"[:300]
                    if record.attempts >= self.settings.decision_attempts:
                        record.status = DecisionStatus.FAILED
                        log.warning("simulator: decision on %s failed: %s", record.task_id, record.detail)
                        return
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 10.0)
        except asyncio.CancelledError:
            record.status = DecisionStatus.CANCELLED
            raise

    def decision_http(self, dept: Department) -> KeepAliveClient:
        http = self._decision_http.get(dept.code)
        if http is None:
            http = self._decision_http[dept.code] = decision_client(self.settings.http_timeout_seconds)
        return http

    async def _post(self, dept: Department, record: DecisionRecord, draft: DecisionDraft) -> None:
        body = draft.model_dump(mode="json")
        http = self.decision_http(dept)
        response = await self.platform.decide(await self.department_token(dept), record.task_id, body, http)
        if response.status_code == 401:
            response = await self.platform.decide(
                await self.department_token(dept, renew=True), record.task_id, body, http
            )
        record.response_status = response.status_code
        if response.status_code >= 500:
            raise ApiError("decision", response.status_code, response.text)
        record.sent_at = datetime.now(UTC)
        if response.status_code < 300:
            record.status, record.detail = DecisionStatus.SENT, None
        elif response.status_code == 409:
            record.status, record.detail = DecisionStatus.CONFLICT, response.text[:300]
        else:
            record.status, record.detail = DecisionStatus.REFUSED, response.text[:300]

    async def _publish(self, dept: Department, record: DecisionRecord, draft: DecisionDraft) -> None:
        bus = self.bus.for_department(dept.code)
        data = {**draft.model_dump(mode="json"), "task_id": record.task_id, "decided_by": {"name": dept.name}}
        event = new_event(
            decision_event_type(dept.code),
            source=f"/department/{dept.code}",
            subject=record.task_id,
            data=data,
            # Stable per decision: a retried publish is dropped by JetStream's duplicate window.
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"yimen-simulator/{record.id}").hex,
        )
        await bus.publish(event)
        record.sent_at = datetime.now(UTC)
        record.status, record.detail = DecisionStatus.SENT, None

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._pending, return_exceptions=True)
        clients, self._decision_http = list(self._decision_http.values()), {}
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


def parse_task_event(body: bytes) -> TaskNotice | None:
    """The task of a webhook body (a CloudEvent of workflow's task events); None for other event types."""
    try:
        event = json.loads(body)
    except ValueError:
        raise BadTaskEvent("body", "json_invalid", "The body is not JSON.") from None
    if not isinstance(event, dict):
        raise BadTaskEvent("body", "object_type", "The body must be a CloudEvent object.")
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise BadTaskEvent("body.type", "missing", "The CloudEvent has no type.")
    if event_type not in ACTIONABLE:
        return None
    data = event.get("data")
    if not isinstance(data, dict):
        raise BadTaskEvent("body.data", "object_type", "The CloudEvent's data must be an object.")
    values: dict[str, str] = {}
    for name in ("task_id", "application_id", "department"):
        value = data.get(name)
        if not isinstance(value, str | int) or not str(value).strip():
            raise BadTaskEvent(f"body.data.{name}", "missing", f"data.{name} is required.")
        values[name] = str(value)
    step = data.get("step_key")
    item = data.get("item_code")
    return TaskNotice(
        event_type=event_type,
        task_id=values["task_id"],
        application_id=values["application_id"],
        department=values["department"],
        step_key=str(step) if step is not None else None,
        item_code=str(item) if item is not None else None,
    )


def parse_joint_event(body: bytes) -> JointNotice | None:
    """The joint review of a webhook body, or None when it is not a joint review event (or is malformed: the task
    parser then says what is wrong)."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("type") not in JOINT_EVENTS or not isinstance(event.get("data"), dict):
        return None
    data = event["data"]
    try:
        pending = data.get("pending")
        return JointNotice(
            event_type=str(event["type"]), review_id=str(data["review_id"]), application_id=str(data["application_id"]),
            lead_department=str(data["lead_department"]), round=int(data.get("round") or 1),
            participants=tuple(str(d) for d in data.get("participants") or ()),
            pending=tuple(str(d) for d in pending) if isinstance(pending, list) else None,
        )
    except (KeyError, TypeError, ValueError):
        raise BadTaskEvent("body.data", "joint_review_fields",
                           "A joint review event needs review_id, application_id and lead_department.") from None
