"""Fixtures of the workflow tests: one running workflow app per test module (real database, real bus)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from services.workflow.app import create_app
from services.workflow.config import WorkflowConfig
from services.workflow.tests.helpers import Recorder
from shared.settings import ServiceSettings
from shared.testing import TokenIssuer, running_app


@pytest.fixture(scope="module")
def workflow_config() -> WorkflowConfig:
    return WorkflowConfig(
        webhook_allow_private=True, webhook_backoff_seconds=0.2, webhook_backoff_max_seconds=1.0,
        webhook_poll_seconds=0.05, webhook_max_attempts=20, deemed_check_seconds=0.2,
    )


@pytest.fixture(scope="module")
def wf_settings(settings_for) -> ServiceSettings:  # type: ignore[no-untyped-def]
    return settings_for("workflow")


@pytest_asyncio.fixture(scope="module")
async def client(wf_settings: ServiceSettings, tokens: TokenIssuer,
                 workflow_config: WorkflowConfig) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(create_app, wf_settings, tokens=tokens, config=workflow_config) as c:
        yield c


@pytest_asyncio.fixture(scope="module")
async def recorder(client: httpx.AsyncClient) -> AsyncIterator[Recorder]:
    rec = await Recorder().start(client)
    yield rec
    await rec.stop()
