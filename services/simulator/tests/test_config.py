"""Unit: the simulator's settings."""

from __future__ import annotations

from services.simulator.config import SimulatorSettings


def test_the_webhook_url_never_names_the_wildcard_address(monkeypatch):
    for name in ("YIMEN_SIMULATOR_HOST", "YIMEN_SIMULATOR_PORT", "YIMEN_SIMULATOR_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("YIMEN_HOST", "0.0.0.0")
    settings = SimulatorSettings()
    assert settings.host == "0.0.0.0"
    assert settings.webhook_url("LD-XFJ") == "http://127.0.0.1:8190/simulator/v1/webhooks/LD-XFJ"
    monkeypatch.setenv("YIMEN_SIMULATOR_PUBLIC_URL", "http://simulator:8190/")
    assert SimulatorSettings().webhook_url("LD-XFJ") == "http://simulator:8190/simulator/v1/webhooks/LD-XFJ"
