"""Request and response bodies of the simulator's routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.simulator.domain.rules import Rule


class DepartmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str = Field(examples=["LD-SCJGJ"])
    name: str = Field(examples=["罗定市市场监督管理局"])
    rule: Rule
    registered: bool = Field(description="A department client exists and workflow knows the webhook URL.")
    webhook_url: str | None = None


class DecisionRead(BaseModel):
    """One task the simulator received and what it did with it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    webhook_id: str
    event_type: str
    department: str
    task_id: str
    application_id: str
    step_key: str | None
    mode: str
    channel: str = Field(description="`rest` or `bus`.")
    outcome: str | None = Field(description="`approve`, `reject`, `request_correction`; null when withheld.")
    status: str = Field(
        description="`scheduled`, `sent`, `conflict` (workflow said 409), `refused` (another 4xx), `failed`, "
        "`withheld` (mode `never`), `cancelled` (the simulator stopped first)."
    )
    received_at: datetime
    due_at: datetime | None
    sent_at: datetime | None
    attempts: int
    response_status: int | None
    detail: str | None
    body: dict[str, Any] | None = Field(description="The decision as sent (without `decided_by`).")


class DecisionList(BaseModel):
    items: list[DecisionRead]


class WebhookAck(BaseModel):
    status: str = Field(
        description="`scheduled`, `withheld` (mode `never`), `duplicate` (a retry of a delivery already taken) "
        "or `ignored` (an event type departments do not act on).",
        examples=["scheduled"],
    )
    decision: DecisionRead | None = None
