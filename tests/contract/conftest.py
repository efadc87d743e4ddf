"""The whole platform as real processes (the e2e tests' `platform`, started by `make run`'s launcher), seeded as a
front-end developer's platform is: the demo catalogue, the base registries of `seed.py`, and one account per role."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from deploy.demo import HappyPath, clerk, expect, staff
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
    person = expect(http.post("/identity/v1/people", json={
        "name": seed.CITIZEN["name"], "id_number": seed.CITIZEN["id_number"], "phone": "13800138000",
        "password": password}), 201)
    citizen = path.login(seed.CITIZEN["id_number"], password)
    tokens = {"admin": path.admin, "citizen": citizen}
    for role in ("catalog_editor", "supervisor"):
        tokens[role] = staff(path, role).token
    tokens["department_reviewer"] = staff(path, "department_reviewer", department=seed.STAFF_DEPARTMENT).token
    tokens["window_clerk"] = clerk(path, seed.STAFF_POINT).token
    docs = {s: expect(http.get(f"/{s}/openapi.json"), 200) for s in SERVICES}
    known = {"person_id": person["id"], "credit_code": seed.LEGAL_PERSONS[0]["credit_code"]}
    return World(platform.base, http, docs, tokens, person["id"], known)
