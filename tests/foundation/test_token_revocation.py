"""Every service refuses revoked tokens (issue #13): the `tokens_revoked` event reaches every replica within
seconds (a plain subscription, not a durable consumer that hands each event to one replica), and a service that
starts later learns the revocations from identity's list. Also the assurance level a principal carries."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from shared.auth import TOKENS_REVOKED, CurrentPrincipal, JWKSVerifier, Principal
from shared.errors import Unauthorized
from shared.events import new_event
from shared.service import ServiceSpec, create_service_app
from shared.testing import TokenIssuer, eventually

from .conftest import messaging, metadata, running_probe

router = APIRouter()


@router.get("/whoami")
async def whoami(principal: CurrentPrincipal) -> dict[str, Any]:
    return {"sub": principal.subject, "level": principal.assurance_level}


SPEC = ServiceSpec(name="revprobe", title="probe", description="test", metadata=metadata, messaging=messaging,
                   routers=[router])


def create_app(settings: Any, **kw: Any) -> FastAPI:
    return create_service_app(SPEC, settings, **kw)


@contextlib.asynccontextmanager
async def probe(settings: Any, tokens: TokenIssuer) -> AsyncIterator[httpx.AsyncClient]:
    async with running_probe(create_app, settings, tokens) as c:
        await eventually(lambda: getattr(c.app.state, "revocations_subscribed", False))
        yield c


def revoked_event(sub: str, at: datetime) -> Any:
    return new_event(TOKENS_REVOKED, source="/yimen/identity", subject=sub, data={
        "account_id": sub, "account_kind": "person", "not_before": at.isoformat(), "reason": "password_changed"})


async def test_every_replica_refuses_a_revoked_token_within_seconds_and_a_later_token_works(settings_for, tokens):
    settings = settings_for("revprobe")
    replica_b = settings.model_copy(deep=True)  # the same bus prefix: two replicas of one service
    replica_b.database_url = settings_for("revprobe").database_url
    async with probe(settings, tokens) as a, probe(replica_b, tokens) as b:
        old = tokens.headers("p-rev")
        assert (await a.get("/revprobe/v1/whoami", headers=old)).status_code == 200
        await a.app.state.bus.publish(revoked_event("p-rev", datetime.now(UTC)))
        for replica in (a, b):
            async def refused(c: httpx.AsyncClient = replica) -> bool:
                r = await c.get("/revprobe/v1/whoami", headers=old)
                return r.status_code == 401 and r.json()["type"].endswith("/token-revoked")

            await eventually(refused, timeout=10)
        new = tokens.headers("p-rev")
        assert (await a.get("/revprobe/v1/whoami", headers=new)).status_code == 200
        assert (await b.get("/revprobe/v1/whoami", headers=tokens.headers("p-other"))).status_code == 200


async def test_a_service_started_after_the_revocation_learns_it_from_the_list(settings_for, tokens):
    old = tokens.headers("p-late")
    tokens.revoke("p-late")
    async with probe(settings_for("revprobe"), tokens) as c:
        async def refused() -> bool:
            return (await c.get("/revprobe/v1/whoami", headers=old)).status_code == 401

        await eventually(refused, timeout=10)
        assert (await c.get("/revprobe/v1/whoami", headers=tokens.headers("p-late"))).status_code == 200


async def test_a_revocation_never_moves_back_and_old_entries_are_forgotten(tokens):
    verifier = JWKSVerifier(tokens.fetch)
    token = tokens.token("p1")
    verifier.revoke("p1", datetime.now(UTC).timestamp() + 0.001)
    verifier.revoke("p1", 0)  # a stale list or a replayed old event
    with pytest.raises(Unauthorized) as refused:
        await verifier.verify(token)
    assert refused.value.slug == "token-revoked"
    assert verifier.forget_revocations_before(datetime.now(UTC).timestamp() + 60) == 1
    assert (await verifier.verify(token)).subject == "p1"


def test_the_assurance_level_of_persons_staff_and_delegations():
    person = Principal.from_claims({"sub": "p", "kind": "person", "level": 3})
    legacy = Principal.from_claims({"sub": "p", "kind": "person"})
    staff = Principal.from_claims({"sub": "s", "kind": "staff", "roles": ["window_clerk"]})
    bogus = Principal.from_claims({"sub": "p", "kind": "person", "level": 7})
    assert (person.assurance_level, legacy.assurance_level, staff.assurance_level, bogus.assurance_level) == (3, 1, 0, 1)
    agent = Principal.from_claims({"sub": "a", "kind": "person", "level": 3,
                                   "act": {"sub": "p", "kind": "person", "hid": "x", "level": 1}})
    assert agent.assurance_level == 3 and agent.applicant_assurance_level == 1
    for_org = Principal.from_claims({"sub": "a", "kind": "person", "level": 2,
                                     "act": {"sub": "91445381MA5000000X", "kind": "organisation"}})
    assert for_org.applicant_assurance_level == 2
