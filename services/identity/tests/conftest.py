"""One running identity app per test module (real database, real bus, its own signing keys), beside a real
datashare served over loopback HTTP: registration matches people and organisations against datashare's base
registries with identity's own service token, so the tests import the registry rows first, as an admin does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from services.identity.config import IdentitySettings
from services.identity.events.contracts import (
    DELEGATION_GRANTED,
    DELEGATION_REVOKED,
    ORGANISATION_REGISTERED,
    PERSON_ASSURANCE_RAISED,
    PERSON_REGISTERED,
    TOKENS_REVOKED,
)
from services.identity.tests.helpers import EventTap
from shared.testing import TokenIssuer
from tests.identity_stack import identity_with_datashare

ADMIN_USERNAME, ADMIN_PASSWORD = "root", "root-pass-2026"

#: Argon2 at its cheapest keeps the suite fast; production cost is in IdentitySettings.
CHEAP = IdentitySettings(
    argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1,
    admin_username=ADMIN_USERNAME, admin_password=ADMIN_PASSWORD,
)


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens: TokenIssuer) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """Identity's client; `client.datashare` is the datashare it matches against, `client.registry_keeper` the
    headers of an admin who imports registry rows there."""
    async with identity_with_datashare(settings_for, tokens, identity=CHEAP) as c:
        yield c




@pytest_asyncio.fixture(scope="module")
async def tap(client: httpx.AsyncClient) -> AsyncIterator[EventTap]:
    t = await EventTap().start(client, PERSON_REGISTERED, ORGANISATION_REGISTERED, DELEGATION_GRANTED,
                               DELEGATION_REVOKED, PERSON_ASSURANCE_RAISED, TOKENS_REVOKED)
    yield t
    await t.stop()


@pytest_asyncio.fixture(scope="module")
async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    r = await client.post("/identity/v1/token",
                          data={"grant_type": "password", "username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
