"""Every serving process tunes the cyclic garbage collector before it serves (shared/serving.py `tune_gc`): what
start-up allocated is frozen, and young collections run at a larger threshold. Each case runs in a fresh
interpreter: the collector's settings are the process's."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import gc, json
from shared.serving import tune_gc
before = gc.get_threshold()
tune_gc({arg})
print(json.dumps({{"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}}))
"""


def probe(arg: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "YIMEN_GC_YOUNG_THRESHOLD"}
    full.update(env or {})
    return subprocess.run([sys.executable, "-c", PROBE.format(arg=arg)], capture_output=True, text=True, env=full,
                          timeout=60)


def result(p: subprocess.CompletedProcess[str]) -> dict:
    import json

    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_by_default_start_up_is_frozen_and_young_collections_wait_for_more_objects():
    from shared.serving import GC_YOUNG_THRESHOLD

    r = result(probe())
    assert r["after"][0] == GC_YOUNG_THRESHOLD > r["before"][0]
    assert r["after"][1:] == r["before"][1:]  # the older generations keep CPython's pace
    assert r["frozen"] > 10_000  # the modules the probe imported, at least


def test_the_threshold_is_a_setting():
    assert result(probe(env={"YIMEN_GC_YOUNG_THRESHOLD": "5000"}))["after"][0] == 5000


def test_zero_leaves_cpythons_collector_as_it_was():
    r = result(probe(env={"YIMEN_GC_YOUNG_THRESHOLD": "0"}))
    assert r["after"] == r["before"] and r["frozen"] == 0


def test_a_bad_setting_stops_the_process_with_a_message_naming_it():
    for bad in ("many", "-5"):
        p = probe(env={"YIMEN_GC_YOUNG_THRESHOLD": bad})
        assert p.returncode != 0
        assert "YIMEN_GC_YOUNG_THRESHOLD" in p.stderr and "Traceback" not in p.stderr
