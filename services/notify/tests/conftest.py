"""The notify tests' platform: the real simulator (its sandbox SMS gateway) as its own process, as `make run`
starts it (notify's code may not import it), and notify itself behind a real HTTP server, on the real bus and
a real database."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.notify.app import create_app
from services.notify.config import NotifyConfig
from services.notify.tests.helpers import Served
from shared.events import Event
from shared.settings import ROOT, ServiceSettings
from shared.testing import TokenIssuer, eventually, free_port, wait_ready


@dataclass
class Platform:
    settings: ServiceSettings
    config: NotifyConfig
    tokens: TokenIssuer
    notify: Served
    simulator: subprocess.Popen[bytes]
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
        "retry_base_seconds": 0.2, "retry_cap_seconds": 1.0,
        # Far beyond every wait here: what is sent, is sent because a commit woke the dispatcher or a due time it
        # knew of came, not by a poll.
        "dispatch_poll_seconds": 120,
        "stream_heartbeat_seconds": 0.5, "stream_poll_seconds": 0.2, "stream_max_seconds": 30,
        "daily_check_seconds": 3600, "department_contacts": {"LD-WJJ": "13700137000", "LD-ZSJ": "13700137001"},
        "per_person_per_hour": 50,
    }
    values.update(overrides)
    return NotifyConfig(**values)


def jwks_app(tokens: TokenIssuer) -> Starlette:
    """Identity's key set as the simulator fetches it (its control routes verify an admin's token)."""

    async def jwks(_request: Any) -> JSONResponse:
        return JSONResponse(tokens.jwks())

    return Starlette(routes=[Route("/identity/v1/.well-known/jwks.json", jwks)])


def spawn_simulator(port: int, nats_url: str, bus_prefix: str, var_dir: Any,
                    jwks_url: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV")}
    env.update({"YIMEN_SIMULATOR_PORT": str(port), "YIMEN_SIMULATOR_REGISTER_ON_START": "false",
                "NATS_URL": nats_url, "YIMEN_BUS_PREFIX": bus_prefix, "YIMEN_VAR_DIR": str(var_dir),
                "YIMEN_LOG_LEVEL": "WARNING", **({"YIMEN_JWKS_URL": jwks_url} if jwks_url else {})})
    return subprocess.Popen([sys.executable, "-m", "services.simulator"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def start_simulator(port: int, nats_url: str, bus_prefix: str, var_dir: Any,
                          jwks_url: str | None = None) -> subprocess.Popen[bytes]:
    proc = spawn_simulator(port, nats_url, bus_prefix, var_dir, jwks_url)

    async def up() -> bool:
        assert proc.poll() is None, "the simulator exited"
        try:
            async with httpx.AsyncClient() as c:
                return (await c.get(f"http://127.0.0.1:{port}/simulator/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(up, timeout=60, interval=0.2)
    return proc


@contextlib.asynccontextmanager
async def running_platform(settings: ServiceSettings, tokens: TokenIssuer, nats_url: str, sim_dir: Any,
                           **overrides: Any) -> AsyncIterator[Platform]:
    notify_port, sim_port = free_port(), free_port()
    keys = await Served(jwks_app(tokens)).start()
    simulator = await start_simulator(sim_port, nats_url, settings.platform.bus_prefix, sim_dir,
                                      f"{keys.url}/identity/v1/.well-known/jwks.json")
    try:
        config = notify_config(notify_port, sim_port, **overrides)
        notify = await Served(create_app(settings, config=config, jwks_fetcher=tokens.fetch),
                              port=notify_port).start()
        async with httpx.AsyncClient(base_url=notify.url, timeout=30) as client, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}", timeout=30,
                                  headers=tokens.headers("sim-admin", kind="staff", roles=["admin"])) as sim:
            await wait_ready(client, "notify")
            p = Platform(settings, config, tokens, notify, simulator, client, sim)
            try:
                yield p
            finally:
                await p.notify.stop()
    finally:
        simulator.terminate()
        simulator.wait(15)
        await keys.stop()


@pytest_asyncio.fixture(scope="module")
async def platform(settings_for, tokens, nats_url, tmp_path_factory) -> AsyncIterator[Platform]:
    async with running_platform(settings_for("notify"), tokens, nats_url, tmp_path_factory.mktemp("sim")) as p:
        yield p
