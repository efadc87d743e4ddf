"""Integration: start-up while identity and workflow are still coming up, restarts that reuse the saved
credentials, and the runnable module (`python -m services.simulator`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest_asyncio
from asgi_lifespan import LifespanManager

from services.simulator.app import create_app
from services.simulator.tests.platform_double import PlatformDouble
from services.simulator.tests.test_simulator_service import signed_headers, simulator_settings, task_event
from shared.settings import ROOT
from shared.testing import eventually, free_port


@pytest_asyncio.fixture(scope="module")
async def platform() -> AsyncIterator[PlatformDouble]:
    async with PlatformDouble().serving() as double:
        yield double


@asynccontextmanager
async def started(settings) -> AsyncIterator[httpx.AsyncClient]:
    """The simulator with its lifespan, without waiting for it to be ready."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as c:
            yield c


async def readiness(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/simulator/readyz")


async def test_waits_for_identity_and_workflow_and_refuses_tasks_until_registered(
    platform, tmp_path, nats_url, bus_prefix, var_dir
):
    platform.ready = False
    settings = simulator_settings(platform, tmp_path / "s.json", nats_url, bus_prefix, var_dir)
    try:
        async with started(settings) as client:
            async def waiting() -> httpx.Response | None:
                r = await readiness(client)
                return r if r.status_code == 503 and r.json()["checks"]["registration"].startswith("waiting") else None

            await eventually(waiting)
            _, body = task_event("LD-SCJGJ")
            r = await client.post("/simulator/v1/webhooks/LD-SCJGJ", content=body,
                                  headers={"webhook-id": "m", "webhook-timestamp": str(int(time.time())),
                                           "webhook-signature": "v1,AAAA"})
            assert r.status_code == 503 and r.headers["retry-after"] == "5"
            assert r.json()["type"].endswith("/department-not-registered")
            platform.ready = True
            await eventually(lambda: _ok(client), timeout=15)
    finally:
        platform.ready = True


async def _ok(client: httpx.AsyncClient) -> bool:
    return (await readiness(client)).status_code == 200


async def test_a_wrong_admin_password_is_not_retried_fast_enough_to_lock_the_account(
    platform, tmp_path, nats_url, bus_prefix, var_dir
):
    settings = simulator_settings(platform, tmp_path / "s.json", nats_url, bus_prefix, var_dir)
    settings.admin_password = "wrong"
    settings.auth_retry_seconds = 30
    before = platform.count("token:password")
    async with started(settings) as client:
        async def says_why():
            r = await readiness(client)
            return r.status_code == 503 and "admin login: HTTP 400" in r.json()["checks"]["registration"]

        await eventually(says_why)
        await asyncio.sleep(0.5)
        assert platform.count("token:password") - before == 1


async def test_a_department_identity_does_not_know_yet_does_not_hold_up_the_others(
    platform, tmp_path, nats_url, bus_prefix, var_dir
):
    platform.unknown_departments.add("LD-YBJ")
    settings = simulator_settings(platform, tmp_path / "s.json", nats_url, bus_prefix, var_dir)
    try:
        async with started(settings) as client:
            async def only_ybj_pending():
                r = await readiness(client)
                registration = r.json()["checks"]["registration"]
                return r.status_code == 503 and "LD-YBJ" in registration and "LD-XFJ" not in registration

            await eventually(only_ybj_pending)
            departments = {d["code"]: d for d in (await client.get("/simulator/v1/departments")).json()}
            assert departments["LD-XFJ"]["registered"] and not departments["LD-YBJ"]["registered"]
            saved = json.loads((tmp_path / "s.json").read_text())["departments"]
            assert "LD-XFJ" in saved and "LD-YBJ" not in saved
            platform.unknown_departments.clear()
            await eventually(lambda: _ok(client))
    finally:
        platform.unknown_departments.clear()


async def test_a_restart_reuses_saved_credentials_and_re_registers_what_the_platform_forgot(
    platform, tmp_path, nats_url, bus_prefix, var_dir
):
    state = tmp_path / "simulator.json"
    settings = simulator_settings(platform, state, nats_url, bus_prefix, var_dir)
    async with started(settings) as client:
        await eventually(lambda: _ok(client))
    first = json.loads(state.read_text())["departments"]
    clients, hooks = platform.count("client:"), platform.count("webhook:")

    async with started(settings) as client:
        await eventually(lambda: _ok(client))
    assert (platform.count("client:"), platform.count("webhook:")) == (clients, hooks)
    assert json.loads(state.read_text())["departments"] == first

    # A secret rotated at workflow meanwhile is followed without registering again.
    rotated = "whsec_" + "B" * 43 + "="
    platform.webhooks["LD-XFJ"]["secret"] = rotated
    async with started(settings) as client:
        await eventually(lambda: _ok(client))
        assert platform.count("webhook:") == hooks
        assert json.loads(state.read_text())["departments"]["LD-XFJ"]["webhook_secret"] == rotated
        _, body = task_event("LD-XFJ")
        r = await client.post("/simulator/v1/webhooks/LD-XFJ", content=body,
                              headers=signed_headers(platform, "LD-XFJ", body))
        assert r.status_code in (200, 202), r.text
    first["LD-XFJ"]["webhook_secret"] = rotated

    # Workflow lost LD-SCJGJ's endpoint, identity lost LD-WJJ's client.
    del platform.webhooks["LD-SCJGJ"]
    del platform.clients[first["LD-WJJ"]["client_id"]]
    before = {key: platform.count(key) for key in ("webhook:", "client:", "webhook:LD-SCJGJ", "client:LD-WJJ")}
    async with started(settings) as client:
        await eventually(lambda: _ok(client))
        after = {key: platform.count(key) - n for key, n in before.items()}
        # Only what was lost is registered again; the endpoint belongs to the department, not to the client.
        assert after == {"webhook:": 1, "client:": 1, "webhook:LD-SCJGJ": 1, "client:LD-WJJ": 1}
        now = json.loads(state.read_text())["departments"]
        assert now["LD-SCJGJ"]["webhook_secret"] == platform.webhooks["LD-SCJGJ"]["secret"]
        assert now["LD-SCJGJ"]["webhook_secret"] != first["LD-SCJGJ"]["webhook_secret"]
        assert now["LD-WJJ"]["client_id"] != first["LD-WJJ"]["client_id"]
        assert now["LD-XFJ"] == first["LD-XFJ"]
        _, body = task_event("LD-SCJGJ")
        r = await client.post("/simulator/v1/webhooks/LD-SCJGJ", content=body,
                              headers=signed_headers(platform, "LD-SCJGJ", body))
        assert r.status_code == 202, r.text


async def test_runs_as_a_module_configured_from_the_environment(platform, tmp_path, nats_url, bus_prefix):
    port = free_port()
    env = {
        **os.environ,
        "YIMEN_SIMULATOR_PORT": str(port),
        "YIMEN_SIMULATOR_IDENTITY_URL": platform.url,
        "YIMEN_SIMULATOR_WORKFLOW_URL": platform.url,
        "YIMEN_SIMULATOR_STATE_FILE": str(tmp_path / "simulator.json"),
        "YIMEN_SIMULATOR_RETRY_SECONDS": "0.1",
        "YIMEN_ADMIN_USERNAME": platform.admin_username,
        "YIMEN_ADMIN_PASSWORD": platform.admin_password,
        "NATS_URL": nats_url,
        "YIMEN_BUS_PREFIX": bus_prefix,
        "YIMEN_VAR_DIR": str(tmp_path),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.simulator", cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            async def ready():
                try:
                    return (await client.get("/simulator/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=30, interval=0.2)
        assert platform.webhooks["LD-XFJ"]["url"] == f"http://127.0.0.1:{port}/simulator/v1/webhooks/LD-XFJ"
        assert (tmp_path / "simulator.json").exists()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
