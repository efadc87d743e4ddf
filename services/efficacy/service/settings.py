"""The efficacy service's settings as the use cases see them: the consumers get only a session, so the app sets
the configuration here at start-up from its environment."""

from __future__ import annotations

from services.efficacy.config import EfficacyConfig
from services.efficacy.domain.clocks import CardPolicy


class _Current:
    config: EfficacyConfig = EfficacyConfig()


_current = _Current()


def current_config() -> EfficacyConfig:
    return _current.config


def set_config(config: EfficacyConfig) -> None:
    _current.config = config


def policy_of(config: EfficacyConfig) -> CardPolicy:
    return CardPolicy(yellow_days=config.yellow_days, yellow_fraction=config.yellow_fraction)
