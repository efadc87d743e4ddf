"""Helpers of the hostile-input tests: a service app started with `running_app` (real database, real bus,
lifespan) and also served over real loopback HTTP, and tokens of every role the platform knows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from services.identity.config import IdentitySettings
from shared.testing import TokenIssuer, eventually, free_port, running_app

#: Argon2 at its cheapest keeps the suite fast (as identity's own tests do); the lock-out policy is the default.
CHEAP_IDENTITY = IdentitySettings(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1,
                                  admin_username="root", admin_password="root-pass-2026")


def role_headers(tokens: TokenIssuer) -> dict[str, dict[str, str]]:
    """One bearer token per kind of caller: a citizen, an organisation agent, a window clerk at a service point,
    a department reviewer, a department system, a supervisor and an admin."""
    return {
        "citizen": tokens.headers("citizen-1", roles=["citizen"], hid="445381199001011234", name="张三"),
        "org_agent": tokens.headers("agent-1", roles=["citizen", "org_agent"], hid="445381199001011235",
                                    org="91445381MA5000000X", name="李四"),
        "window_clerk": tokens.headers("clerk-1", kind="staff", roles=["window_clerk"], dept="LD-ZSJ",
                                       point="LD-CENTRE", name="窗口"),
        "reviewer": tokens.headers("reviewer-1", kind="staff", roles=["department_reviewer"], dept="LD-WJJ"),
        "department_system": tokens.headers("system-LD-XFJ", kind="department_system",
                                            roles=["department_system"], dept="LD-XFJ"),
        "supervisor": tokens.headers("supervisor-1", kind="staff", roles=["supervisor"]),
        "admin": tokens.headers("admin-1", kind="staff", roles=["admin", "catalog_editor"]),
    }


@dataclass
class Served:
    client: httpx.AsyncClient  # in-process (ASGI) client of the app
    url: str  # the same app over real loopback HTTP

    @property
    def app(self) -> Any:
        return self.client.app  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def serve(create_app: Callable[..., Any], settings: Any, *, tokens: TokenIssuer,
                **kwargs: Any) -> AsyncIterator[Served]:
    """`running_app` (migrations, bus, relay, consumers), and the started app also on a loopback port, so a
    client running in another thread (schemathesis is synchronous) talks real HTTP to the same app."""
    async with running_app(create_app, settings, tokens=tokens, **kwargs) as client:
        asgi = client._transport.app  # type: ignore[attr-defined]  # the app as running_app started it
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off", access_log=False))
        task = asyncio.create_task(server.serve())
        try:
            await eventually(lambda: server.started, timeout=15)
            yield Served(client, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 15)
