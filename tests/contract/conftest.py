"""The whole platform as real processes (the e2e tests' `platform`, started by `make run`'s launcher), seeded as a
front-end developer's platform is: the demo catalogue, the base registries of `seed.py`, and one account per role."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from deploy.demo import PDF, Actor, HappyPath, apply_and_hand_in, clerk, expect, hand_in, staff
from shared.settings import SERVICES
from shared.testing import eventually
from tests.e2e.conftest import platform  # noqa: F401 - the fixture, shared with the e2e tests

from . import seed


@dataclass
class World:
    base: str
    http: httpx.Client
    docs: dict[str, dict[str, Any]]
    tokens: dict[str, str]
    person_id: str
    #: Path parameters the test can fill: from the seed, then from what successful examples created.
    known: dict[str, str] = field(default_factory=dict)
    #: Passwords earlier examples registered accounts with → the login name (for a password change example).
    credentials: dict[str, str] = field(default_factory=dict)
    #: Who (which caller kind) created each of `known`.
    creators: dict[str, str] = field(default_factory=dict)
    #: Per operation ("POST /path"), what the seed prepared for each of its examples in turn: path parameter
    #: values and, under "caller", the key of `tokens` that sends it (the state no earlier example makes).
    prepared: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def identity_service_token(identity_db_url: str) -> str:
    """The token identity signs for itself when it asks datashare's registries (`store/registry.py`): the only
    caller the registry matches admit. Signed with identity's own current key, as identity does."""
    from datetime import timedelta

    from services.identity.store.keys import Keyring
    from services.identity.store.registry import SERVICE_SUBJECT
    from shared.db import Database
    from shared.types import utcnow

    async def sign() -> str:
        db = Database(identity_db_url, info={"service": "identity"})
        try:
            now = utcnow()
            async with db.transaction() as session:
                key = await Keyring("").signing_key(session, now)  # the test platform sets no key passphrase
            return key.sign(SERVICE_SUBJECT, now=now, ttl=timedelta(minutes=30))
        finally:
            await db.dispose()

    return asyncio.run(sign())


def register(http: httpx.Client, person: dict[str, str], password: str) -> dict[str, Any]:
    return expect(http.post("/identity/v1/people", json={
        "name": person["name"], "id_number": person["id_number"], "phone": "13800138000", "password": password}), 201)


