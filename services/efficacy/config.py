"""Efficacy's own settings (`YIMEN_EFFICACY_*`). The local rules (DOMAIN.md marks them "local") live here so a
province can set its own thresholds and targets without code changes."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EfficacyConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIMEN_EFFICACY_", extra="ignore")

    #: A yellow card when the remaining working days fall to this many …
    yellow_days: int = 2
    #: … or to this share of the limit, whichever comes first.
    yellow_fraction: float = 0.2
    #: How often the background job evaluates open clocks while one it read is watched today (and the least time
    #: between two rounds a case consumer's writes wake).
    evaluation_interval_seconds: float = 5.0
    #: The longest wait between two rounds when nothing read is watched today (they wait for the next local
    #: midnight otherwise): a safety net for clocks another replica wrote and its own round never read.
    evaluation_idle_seconds: float = 300.0
    #: Where supervisors receive cards (Standard Webhooks); empty = no webhook.
    supervisor_webhook_url: str = ""
    supervisor_webhook_secret: str = "whsec_" + "eWltZW4tZWZmaWNhY3ktZGV2LXNlY3JldA=="
    #: Working days a department has to rectify a bad rating (local: 5 or 15).
    rectification_days: int = 5
    #: Working days a department has to answer a complaint.
    complaint_days: int = 10
    #: The same applicant accepted again for the same item within this many days is a supervision item.
    repeat_window_days: int = 30
    #: Certificates expiring within this many days are reminded.
    reminder_days: int = 90
    #: The reform plan's targets (Luoding 2016; Guangdong set 0.7 and 0.2 for the visit figures).
    targets: dict[str, float] = Field(
        default_factory=lambda: {
            "fully_online_item_rate": 0.5,
            "online_application_rate": 0.5,
            "online_completion_rate": 0.4,
            "at_most_one_visit_rate": 0.8,
            "zero_visit_rate": 0.1,
        }
    )
