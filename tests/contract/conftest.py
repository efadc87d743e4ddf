"""The whole platform as real processes (the e2e tests' `platform`, started by `make run`'s launcher), seeded as a
front-end developer's platform is: the demo catalogue, the base registries of `seed.py`, and one account per role."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from deploy.demo import Actor, HappyPath, apply_and_hand_in, clerk, expect, hand_in, staff
from shared.settings import SERVICES
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
    for _ in range(seed.IN_QUEUE):
        hand_in(path, li, window_item)
    reviewer = {"Authorization": f"Bearer {tokens['department_reviewer']}"}
    path.wait_for("the open tasks", lambda: len(expect(http.get(
        "/workflow/v1/tasks", headers=reviewer, params={"state": "open", "limit": 50}), 200)["items"])
        >= seed.OPEN_TASKS or None)
    known = {"person_id": person["id"], "credit_code": seed.LEGAL_PERSONS[0]["credit_code"],
             "account_id": lockable["id"], "application_id": draft["id"]}
    return World(platform.base, http, docs, tokens, person["id"], known)
