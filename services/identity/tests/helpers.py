"""Test data for identity: valid ID numbers and credit codes made on demand, and a tap on the bus."""

from __future__ import annotations

import contextlib
import itertools
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
from stdnum.cn import ric, uscc

from services.datashare.app import create_app as datashare_app
from services.identity.app import create_app
from services.identity.config import IdentitySettings
from shared.testing import TokenIssuer, free_port, serving

_seq = itertools.count(random.randrange(100, 900) * 1000)

PASSWORD = "tea-kettle-ridge-58"


def id_number(region: str = "445381", birth: str | None = None, seq: str | None = None) -> str:
    """A citizen ID number with a correct check digit, unique within a run."""
    n = next(_seq)
    birth = birth or f"19{60 + n % 40:02d}{1 + n % 12:02d}{1 + n % 28:02d}"
    seq = seq or f"{n % 1000:03d}"
    body = region + birth + seq
    return body + ric.calc_check_digit(body + "0")


def with_wrong_check_digit(number: str) -> str:
    wrong = "0" if number[-1] != "0" else "1"
    return number[:-1] + wrong


def credit_code(authority: str = "9", category: str = "2", region: str = "445381") -> str:
    n = next(_seq)
    body = f"{authority}{category}{region}MA{n % 10**7:07d}"
    return body + uscc.calc_check_digit(body + "0")


def phone() -> str:
    return f"139{next(_seq) % 10**8:08d}"


async def import_people(client: httpx.AsyncClient, *rows: dict[str, str]) -> None:
    """Rows into datashare's population registry, as the keeping department (or an admin) imports them."""
    r = await client.datashare.post("/datashare/v1/registries/population/imports",  # type: ignore[attr-defined]
                                    headers=client.registry_keeper, json=list(rows))  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text


async def import_companies(client: httpx.AsyncClient, *rows: dict[str, str]) -> None:
    r = await client.datashare.post("/datashare/v1/registries/legal-persons/imports",  # type: ignore[attr-defined]
                                    headers=client.market_keeper, json=list(rows))  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text


async def register(client: httpx.AsyncClient, *, in_registry: bool = True, **overrides: Any) -> dict[str, Any]:
    """A person registered through identity; by default the population registry holds them (level 2)."""
    body = {"name": "李明", "id_number": id_number(), "phone": phone(), "password": PASSWORD, **overrides}
    if in_registry:
        await import_people(client, {"id_number": body["id_number"], "name": body["name"]})
    r = await client.post("/identity/v1/people", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["assurance_level"] == (2 if in_registry else 1), r.text
    return {**r.json(), "raw": body}


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD, **form: str) -> httpx.Response:
    return await client.post("/identity/v1/token",
                             data={"grant_type": "password", "username": username, "password": password, **form})


async def bearer(client: httpx.AsyncClient, username: str, password: str = PASSWORD, **form: str) -> dict[str, str]:
    r = await login(client, username, password, **form)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


class EventTap:
    """Collects the events the service publishes on the bus (a core-NATS subscription on its subjects)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._subs: list[Any] = []

    async def start(self, client: httpx.AsyncClient, *types: str) -> EventTap:
        bus = client.app.state.bus  # type: ignore[attr-defined]
        for t in types:
            self._subs.append(await bus.nc.subscribe(bus.names.subject(t), cb=self._on))
        return self

    async def _on(self, msg: Any) -> None:
        self.events.append(json.loads(msg.data))

    def of(self, type_: str, subject: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type_ and e.get("subject") == subject]

    async def stop(self) -> None:
        for s in self._subs:
            await s.unsubscribe()


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
