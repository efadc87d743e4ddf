"""`make run`'s launcher starts its bundled nats-server with the platform's accounts (credentials under
`var/nats-auth/`, mode 0600) and hands each process its own: a service started by it connects, binds its
consumers and publishes with its credentials; the simulator's department connections publish each
department's decision; a connection without credentials is refused. Production subjects (no bus prefix)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path

import nats
import pytest
from nats.js.errors import NotFoundError

from deploy.launcher import Launcher
from services.simulator.buses import DepartmentBuses
from services.simulator.config import SimulatorSettings
from shared.bus import Bus
from shared.events import new_event
from shared.settings import PlatformSettings
from shared.testing import DatabaseProvider, free_port


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def refused_without_credentials(url: str) -> None:
    with pytest.raises(nats.errors.Error, match="(?i)authorization violation"):
        await nats.connect(url, allow_reconnect=False, connect_timeout=2)


async def decide_and_see_workflow_answer(url: str, departments: dict[str, str], ops_password: str) -> None:
    """LD-WJJ (through the simulator's connections) decides on a task workflow does not know: workflow's
    consumer takes it with workflow's credentials and its relay publishes `decision.refused` with them."""
    buses = DepartmentBuses(PlatformSettings(nats_url=url, bus_prefix=""), departments)
    ops = Bus(url, name="test-ops", user="ops", password=ops_password)
    await ops.connect(attempts=5)
    try:
        await asyncio.wait_for(buses.connect(), 30)
        assert await buses.ready()
        task_id = "no-such-task"
        await buses.for_department("LD-WJJ").publish(new_event(
            "yimen.department.LD-WJJ.decision", source="/department/LD-WJJ", subject=task_id,
            data={"task_id": task_id, "outcome": "approve", "decided_by": {"name": "系统"}}))
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                msg = await ops.js.get_last_msg(ops.names.stream, "yimen.workflow.decision.refused")
                data = json.loads(msg.data)["data"]
                assert data["task_id"] == task_id and data["department"] == "LD-WJJ"
                return
            except NotFoundError:
                assert asyncio.get_running_loop().time() < deadline, "workflow never answered the decision"
                await asyncio.sleep(0.3)
    finally:
        await buses.close()
        await ops.close()


def test_the_launchers_bundled_nats_runs_the_platform_on_its_accounts(tmp_path: Path,
                                                                       databases: DatabaseProvider) -> None:
    nats_port, workflow_port = free_port(), free_port()
    env = {
        "YIMEN_VAR_DIR": str(tmp_path / "var"),
        "NATS_URL": f"nats://127.0.0.1:{nats_port}",  # nothing answers there: the launcher starts its own
        "YIMEN_WORKFLOW_DATABASE_URL": databases.url("workflow"),
        "YIMEN_WORKFLOW_PORT": str(workflow_port),
        "YIMEN_LOG_LEVEL": "WARNING",
        **{k: os.environ[k] for k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV") if k in os.environ},
    }
    launcher = Launcher(env, quiet=True)
    try:
        url = launcher.start_nats(dict(env))
        assert url == env["NATS_URL"]
        accounts = tmp_path / "var" / "nats-auth"
        assert mode(accounts) == 0o700
        files = [p for p in accounts.rglob("*") if p.is_file()]
        assert {"auth.conf", "credentials.json", "departments.json", "workflow", "ops", "LD-WJJ"} <= {
            p.name for p in files}
        assert all(mode(p) == 0o600 for p in files), {p.name: oct(mode(p)) for p in files}
        asyncio.run(refused_without_credentials(url))

        wf_env = launcher.bus_env("workflow", {**env, "NATS_URL": url})
        assert wf_env["YIMEN_NATS_USER"] == "workflow"
        launcher.spawn("workflow", [sys.executable, "-m", "services.workflow"], wf_env)
        launcher.wait_ready({"workflow": f"http://127.0.0.1:{workflow_port}/workflow/readyz"}, timeout=120)
        sim_env = launcher.bus_env("simulator", env)
        assert "YIMEN_NATS_PASSWORD" not in sim_env
        # The simulator reads its departments' passwords as the launcher tells it to.
        departments = SimulatorSettings(_env_file=None, nats_credentials_file=Path(
            sim_env["YIMEN_SIMULATOR_NATS_CREDENTIALS_FILE"])).department_bus_credentials()
        assert departments is not None and set(departments) >= {"LD-WJJ", "LD-XFJ"} and "workflow" not in departments
        passwords = json.loads((accounts / "credentials.json").read_text())
        asyncio.run(decide_and_see_workflow_answer(url, departments, passwords["ops"]))
    finally:
        launcher.stop()
    # A second start keeps the passwords (a second `make run` continues) and rewrites the permissions.
    again = Launcher(env, quiet=True)
    try:
        again.start_nats(dict(env))
        assert again.bus_accounts is not None and again.bus_accounts.passwords == passwords
    finally:
        again.stop()


def test_without_nats_url_the_launcher_never_uses_an_open_server_on_the_default_port(tmp_path: Path) -> None:
    """Whatever answers on the default port (here an open nats-server) is not the platform's bus: the
    launcher starts its own, with the accounts, on another port."""
    from shared.testing import EmbeddedNats

    squatter = EmbeddedNats().start()

    class OnSquattedPort(Launcher):
        default_nats_url = squatter.url

    env = {"YIMEN_VAR_DIR": str(tmp_path / "var"),
           **{k: os.environ[k] for k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV") if k in os.environ}}
    launcher = OnSquattedPort(env, quiet=True)
    try:
        url = launcher.start_nats(dict(env))
        assert url != squatter.url and launcher.bus_accounts is not None
        asyncio.run(refused_without_credentials(url))
    finally:
        launcher.stop()
        squatter.cleanup()
