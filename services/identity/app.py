"""Wiring of the identity service: its routers, tables, consumers and start-up work.

Identity verifies tokens presented to its own routes against its own key table (no HTTP round trip to
itself). When a `jwks_fetcher` is passed (single-service tests), its keys are trusted as well."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import FastAPI

from services.identity.api.routes import router
from services.identity.api.token import revocation_list
from services.identity.bootstrap import bootstrap_admin, ensure_signing_key, housekeeping
from services.identity.config import IdentitySettings
from services.identity.events.handlers import CONSUMERS
from services.identity.runtime import IdentityRuntime
from services.identity.store.tables import Base, messaging
from shared.auth import JwksFetcher
from shared.service import ServiceContext, ServiceSpec, create_service_app
from shared.settings import ServiceSettings
from shared.types import utcnow

DESCRIPTION = """People, organisations, accounts, tokens (JWT + JWKS), staff roles, department system clients and
delegation (委托代办).

**Tokens every service trusts.** `POST /identity/v1/token` issues EdDSA (Ed25519) JWTs valid 15 minutes, with
header `kid`; verify them with the keys at `GET /identity/v1/.well-known/jwks.json` (shared `JWKSVerifier`).

| claim | meaning |
|---|---|
| `iss`, `aud` | `yimen-identity`, `yimen` |
| `exp`, `iat`, `jti` | expiry, issue time, token id |
| `sub` | account id (person, staff member, or department client id) |
| `kind` | `person`, `staff`, `department_system` |
| `roles` | `citizen`; `org_agent` (acting for an organisation); staff roles; `department_system` |
| `name` | display name |
| `hid` | persons: the citizen ID number (never log it) |
| `dept`, `point` | staff: department and service point codes; department systems: `dept` |
| `phone`, `unit` | staff: office phone and unit (科室), shown to applicants with the name on the steps they handle |
| `org` | credit code of the organisation an agent acts for |
| `level` | persons: identity assurance (实名核验) — 1 self-registered, 2 matched against the population registry, 3 verified in person at a window |
| `act` | under a delegation: `{sub, kind, hid, delegation, items, level}` of the principal |

**Identity assurance.** Registration matches name and ID number against datashare's population registry (with
identity's own service token; the person reads the check in their access log). A name that does not match is a
422 on `name` and creates nothing; a number the registry does not hold gives a level-1 account that says why.
A window clerk raises a person to level 3 after checking the ID card (`POST /people/{id}/in-person-verification`).
Organisations are registered only by the legal representative the legal-person registry names.

**Revocation.** A password change, `POST /me/logout-everywhere` and an admin's lock revoke every earlier access
token of the account at every service within seconds (`yimen.identity.account.tokens_revoked`; list at
`GET /token-revocations`).

ID and phone numbers are masked in every response except to the person themself (`GET /me`); window clerks see
a looked-up person's phone number. Every look-up of a person by staff is audited.
"""

SPEC = ServiceSpec(
    name="identity",
    title="Yimen identity",
    description=DESCRIPTION,
    metadata=Base.metadata,
    messaging=messaging,
    routers=[router],
    consumers=CONSUMERS,
    openapi_tags=[
        {"name": "people", "description": "Registration by citizen ID number matched against the population registry "
         "(实名注册, 实名核验), window-assisted look-up, and the window clerk's in-person ID-card check (level 3)."},
        {"name": "tokens", "description": "OAuth2 token endpoint, logout, password change, JWKS, key rotation."},
        {"name": "me", "description": "The caller's own account."},
        {"name": "organisations and delegation",
         "description": "Organisations by credit code, their agents (经办人), delegation (委托代办)."},
        {"name": "staff and department systems", "description": "Staff roles and client-credentials clients."},
    ],
)


def create_app(settings: ServiceSettings | None = None, *, identity: IdentitySettings | None = None,
               **kwargs: Any) -> FastAPI:
    runtime = IdentityRuntime.build(identity or IdentitySettings())
    extra_fetcher: JwksFetcher | None = kwargs.pop("jwks_fetcher", None)
    kwargs.pop("revocations_fetcher", None)
    holder: dict[str, FastAPI] = {}

    async def own_jwks() -> dict[str, Any]:
        async with holder["app"].state.db.transaction() as session:
            keys = (await runtime.keyring.jwks(session, utcnow()))["keys"]
        if extra_fetcher is not None:
            keys = keys + (await extra_fetcher())["keys"]
        return {"keys": keys}

    async def own_revocations() -> dict[str, Any]:
        # Identity's own verifier reads the list from its own table, not over HTTP from itself.
        async with holder["app"].state.db.transaction() as session:
            body = await revocation_list(session, runtime, utcnow())
        return body.model_dump(mode="json")

    async def signing_key(ctx: ServiceContext) -> None:
        await ensure_signing_key(ctx.db, runtime)
        # Our own key set is one indexed query away: refetch freely, so a rotation (or an emergency withdrawal)
        # takes effect on identity's own routes at once rather than after the shared cache's 5 s / 5 min.
        ctx.verifier.min_refresh, ctx.verifier.ttl = 0.0, 5.0

    async def first_admin(ctx: ServiceContext) -> None:
        await bootstrap_admin(ctx.db, runtime)

    async def identity_housekeeping(ctx: ServiceContext) -> None:
        await housekeeping(ctx.db, runtime)

    spec = dataclasses.replace(SPEC, on_startup=[signing_key, first_admin], background=[identity_housekeeping])
    app = create_service_app(spec, settings, jwks_fetcher=own_jwks, revocations_fetcher=own_revocations, **kwargs)
    app.state.identity = runtime
    holder["app"] = app
    return app
