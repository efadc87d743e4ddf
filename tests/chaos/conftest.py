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
