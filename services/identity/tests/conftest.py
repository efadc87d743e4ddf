"""One running identity app per test module (real database, real bus, its own signing keys)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from services.identity.app import create_app
from services.identity.config import IdentitySettings
from services.identity.events.contracts import (
    DELEGATION_GRANTED,
    DELEGATION_REVOKED,
    ORGANISATION_REGISTERED,
    PERSON_REGISTERED,
)
from services.identity.tests.helpers import EventTap
from shared.testing import running_app

ADMIN_USERNAME, ADMIN_PASSWORD = "root", "root-pass-2026"

#: Argon2 at its cheapest keeps the suite fast; production cost is in IdentitySettings.
CHEAP = IdentitySettings(
    argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1,
    admin_username=ADMIN_USERNAME, admin_password=ADMIN_PASSWORD,
)


@pytest_asyncio.fixture(scope="module")
async def client(settings_for) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    async with running_app(create_app, settings_for("identity"), identity=CHEAP) as c:
        yield c


@pytest_asyncio.fixture(scope="module")
async def tap(client: httpx.AsyncClient) -> AsyncIterator[EventTap]:
    t = await EventTap().start(client, PERSON_REGISTERED, ORGANISATION_REGISTERED, DELEGATION_GRANTED,
                               DELEGATION_REVOKED)
    yield t
    await t.stop()


@pytest_asyncio.fixture(scope="module")
async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    r = await client.post("/identity/v1/token",
                          data={"grant_type": "password", "username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