@pytest.fixture(scope="session")
def world(platform) -> World:  # noqa: F811 - the imported fixture
    path = HappyPath(platform.base, platform.admin["username"], platform.admin["password"], say=lambda _m: None,
                     seed=18)
    http = path.http
    path.admin_and_catalogue()  # waits for the demo catalogue
    admin = path.admin_headers
    expect(http.post("/datashare/v1/registries/population/imports", headers=admin, json=seed.POPULATION), 200)
    expect(http.post("/datashare/v1/registries/legal-persons/imports", headers=admin, json=seed.LEGAL_PERSONS), 200)
    password = "contract-" + uuid.uuid4().hex[:8]
    person = register(http, seed.CITIZEN, password)
    citizen = path.login(seed.CITIZEN["id_number"], password)
    tokens = {"admin": path.admin, "citizen": citizen}
    # 李明 registers his company and appoints 赵强 its agent, who signs in for it.
    company, agent = seed.ORG_AGENT_COMPANY, seed.ORG_AGENT
    register(http, agent, password)
    as_citizen = {"Authorization": f"Bearer {citizen}"}
    expect(http.post("/identity/v1/organisations", headers=as_citizen, json={
        "name": company["name"], "credit_code": company["credit_code"],
        "legal_representative_id_number": seed.CITIZEN["id_number"]}), 201)
    expect(http.post(f"/identity/v1/organisations/{company['credit_code']}/agents", headers=as_citizen,
                     json={"id_number": agent["id_number"]}), 201)
    tokens["org_agent"] = path.login(agent["id_number"], password, organisation=company["credit_code"])
    lockable = register(http, seed.LOCKABLE, password)
    # The department's own system (client credentials) and identity's service token.
    client = expect(http.post("/identity/v1/department-clients", headers=admin, json={
        "department": seed.STAFF_DEPARTMENT, "name": "合同测试系统"}), 201)
    tokens["department_system"] = expect(http.post("/identity/v1/token", data={
        "grant_type": "client_credentials", "client_id": client["client_id"],
        "client_secret": client["client_secret"]}), 200)["access_token"]
    tokens["service"] = identity_service_token(platform.launcher.environ["YIMEN_IDENTITY_DATABASE_URL"])
    tokens["catalog_editor"] = staff(path, "catalog_editor").token
    tokens["supervisor"] = staff(path, "supervisor", department=seed.STAFF_DEPARTMENT).token
    tokens["department_reviewer"] = staff(path, "department_reviewer", department=seed.STAFF_DEPARTMENT).token
    tokens["window_clerk"] = clerk(path, seed.STAFF_POINT).token
    docs = {s: expect(http.get(f"/{s}/openapi.json"), 200) for s in SERVICES}
    # The company's draft application for the food business permit: the purpose of the data request example.
    draft = expect(http.post("/intake/v1/applications", headers={"Authorization": f"Bearer {tokens['org_agent']}"},
                             json={"item_code": seed.FOOD_PERMIT_ITEM, "channel": "online",
                                   "service_point": seed.STAFF_POINT}), 201)
    # 李明's food business permit applications, accepted at the counter: open tasks for the department's decision
    # and reassignment examples (one each: a task is decided once).
    # The department's system (the simulator) leaves its tasks to the examples.
    expect(http.put(f"/simulator/v1/departments/{seed.STAFF_DEPARTMENT}/rule", json={"mode": "never"},
                    headers=admin), 200)
    li = Actor(seed.CITIZEN["name"], seed.CITIZEN["id_number"], password, citizen)
    counter = Actor("窗口", "clerk", "", tokens["window_clerk"])
    for _ in range(seed.OPEN_TASKS):
        apply_and_hand_in(path, li, seed.FOOD_PERMIT_ITEM, by=counter)
    # Two fire checks (accepted at a window only), handed in and waiting in the counter's queue: the clerk's not-accept and return examples.
    window_item = next(i["code"] for i in expect(http.get("/catalog/v1/items", params={
        "department": seed.WINDOW_ITEM_DEPARTMENT, "limit": 100}), 200)["items"] if i["name"] == seed.WINDOW_ITEM)
    in_queue = [hand_in(path, li, window_item)["id"] for _ in range(seed.IN_QUEUE)]
    reviewer = {"Authorization": f"Bearer {tokens['department_reviewer']}"}
    path.wait_for("the open tasks", lambda: len(expect(http.get(
        "/workflow/v1/tasks", headers=reviewer, params={"state": "open", "limit": 50}), 200)["items"])
        >= seed.OPEN_TASKS or None)
    prepared = {f"POST /intake/v1/applications/{{application_id}}/{action}": [{"application_id": app_id}]
                for action, app_id in zip(seed.QUEUE_ACTIONS, in_queue, strict=True)}
    prepared |= results_at_the_counter(path, li, counter) | joint_reviews(path, tokens)
    known = {"person_id": person["id"], "credit_code": seed.LEGAL_PERSONS[0]["credit_code"],
             "account_id": lockable["id"], "application_id": draft["id"]}
    return World(platform.base, http, docs, tokens, person["id"], known, prepared=prepared)


def until(what: str, check: Any, timeout: float = 60) -> Any:
    """Poll the API until `check` answers (events take a moment to flow)."""
    try:
        return asyncio.run(eventually(check, timeout=timeout, interval=0.2))
    except AssertionError as exc:
        raise AssertionError(f"waiting for {what}: {exc}") from None


def results_at_the_counter(path: HappyPath, li: Actor, counter: Actor) -> dict[str, list[dict[str, str]]]:
    """李明's 临时居民身份证 (an immediate item, decided at acceptance), one per hand-over example: accepted at
    `STAFF_POINT`, paid on the payment platform (the simulator's signed confirmation), its result waiting at the
    counter (`awaiting_pickup`) for the clerk, as `make demo` step 10 does."""
    http = path.http
    code = next(i["code"] for i in expect(http.get("/catalog/v1/items", params={"limit": 200}), 200)["items"]
                if i["name"] == seed.COUNTER_ITEM)
    ids = []
    for delivery in seed.HAND_OVERS:
        app = apply_and_hand_in(path, li, code, delivery=delivery, by=counter)
        notice = until("the payment notice", lambda a=app: path.application(li, a["id"])["payment"])
        expect(http.post("/simulator/v1/payments", json={
            "payment_code": notice["payment_code"], "amount": notice["amount"]}), 201)
        ids.append(app["id"])
    for app_id in ids:
        until("the result at the counter",
              lambda a=app_id: path.application(li, a)["status"] == "awaiting_pickup")
    return {"POST /intake/v1/applications/{application_id}/deliver": [{"application_id": i} for i in ids]}


