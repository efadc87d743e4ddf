"""The whole platform as real processes: the services, the department simulator and the gateway, on the
test databases (PostgreSQL or SQLite) and the test NATS, started by `make run`'s own launcher."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from deploy.launcher import Launcher, free_port_block
from shared.settings import SERVICES


@dataclass
class Platform:
    base: str
    admin: dict[str, str]
    launcher: Launcher
    bus_prefix: str
    nats_url: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def platform(databases, nats_url, var_dir, bus_prefix) -> Iterator[Platform]:
    prefix = f"{bus_prefix}e{secrets.token_hex(2)}"
    base = free_port_block(len(SERVICES) + 2)
    env = {
        "YIMEN_VAR_DIR": str(var_dir / "platform"),
        "NATS_URL": nats_url,
        "YIMEN_BUS_PREFIX": prefix,
        # Ports of their own (services, simulator, then the gateway), so a developer's `make run` or a
        # benchmark can run beside the tests.
        "YIMEN_SERVICE_PORT_BASE": str(base),
        "YIMEN_PORT": str(base + len(SERVICES) + 1),
        "YIMEN_ADMIN_USERNAME": "admin",
        "YIMEN_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "YIMEN_RELAY_INTERVAL_SECONDS": "0.1",
        "YIMEN_LOG_LEVEL": "INFO",
        "YIMEN_WORKFLOW_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    for s in SERVICES:
        env[f"YIMEN_{s.upper()}_DATABASE_URL"] = databases.url(s)
    import os

    for k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV"):
        if k in os.environ:
            env[k] = os.environ[k]
    launcher = Launcher(env, quiet=True)
    try:
        launcher.start()
        yield Platform(f"http://127.0.0.1:{launcher.port}", launcher.admin, launcher, prefix, nats_url)
    finally:
        launcher.stop()
