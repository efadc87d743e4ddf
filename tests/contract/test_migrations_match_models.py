"""Migration drift: for every service, `alembic upgrade head` on a fresh database gives exactly the schema its
table models describe (what `alembic check` reports, on the backend under test: SQLite by default, PostgreSQL
with YIMEN_TEST_POSTGRES_URL). A model changed without a migration, or a migration that differs from the
models, fails here with alembic's own list of differences."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from shared.migrate import upgrade
from shared.testing import DatabaseProvider

MIGRATED = ["catalog", "identity", "intake", "workflow", "datashare", "efficacy", "notify"]


def _differences(connection: Any, metadata: Any) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": False})
    return compare_metadata(context, metadata)


@pytest.mark.parametrize("service", MIGRATED)
async def test_upgrade_head_gives_the_models_schema(service: str, databases: DatabaseProvider) -> None:
    url = databases.url(f"drift_{service}")
    await asyncio.to_thread(upgrade, service, url)
    metadata = importlib.import_module(f"services.{service}.store.tables").Base.metadata
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_differences, metadata)
    finally:
        await engine.dispose()
    assert diff == [], f"{service}: migrations and table models differ ({databases.kind}):\n" + "\n".join(
        map(repr, diff))
