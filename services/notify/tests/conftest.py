"""The notify tests' platform: the real simulator (its sandbox SMS gateway) and notify itself, each behind a
real HTTP server, on the real bus and a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio

from services.notify.app import create_app
from services.notify.config import NotifyConfig
from services.notify.tests.helpers import Served
from services.simulator.app import create_app as create_simulator
from services.simulator.config import SimulatorSettings
from shared.events import Event
from shared.settings import PlatformSettings, ServiceSettings
from shared.testing import TokenIssuer, free_port, wait_ready


@dataclass
class Platform:
    settings: ServiceSettings
    config: NotifyConfig
    tokens: TokenIssuer
    notify: Served
    simulator: Served
    client: httpx.AsyncClient  # notify
    sim: httpx.AsyncClient

    @property
    def app(self) -> Any:
        return self.notify.app

    async def publish(self, event: Event) -> None:
        await self.app.state.bus.publish(event)

    async def redeliver(self, event: Event) -> None:
        """The same event again under a new message id, as a publisher retrying without its outbox does:
        JetStream cannot drop it as a duplicate, so only notify's own guards stand between it and a second
        message."""
        bus = self.app.state.bus
        await bus.publish_raw(bus.names.subject(event.type), event.to_json(), event.id + "-again")

    async def restart(self) -> None:
        await self.notify.stop()
        self.notify = await Served(create_app(self.settings, config=self.config, jwks_fetcher=self.tokens.fetch),
                                   port=self.notify.port).start()
        await wait_ready(self.client, "notify")

    def person(self, sub: str) -> dict[str, str]:
        return self.tokens.headers(sub)

    @property
    def admin(self) -> dict[str, str]:
        return self.tokens.headers("admin-1", kind="staff", roles=["admin"])


def notify_config(notify_port: int, sim_port: int, **overrides: Any) -> NotifyConfig:
    values: dict[str, Any] = {
        "sms_gateway_url": f"http://127.0.0.1:{sim_port}/simulator/v1/sms/messages",
        "sms_callback_url": f"http://127.0.0.1:{notify_port}/notify/v1/sms/receipts",
        # No quiet hours unless a test sets them: the suite runs at any hour.
        "quiet_start": "00:00", "quiet_end": "00:00",
        "retry_base_seconds": 0.2, "retry_cap_seconds": 1.0, "dispatch_poll_seconds": 0.2,
        "stream_heartbeat_seconds": 0.5, "stream_poll_seconds": 0.2, "stream_max_seconds": 30,
        "daily_check_seconds": 3600, "department_contacts": {"LD-WJJ": "13700137000", "LD-ZSJ": "13700137001"},
        "per_person_per_hour": 50,
    }
    values.update(overrides)
    return NotifyConfig(**values)


@pytest_asyncio.fixture(scope="module")
async def platform(settings_for, tokens, nats_url, var_dir, tmp_path_factory) -> AsyncIterator[Platform]:
    settings = settings_for("notify")
    notify_port, sim_port = free_port(), free_port()
    sim_settings = SimulatorSettings(
        register_on_start=False, port=sim_port, state_file=tmp_path_factory.mktemp("sim") / "simulator.json",
        platform=PlatformSettings(nats_url=nats_url, bus_prefix=settings.platform.bus_prefix, var_dir=var_dir))
    simulator = await Served(create_simulator(sim_settings), port=sim_port).start()
    config = notify_config(notify_port, sim_port)
    notify = await Served(create_app(settings, config=config, jwks_fetcher=tokens.fetch), port=notify_port).start()
    async with httpx.AsyncClient(base_url=notify.url, timeout=30) as client, \
            httpx.AsyncClient(base_url=simulator.url, timeout=30) as sim:
        await wait_ready(client, "notify")
        p = Platform(settings, config, tokens, notify, simulator, client, sim)
        try:
            yield p
        finally:
            await p.notify.stop()
            await simulator.stop()
