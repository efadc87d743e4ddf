"""The first admin: from the environment at start-up or from the CLI, never from a default password."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from services.identity.app import create_app
from services.identity.tests.conftest import CHEAP
from shared.settings import ROOT
from shared.testing import running_app


async def test_without_a_password_no_admin_exists_and_the_log_says_how_to_create_one(settings_for, caplog):
    caplog.set_level(logging.INFO, logger="yimen.identity.bootstrap")
    settings = settings_for("identity")
    no_admin = CHEAP.model_copy(update={"admin_password": ""})
    async with running_app(create_app, settings, identity=no_admin) as client:
        for password in ("", "admin", "password", "admin123"):
            r = await client.post("/identity/v1/token",
                                  data={"grant_type": "password", "username": "admin", "password": password})
            assert r.status_code == 400
    assert any("YIMEN_ADMIN_PASSWORD" in r.getMessage() and "create-admin" in r.getMessage() for r in caplog.records)

    # The CLI creates one in the same database; the service then accepts it.
    env = {**os.environ, "YIMEN_IDENTITY_DATABASE_URL": settings.database_url, "YIMEN_ADMIN_USERNAME": "chief",
           "YIMEN_ADMIN_PASSWORD": "chief-pass-2026"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.identity.cli", "create-admin", "--name", "张主任", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "created" in out.decode()
    async with running_app(create_app, settings, identity=no_admin) as client:
        r = await client.post("/identity/v1/token",
                              data={"grant_type": "password", "username": "chief", "password": "chief-pass-2026"})
        assert r.status_code == 200, r.text
        me = (await client.get("/identity/v1/me",
                               headers={"Authorization": f"Bearer {r.json()['access_token']}"})).json()
        assert me["roles"] == ["admin"] and me["kind"] == "staff" and me["name"] == "张主任"


async def test_a_weak_admin_password_from_the_environment_is_refused(settings_for, caplog):
    weak = CHEAP.model_copy(update={"admin_password": "admin"})
    async with running_app(create_app, settings_for("identity"), identity=weak) as client:
        r = await client.post("/identity/v1/token",
                              data={"grant_type": "password", "username": CHEAP.admin_username, "password": "admin"})
        assert r.status_code == 400
    assert any("no admin created" in r.getMessage() for r in caplog.records)
