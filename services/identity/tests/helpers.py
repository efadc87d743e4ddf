"""Test data for identity: valid ID numbers and credit codes made on demand, and a tap on the bus."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import httpx
from stdnum.cn import ric, uscc

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
