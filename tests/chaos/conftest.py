"""Fault tests: each starts the platform as real processes (the launcher of `make run`) with ports, a var/
and a bus prefix of its own, and stops everything it started."""

from __future__ import annotations

import os

import pytest

#: Cases in the kill test: 40 in `make chaos`, `YIMEN_CHAOS_CASES=200` for a manual run.
CASES = int(os.environ.get("YIMEN_CHAOS_CASES", "40"))


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict:
    """Figures a test measured; printed in the summary (`-s` or `-rA`) and appended to var/chaos-figures.jsonl."""
    out: dict = {}
    yield out
    if out:
        import json
        import time

        line = json.dumps({"test": request.node.name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           **out}, ensure_ascii=False, default=str)
        print(f"\nCHAOS FIGURES {line}")
        path = os.environ.get("YIMEN_CHAOS_FIGURES", "")
        if path:
            with open(path, "a") as f:
                f.write(line + "\n")


@pytest.fixture
def chaos_platform(databases, nats_url: str, var_dir, bus_prefix: str):
    """A platform on the run's NATS and databases, with webhook retries fast enough to watch; one per test and
    stopped right after it, so that its database connections (up to 30 per service) are given back before
    the next test starts its own (a shared PostgreSQL has max_connections=100 here)."""
    import secrets

    from shared.settings import SERVICES
    from tests.chaos.harness import ChaosLauncher, platform_env

    prefix = f"{bus_prefix}c{secrets.token_hex(2)}"
    env = platform_env(var=var_dir / f"chaos-{prefix}", nats_url=nats_url, prefix=prefix,
                       database_urls={s: databases.url(s) for s in SERVICES},
                       YIMEN_WORKFLOW_WEBHOOK_BACKOFF_SECONDS="0.5", YIMEN_WORKFLOW_WEBHOOK_BACKOFF_MAX_SECONDS="1",
                       YIMEN_WORKFLOW_WEBHOOK_MAX_ATTEMPTS="200", YIMEN_WORKFLOW_WEBHOOK_POLL_SECONDS="0.2",
                       YIMEN_WORKFLOW_WEBHOOK_TIMEOUT_SECONDS="2")
    launcher = ChaosLauncher(env)
    try:
        launcher.start()
        yield launcher
    finally:
        launcher.stop()
