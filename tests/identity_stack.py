"""Identity beside a real datashare, for every test that registers people or organisations (registration matches
them against datashare's base registries, 实名核验). It lives with the cross-service tests because it starts two
services: a service's own code and tests never import another service (import-linter's independence contract)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from services.datashare.app import create_app as datashare_app
from services.identity.app import create_app
from services.identity.config import IdentitySettings
from shared.testing import TokenIssuer, free_port, serving


def combined_jwks(tokens: TokenIssuer, holder: dict[str, httpx.AsyncClient]) -> Any:
    """Datashare trusts identity's real keys (its service token, its admins) and the test issuer's."""

    async def fetch() -> dict[str, Any]:
        keys = list(tokens.jwks()["keys"])
        if "identity" in holder:
            keys += (await holder["identity"].get("/identity/v1/.well-known/jwks.json")).json()["keys"]
        return {"keys": keys}

    return fetch


@contextlib.asynccontextmanager
async def identity_with_datashare(settings_for: Any, tokens: TokenIssuer, *, identity: IdentitySettings,
                                  trust_test_issuer: bool = False, **platform: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Identity (in-process client, also served at `client.url`) and the real datashare it matches registrations
    against (`client.datashare`). With `trust_test_issuer`, identity also accepts the test issuer's tokens."""
    holder: dict[str, httpx.AsyncClient] = {}
    ds_settings = settings_for("datashare", service_urls={"intake": f"http://127.0.0.1:{free_port()}"})
    async with serving(datashare_app, ds_settings, tokens=tokens, jwks_fetcher=combined_jwks(tokens, holder)) as (
            ds, ds_url):
        settings = settings_for("identity", service_urls={"datashare": ds_url}, **platform)
        extra = {"jwks_fetcher": tokens.fetch} if trust_test_issuer else {}
        async with serving(create_app, settings, identity=identity, **extra) as (c, url):
            holder["identity"] = c
            c.url = url  # type: ignore[attr-defined]
            c.datashare = ds  # type: ignore[attr-defined]
            c.registry_keeper = tokens.headers("gaj-keeper", kind="staff", roles=["department_reviewer"],  # type: ignore[attr-defined]
                                               dept="LD-GAJ")
            c.market_keeper = tokens.headers("scj-keeper", kind="staff", roles=["department_reviewer"],  # type: ignore[attr-defined]
                                             dept="LD-SCJGJ")
            c.tokens = tokens  # type: ignore[attr-defined]
            yield c


def cheap_identity(admin_username: str, admin_password: str) -> IdentitySettings:
    """Identity settings with argon2 at its cheapest and a first admin, for another service's tests that need real
    people and staff (their own code must not import identity)."""
    return IdentitySettings(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1,
                            admin_username=admin_username, admin_password=admin_password)
