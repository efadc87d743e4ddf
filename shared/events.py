"""The event envelope: CloudEvents 1.0 in structured JSON mode, plus the W3C `traceparent` extension.

`type` is `yimen.<service>.<entity>.<verb>` and is also the NATS subject (after the deployment's bus prefix);
`subject` is the id of the entity the event is about."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field

from shared.tracing import current_traceparent


class Event(BaseModel):
    """A CloudEvents 1.0 envelope."""

    model_config = ConfigDict(extra="allow")

    specversion: str = "1.0"
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    source: str
    type: str
    subject: str | None = None
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = "application/json"
    dataschema: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    traceparent: str | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Event:
        return cls.model_validate_json(raw)


def new_event(
    type: str,
    *,
    source: str,
    subject: str | None,
    data: BaseModel | dict[str, Any],
    version: int = 1,
    id: str | None = None,
) -> Event:
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    ev = Event(
        source=source,
        type=type,
        subject=subject,
        data=payload,
        dataschema=f"urn:yimen:event:{type}:v{version}",
        traceparent=current_traceparent(),
    )
    if id:
        ev.id = id
    return ev


class ConsumedEvent(BaseModel):
    """The base of every model a service declares for the `data` of an event another service publishes.

    A consumer reads a tolerant subset: unknown fields are ignored (a producer adding a field never breaks a
    consumer), and every field the consumer can live without is optional. `consumes` names the event types
    (as the producer publishes them, `yimen.<producer>.<entity>.<verb>`) whose data the model parses; a part
    nested in such a model leaves it empty. The contract test (`tests/contract/test_event_contracts.py`) parses
    every example of those types in `docs/asyncapi.yaml` with the model, so a producer renaming or dropping a
    field a consumer needs fails there, not in production."""

    model_config = ConfigDict(extra="ignore")

    consumes: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def of(cls, event: Event) -> Self:
        """The event's data as this model (raises pydantic's ValidationError when it does not fit)."""
        return cls.model_validate(event.data)
