"""What the fault tests share: a launcher that remembers how it started each process (so a killed one is
respawned by name with the same command and environment), the platform's environment, and a patient client
that keeps trying through a crash, bounded in count and time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deploy.launcher import Launcher, port_in_use
from shared.bus import Bus
from shared.settings import SERVICES

#: The services: the processes a fault test may kill (the simulator plays the outside world).
KILLABLE = tuple(SERVICES)


def consumer_names() -> dict[str, list[str]]:
    """Every durable consumer of every service, from its events/handlers.py."""
    import importlib

    out: dict[str, list[str]] = {}
    for s in SERVICES:
        mod = importlib.import_module(f"services.{s}.events.handlers")
        out[s] = [c.name for c in mod.CONSUMERS]
    return out


class ChaosLauncher(Launcher):
    """`Launcher` that keeps each process's command and environment, so `respawn(name)` starts it again."""

    def __init__(self, environ: dict[str, str], *, quiet: bool = True) -> None:
        super().__init__(environ, quiet=quiet)
        self.commands: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.kills: list[tuple[float, str]] = []
        self.recoveries: dict[str, list[float]] = {}

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.commands[name] = (list(args), dict(env))
        super().spawn(name, args, env)

    def proc(self, name: str) -> subprocess.Popen[bytes]:
        return next(p for n, p in reversed(self.procs) if n == name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def kill9(self, name: str) -> None:
        proc = self.proc(name)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the service and nothing else
            proc.wait(10)
        self.kills.append((time.monotonic(), name))

    def respawn(self, name: str) -> None:
        """Start `name` again with the very command and environment it was first started with."""
        if self.proc(name).poll() is None:
            raise RuntimeError(f"{name} is still running")
        args, env = self.commands[name]
        super().spawn(name, args, env)

    def wait_service_ready(self, name: str, timeout: float = 90) -> float:
        """Seconds until `name`'s /readyz is 200 (raises after `timeout`)."""
        start = time.monotonic()
        url = f"{self.url(name)}/{name}/readyz"
        while time.monotonic() - start < timeout:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    took = time.monotonic() - start
                    self.recoveries.setdefault(name, []).append(took)
                    return took
            if self.proc(name).poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc(name).returncode}; see {self.var / 'log'}")
            time.sleep(0.2)
        raise TimeoutError(f"{name} not ready {timeout}s after a restart")


def port_block(size: int = 8) -> int:
    """Like `deploy.launcher.free_port_block`, but below the kernel's ephemeral range: that one draws from
    20000–60000, where outgoing connections (to PostgreSQL, NATS, between services) take their local
    ports, and a service then fails to bind ("address already in use") now and then."""
    import random

    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        base = random.randint(10000, max(10001, low - size - 1))
        if not any(port_in_use(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free block of ports")


def platform_env(*, var: Path, nats_url: str, prefix: str, database_urls: dict[str, str],
                 **extra: str) -> dict[str, str]:
    base = port_block(len(SERVICES) + 2)
    env = {
        "YIMEN_VAR_DIR": str(var),
        "NATS_URL": nats_url,
        "YIMEN_BUS_PREFIX": prefix,
        # Services and simulator on base … base+len(services), the gateway after them: all outside the
        # ephemeral range.
        "YIMEN_PORT": str(base + len(SERVICES) + 1),
        "YIMEN_SERVICE_PORT_BASE": str(base),
        "YIMEN_ADMIN_USERNAME": "admin",
        "YIMEN_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        # Faults, not abuse limits, are under test: clients retry through crashes.
        "YIMEN_SUBMIT_RATE_PER_MINUTE": "0", "YIMEN_LOGIN_RATE_PER_MINUTE": "0",
        "YIMEN_RELAY_INTERVAL_SECONDS": "0.1",
        "YIMEN_LOG_LEVEL": "INFO",
        "YIMEN_WORKFLOW_WEBHOOK_ALLOW_PRIVATE": "true",
        # A department's system keeps trying to hand over its decision while workflow or NATS restarts.
        "YIMEN_SIMULATOR_DECISION_ATTEMPTS": "60",
        **extra,
    }
    for s in SERVICES:
        env[f"YIMEN_{s.upper()}_DATABASE_URL"] = database_urls[s]
    for k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


TRANSIENT = (httpx.TransportError,)


@dataclass
class Patient:
    """An async client that retries through crashes: connection errors and 502/503/504 (the gateway in
    front of a dead service) are tried again, with a pause, until `budget` seconds have passed."""

    base: str
    budget: float = 120.0
    retries: int = field(default=0)
    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=self.base, timeout=20,
                                      limits=httpx.Limits(max_connections=40, max_keepalive_connections=20))

    async def call(self, method: str, url: str, *, ok: tuple[int, ...] = (200, 201),
                   retry_on: tuple[int, ...] = (500, 502, 503, 504), budget: float | None = None,
                   **kw: Any) -> httpx.Response:
        budget = self.budget if budget is None else budget
        deadline = time.monotonic() + budget
        pause = 0.2
        last = ""
        for _ in range(2000):
            try:
                r = await self.http.request(method, url, **kw)
                if r.status_code in ok:
                    return r
                if r.status_code not in retry_on:
                    raise AssertionError(f"{method} {url} → {r.status_code}: {r.text[:500]}")
                last = f"{r.status_code}: {r.text[:200]}"
            except TRANSIENT as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                break
            self.retries += 1
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 2.0)
        raise AssertionError(f"{method} {url} still failing after {budget}s: {last}")

    async def aclose(self) -> None:
        await self.http.aclose()


async def consumers_drained(ops_bus: Callable[[], Bus], timeout: float = 300) -> float:
    """Wait until every durable consumer has nothing pending or unacknowledged (a case is `delivered` while
    efficacy, which consumes every intake and workflow event, may still be working through the backlog);
    returns the seconds it took. The exactly-once checks read the final state, which is only final then: an event
    a killed service had fetched and not acknowledged comes again only after the consumer's ack wait (30 s).
    `ops_bus`: a new observer connection each look (a look may meet a leader election)."""
    start = time.monotonic()
    backlog: dict[str, int] = {}
    while time.monotonic() - start < timeout:
        bus = ops_bus()
        try:
            await bus.connect(attempts=3)
            backlog = {}
            for names in consumer_names().values():
                for name in names:
                    info = await bus.js.consumer_info(bus.names.stream, bus.names.durable(name))
                    if info.num_pending or info.num_ack_pending:
                        backlog[name] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            if not backlog:
                return time.monotonic() - start
        except Exception as exc:  # noqa: BLE001 - a leader election: look again
            backlog = {"error": repr(exc)}  # type: ignore[dict-item]
        finally:
            await bus.close()
        await asyncio.sleep(2)
    raise AssertionError(f"consumers still behind after {timeout}s: {backlog}")


async def dead_letters(nats_url: str, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """Every consumer's dead letters (only the non-empty ones)."""
    bus = Bus(nats_url, prefix=prefix, name="chaos-dlq")
    await bus.connect(attempts=10)
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        for names in consumer_names().values():
            for name in names:
                letters = await bus.dead_letters(name)
                if letters:
                    out[name] = letters
    finally:
        await bus.close()
    return out
