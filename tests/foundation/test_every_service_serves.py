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


async def test_the_console_serves_its_operational_routes_and_says_which_api_is_down(tokens):
    import httpx
    from asgi_lifespan import LifespanManager

    from services.console.app import create_app as console_app
    from services.console.config import ConsoleSettings
    from shared.settings import PlatformSettings

    # Nothing listens on port 9: readiness must say so rather than pretend.
    down = PlatformSettings(service_urls={s: "http://127.0.0.1:9" for s in SERVICES})
    app = console_app(ConsoleSettings(platform=down), jwks_fetcher=tokens.fetch)
    async with LifespanManager(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                       base_url="http://console.test") as client:
        assert (await client.get("/console/healthz")).json()["status"] == "ok"
        ready = await client.get("/console/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["identity"].startswith("down")
        assert (await client.get("/console/openapi.json")).json()["info"]["title"] == "Yimen console"
        assert (await client.get("/console/docs")).status_code == 200
        assert "http_requests_total" in (await client.get("/console/metrics")).text
        missing = await client.get("/console/v1/no-such-thing")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        assert (await client.get("/console/static/console.css")).headers["content-type"].startswith("text/css")
