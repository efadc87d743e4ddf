"""Every service starts on a real database and the real bus and serves its operational routes."""

from __future__ import annotations

import importlib

import pytest

from shared.settings import SERVICES
from shared.testing import running_app


@pytest.mark.parametrize("name", SERVICES)
async def test_service_is_ready_and_documents_itself(name, settings_for, tokens):
    create_app = importlib.import_module(f"services.{name}.app").create_app
    async with running_app(create_app, settings_for(name), tokens=tokens) as client:
        assert (await client.get(f"/{name}/healthz")).json()["status"] == "ok"
        ready = await client.get(f"/{name}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "bus": "ok"}
        spec = (await client.get(f"/{name}/openapi.json")).json()
        assert spec["info"]["title"] == f"Yimen {name}"
        assert (await client.get(f"/{name}/docs")).status_code == 200
        metrics = await client.get(f"/{name}/metrics")
        assert "http_requests_total" in metrics.text
        missing = await client.get(f"/{name}/v1/no-such-thing")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
