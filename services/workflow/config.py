"""The workflow service's own settings (`YIMEN_WORKFLOW_*`)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkflowConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIMEN_WORKFLOW_", extra="ignore")

    #: SSRF protection: webhook URLs resolving to private, loopback or link-local addresses are refused
    #: unless this is true (the demo and the tests run department systems on localhost).
    webhook_allow_private: bool = False
    #: First retry delay; each later retry doubles it, up to `webhook_backoff_max_seconds`.
    webhook_backoff_seconds: float = 2.0
    webhook_backoff_max_seconds: float = 600.0
    #: After this many failed attempts a delivery is marked `failed` (replayable).
    webhook_max_attempts: int = 10
    webhook_timeout_seconds: float = 5.0
    #: How often the dispatcher looks for due deliveries when nothing woke it: the bound on how late it sees a
    #: delivery or a retry that another replica wrote, or one whose claim's holder died after its lease. Its
    #: own are not polled for: the commit that queues one wakes it, and it sleeps until its own retries are due.
    webhook_poll_seconds: float = 10.0
    #: How long a successful attempt may wait to be recorded with others in one transaction (a failed one is
    #: recorded at once). Until then the delivery log shows it pending, and should the process die, it is sent
    #: again once its lease runs out (the receiver drops the duplicate by its webhook-id).
    webhook_record_seconds: float = 1.0
    #: How often overdue tasks of deemed-approval stages are looked for.
    deemed_check_seconds: float = 60.0