def joint_reviews(path: HappyPath, tokens: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """竣工联合验收 applied for by the company's agent, one joint review per example, each brought through the API
    to the state its example needs: awaiting the lead's schedule; scheduled (for each opinion); every opinion in
    (for each consolidation). The simulator's departments are told to leave them alone (`never`); each example is
    sent by the department system that may act (`department_system <code>`)."""
    http, admin = path.http, path.admin_headers
    departments = seed.JOINT_DEPARTMENTS
    lead = departments[0]
    for dept in departments:
        expect(http.put(f"/simulator/v1/departments/{dept}/rule", json={"mode": "never"}, headers=admin), 200)
        client = expect(http.post("/identity/v1/department-clients", headers=admin, json={
            "department": dept, "name": f"合同测试系统 {dept}"}), 201)
        tokens[f"department_system {dept}"] = expect(http.post("/identity/v1/token", data={
            "grant_type": "client_credentials", "client_id": client["client_id"],
            "client_secret": client["client_secret"]}), 200)["access_token"]
    agent = {"Authorization": f"Bearer {tokens['org_agent']}"}
    code = next(i["code"] for i in expect(http.get("/catalog/v1/items", params={"limit": 200}), 200)["items"]
                if i["name"] == seed.JOINT_ITEM)
    wanted = {"schedule": 1, "opinions": len(seed.OPINION_BY), "consolidation": len(seed.CONSOLIDATED)}
    apps = []
    for _ in range(sum(wanted.values())):
        app = expect(http.post("/intake/v1/applications", headers=agent, json={
            "item_code": code, "channel": "online", "service_point": seed.STAFF_POINT,
            "form": {"project_name": "罗定某厂新建厂房", "project_code": "2026-441781-04-01-123456",
                     "construction_site": "罗定市素龙街道工业园8号", "applicant_name": seed.ORG_AGENT["name"],
                     "phone": "13800138000"}}), 201)
        expect(http.post(f"/intake/v1/applications/{app['id']}/materials", headers=agent,
                         data={"material_code": "completion_report"},
                         files={"file": ("completion_report.pdf", PDF, "application/pdf")}), 201)
        expect(http.post(f"/intake/v1/applications/{app['id']}/submit", headers=agent), 200, 201)
        apps.append(app["id"])

    def review_of(app_id: str) -> str | None:
        found = expect(http.get("/workflow/v1/joint-reviews", params={"application_id": app_id}, headers=agent), 200)
        return found[0]["id"] if found and found[0]["state"] == "awaiting_schedule" else None

    reviews = [until("the joint review awaiting its schedule", lambda a=a: review_of(a), timeout=90) for a in apps]
    as_ = {d: {"Authorization": f"Bearer {tokens[f'department_system {d}']}"} for d in departments}
    for review in reviews[1:]:  # scheduled by the lead, as the schedule example does
        expect(http.post(f"/workflow/v1/joint-reviews/{review}/schedule", headers=as_[lead], json={
            "date": (date.today() + timedelta(days=3)).isoformat(), "mode": "on_site",
            "place": "罗定市素龙街道工业园 8 号（项目现场）", "participants": departments}), 200)
    closing = reviews[1 + len(seed.OPINION_BY):]
    for review, opinions in zip(closing, seed.CONSOLIDATED, strict=True):  # every participant has spoken
        for dept in departments:
            expect(http.post(f"/workflow/v1/joint-reviews/{review}/opinions", headers=as_[dept],
                             json=opinions.get(dept, {"verdict": "pass"})), 200)
    base = "POST /workflow/v1/joint-reviews/{review_id}"
    return {
        f"{base}/schedule": [{"review_id": reviews[0], "caller": f"department_system {lead}"}],
        f"{base}/opinions": [{"review_id": r, "caller": f"department_system {d}"}
                             for r, d in zip(reviews[1:1 + len(seed.OPINION_BY)], seed.OPINION_BY, strict=True)],
        f"{base}/consolidation": [{"review_id": r, "caller": f"department_system {lead}"} for r in closing],
    }
