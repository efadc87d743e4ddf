"""Fixtures for every test in the repository: infrastructure (PostgreSQL or SQLite, NATS), a bus prefix per
run so parallel runs never see each other's events, and a token issuer for single-service tests."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.settings import ServiceSettings
from shared.testing import DatabaseProvider, EmbeddedNats, TokenIssuer, docker_answers, make_settings


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    if url := os.environ.get("NATS_URL"):
        yield url
        return
    if os.environ.get("YIMEN_TEST_DOCKER", "1") != "0" and docker_answers():
        from testcontainers.nats import NatsContainer  # type: ignore[import-untyped]

        with NatsContainer("nats:2.10-alpine").with_command("-js") as c:
            yield c.nats_uri()
        return
    server = EmbeddedNats().start()
    yield server.url
    server.cleanup()


@pytest.fixture(scope="session")
def bus_prefix(nats_url: str) -> Iterator[str]:
    """This run's subject prefix; every stream the run created (all named after it) is deleted at the end so
    a shared NATS server does not fill up with test streams."""
    prefix = "t" + secrets.token_hex(4)
    yield prefix
    import asyncio

    from shared.testing import delete_streams

    asyncio.run(delete_streams(nats_url, "YIMEN_" + prefix.upper()))


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def databases(var_dir: Path) -> Iterator[DatabaseProvider]:
    provider = DatabaseProvider(var_dir)
    yield provider
    provider.cleanup()


@pytest.fixture(scope="session")
def tokens() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture(scope="session")
def settings_for(
    databases: DatabaseProvider, nats_url: str, bus_prefix: str, var_dir: Path
) -> Callable[..., ServiceSettings]:
    """`settings_for("intake")` → settings with a fresh database, the test NATS and this run's bus prefix."""

    counter = iter(range(1_000_000))

    def make(name: str, *, prefix: str | None = None, **platform: object) -> ServiceSettings:
        # Each app gets its own sub-prefix, so one test module's events and durable consumers never leak into
        # another's; apps that must share a bus (replicas) share one settings object or pass `prefix`.
        return make_settings(
            name, database_url=databases.url(name), nats_url=nats_url,
            bus_prefix=prefix or f"{bus_prefix}{next(counter):04d}", var_dir=var_dir, **platform,
        )

    return make


def pytest_report_header(config: pytest.Config) -> list[str]:
    db = "postgresql (YIMEN_TEST_POSTGRES_URL)" if os.environ.get("YIMEN_TEST_POSTGRES_URL") else "sqlite/testcontainers"
    return [f"yimen: database={db} nats={os.environ.get('NATS_URL', 'embedded/testcontainers')}"]
