"""One running intake per test module, a stand-in datashare speaking the documented answer, and a tap on the
bus that collects every event intake publishes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from services.intake.app import create_app
from services.intake.store.tables import ItemVersion
from services.intake.tests import factories as f
from services.intake.tests.public_view import mismatches
from shared.events import Event
from shared.testing import emitted, eventually, free_port, running_app


@dataclass
class FakeDatashare:
    """Plays datashare's `POST /datashare/v1/requests` (docs/CONTRACTS.md) over real HTTP."""

    known_holders: set[str] = field(default_factory=lambda: {f.ID_NUMBER})
    down: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> FastAPI:
        api = FastAPI()

        @api.post("/datashare/v1/requests")
        async def answer(request: Request) -> JSONResponse:
            body = await request.json()
            self.requests.append({**body, "authorization": request.headers.get("authorization")})
            if self.down:
                return JSONResponse({"title": "down"}, status_code=503)
            if body["holder_id"] not in self.known_holders:
                return JSONResponse({"status": "no_match", "material_code": body["material_code"], "source": "certificate",
                                     "certificate": None, "record": None})
            if body["material_code"] == "M02":
                return JSONResponse({"status": "found", "material_code": "M02", "source": "registry", "certificate": None,
                                     "record": {"id": "pop-1", "name": "张三"}})
            return JSONResponse({"status": "found", "material_code": body["material_code"], "source": "certificate",
                                 "certificate": {"number": "441781600012345", "type_code": f.BUSINESS_LICENCE,
                                                 "name": "罗城小厨"}, "record": None})

        return api


@dataclass
class Harness:
    client: Any
    datashare: FakeDatashare
    events: list[Event]

    @property
    def bus(self) -> Any:
        return self.client.app.state.bus

    async def publish_item(self, payload: dict[str, Any]) -> dict[str, Any]:
        await self.bus.publish(f.published(payload))
        await eventually(lambda: self.item_kept(payload["code"], payload["version"]))
        return payload

    async def item_kept(self, code: str, version: int) -> ItemVersion | None:
        async with self.client.app.state.db.transaction() as s:
            stmt = select(ItemVersion).where(ItemVersion.code == code, ItemVersion.version == version)
            return (await s.execute(stmt)).scalar_one_or_none()

    def published(self, type_: str, application_id: str) -> list[Event]:
        return [e for e in self.events if e.type == type_ and e.subject == application_id]

    async def emitted(self, type_: str, application_id: str) -> int:
        """How many events of `type_` about the application intake wrote to its outbox (all it can publish)."""
        return await emitted(self.client.app, type_, application_id)

    async def wait_event(self, type_: str, application_id: str) -> Event:
        found = await eventually(lambda: self.published(type_, application_id))
        return found[0]

    async def announced(self, type_: str, application_id: str) -> int:
        """How many `type_` events about the application intake wrote to its outbox, once the relay has published
        every one and the tap has received each: evidence that nothing more is on its way, not a pause."""
        table = self.client.app.state.messaging.outbox

        async def settled() -> int | None:
            async with self.client.app.state.db.transaction() as s:
                rows = (await s.execute(select(table.c.published_at).where(
                    table.c.type == type_, table.c.payload.contains(application_id)))).all()
            if rows and all(r.published_at for r in rows) and len(self.published(type_, application_id)) >= len(rows):
                return len(rows)
            return None

        return await eventually(settled)

    async def drained(self, consumer: str) -> None:
        """Evidence that one of intake's consumers has taken every event the stream holds for it so far (applied,
        or dropped by its inbox as seen before): nothing pending, nothing awaiting its ack."""
        bus = self.bus

        async def empty() -> bool:
            info = await bus.js.consumer_info(bus.names.stream, bus.names.durable(consumer))
            return not info.num_pending and not info.num_ack_pending

        await eventually(empty)


@pytest_asyncio.fixture(scope="module")
async def intake(settings_for, tokens) -> AsyncIterator[Harness]:
    fake = FakeDatashare()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: server.started)
    settings = settings_for("intake", service_urls={"datashare": f"http://127.0.0.1:{port}"})
    events: list[Event] = []
    try:
        async with running_app(create_app, settings, tokens=tokens) as client:
            bus = client.app.state.bus
            await eventually(lambda: bus.nc is not None and bus.nc.is_connected)

            async def tap(msg: Any) -> None:
                events.append(Event.model_validate(json.loads(msg.data)))

            sub = await bus.nc.subscribe(bus.names.subject("yimen.intake.>"), cb=tap)
            yield Harness(client, fake, events)
            await sub.unsubscribe()
    finally:
        server.should_exit = True
        await serving


@pytest_asyncio.fixture(autouse=True)
async def public_status_matches_the_tables(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """After every test that ran intake, each receipt's public status projection is exactly what the status
    route rendered per request from the tables before the projection existed: whatever the test changed
    (submissions, acceptances, department steps, corrections, decisions, deliveries, walk-ins, projects …),
    the transaction that changed it also rendered it."""
    yield
    if "intake" not in request.fixturenames:
        return
    h: Harness = request.getfixturevalue("intake")
    assert await mismatches(h.client.app.state.db) == []
