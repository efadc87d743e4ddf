"""The intake service's own settings (`YIMEN_INTAKE_*`)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IntakeConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIMEN_INTAKE_", extra="ignore", populate_by_name=True)

    #: The Standard Webhooks secret (`whsec_…`) the payment platform signs its confirmations with. Shared with
    #: the platform (in the demo: the simulator, which reads the same `YIMEN_PAYMENT_WEBHOOK_SECRET`). Empty:
    #: every notification is refused, so no payment can be confirmed unsigned.
    payment_webhook_secret: str = Field(
        default="", validation_alias=AliasChoices("YIMEN_INTAKE_PAYMENT_WEBHOOK_SECRET", "YIMEN_PAYMENT_WEBHOOK_SECRET"))
