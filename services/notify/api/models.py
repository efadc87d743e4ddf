"""Request and response models of notify's routes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.notify.domain import messages as msgs
from shared.bounds import BoundedInstant
from shared.privacy import mask_phone


class Channel(StrEnum):
    INBOX = "inbox"
    SMS = "sms"
    PUSH = "push"


class Status(StrEnum):
    QUEUED = "queued"
    HELD = "held"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


class RecipientKind(StrEnum):
    PERSON = "person"
    ORGANISATION = "organisation"
    DEPARTMENT = "department"
    ROLE = "role"
    CONTACT = "contact"


class Audience(StrEnum):
    APPLICANT = "applicant"
    DEPARTMENT = "department"
    SUPERVISOR = "supervisor"


#: The message kinds (`services/notify/domain/messages.py`), one template each.
MessageKind = StrEnum("MessageKind", {code: code for code in msgs.KINDS})  # type: ignore[misc]
#: The kinds an applicant chooses channels for.
ApplicantKind = StrEnum("ApplicantKind", {code: code for code in msgs.APPLICANT_KINDS})  # type: ignore[misc]


class ChannelStatus(BaseModel):
    channel: Channel
    message_id: str
    status: Status
    reason: str | None = Field(None, description="Why it failed or waits (e.g. `quiet_hours`, `gateway: HTTP 503`).")


class NotificationRead(BaseModel):
    """One message in the in-app inbox (站内信), with how the same message went on the other channels."""

    id: str
    kind: MessageKind = Field(description="The message kind, e.g. `application_accepted`, `correction_requested`.")
    title: str | None
    body: str
    application_id: str | None
    created_at: datetime
    read_at: datetime | None = Field(description="Null while unread.")
    channels: list[ChannelStatus] = Field(description="This message on every channel it went out on.")


class RecipientRead(BaseModel):
    kind: RecipientKind
    id: str


class MessageRead(BaseModel):
    """One message on one channel and where it stands: queued → (held) → sent → delivered, or failed with a
    reason. An SMS number is shown masked."""

    id: str
    kind: MessageKind
    channel: Channel
    recipient: RecipientRead = Field(description="Whom it is addressed to.")
    application_id: str | None
    template_version: int
    title: str | None
    body: str
    destination: str | None = Field(description="The SMS number, masked (`138****8000`).")
    urgent: bool
    status: Status
    reason: str | None
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> MessageRead:
        return cls(id=row.id, kind=row.kind, channel=row.channel,
                   recipient=RecipientRead(kind=row.recipient_kind, id=row.recipient_id), application_id=row.application_id,
                   template_version=row.template_version, title=row.title, body=row.body,
                   destination=mask_phone(row.destination), urgent=row.urgent, status=row.status, reason=row.reason,
                   attempts=row.attempts, next_attempt_at=row.next_attempt_at, created_at=row.created_at,
                   sent_at=row.sent_at, delivered_at=row.delivered_at, read_at=row.read_at)


class QuietHoursModel(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"start": "22:00", "end": "08:00"}})

    start: str = Field(max_length=5, description="HH:MM, Asia/Shanghai.")
    end: str = Field(max_length=5, description="HH:MM; before `start` means the window crosses midnight.")


class PreferencesRead(BaseModel):
    channels: dict[ApplicantKind, list[Channel]] = Field(
        description="Per applicant-facing kind, the channels it goes out on (the inbox always).")
    quiet_hours: QuietHoursModel | None = Field(
        description="Non-urgent SMS and push wait until the end of this window; null = none.")
    phone: str | None = Field(description="The person's own SMS number; when null, the contact number written on "
                                          "each application's form is used.")


class PreferencesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "channels": {"application_accepted": ["inbox", "sms"], "rating_invited": ["inbox"]},
        "quiet_hours": {"start": "22:00", "end": "08:00"}, "phone": "13800138000"}})

    channels: dict[str, Annotated[list[Channel], Field(max_length=3)]] = Field(
        default_factory=dict, max_length=20, description="Kinds not named keep their defaults.")
    quiet_hours: QuietHoursModel | None = None
    phone: str | None = Field(None, max_length=20)


class TemplateChannels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inbox: dict[str, Annotated[str, Field(max_length=1000)]] = Field(max_length=2, description="`{title, body}`")
    sms: dict[str, Annotated[str, Field(max_length=1000)]] = Field(
        max_length=1, description="`{body}`; the signature is prepended when sent.")
    push: dict[str, Annotated[str, Field(max_length=1000)]] = Field(max_length=2, description="`{title, body}`")


class TemplateRead(BaseModel):
    """A kind's template in force. Placeholders are written `((name))`; only the listed ones exist."""

    code: MessageKind
    version: int
    description: str
    audience: Audience
    urgent: bool = Field(description="Urgent kinds are sent in quiet hours too.")
    placeholders: list[str]
    default_channels: list[Channel]
    channels: TemplateChannels


class TemplateUpdate(BaseModel):
    # The `application_accepted` template, its SMS shortened; only that kind's placeholders are used.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"channels": {
        "inbox": {"title": "申请已受理",
                  "body": "您申请的“((item_name))”已受理，受理号((receipt_number))，承诺于((promised_on))前办结。"},
        "sms": {"body": "((item_name))已受理，承诺((promised_on))前办结。"},
        "push": {"title": "申请已受理", "body": "((item_name))已受理，承诺((promised_on))前办结。"}}}]})

    channels: TemplateChannels


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "personalisation": {"item_name": "食品经营许可", "receipt_number": "11441781MB0000001A4010000030000202611260009",
                            "receipt_short": "202611260009", "promised_on": "2026年12月10日"}}})

    personalisation: dict[str, Annotated[str, Field(max_length=500)] | int] | None = Field(
        None, max_length=30, description="A value for every placeholder; omitted = the kind's sample values.")
    channels: TemplateChannels | None = Field(None, description="A draft to preview instead of the version in force.")


class RenderedChannel(BaseModel):
    title: str | None
    body: str
    length: int = Field(description="Characters, the SMS signature included.")
    sms_parts: int | None = Field(None, description="SMS only: how many messages the text is sent as (70 "
                                                    "characters fit one; longer texts go in parts of 67).")


class PreviewRead(BaseModel):
    code: MessageKind
    version: int | None = Field(description="The version previewed; null for a draft.")
    channels: dict[Channel, RenderedChannel]


class ReceiptIn(BaseModel):
    """A delivery receipt (回执) from the SMS gateway."""

    model_config = ConfigDict(extra="ignore")

    reference: str = Field(max_length=64, description="Our message id, as sent.")
    id: str | None = Field(None, max_length=120, description="The gateway's id for the message.")
    status: Literal["delivered", "failed"]
    reason: str | None = Field(None, max_length=300)
    at: BoundedInstant | None = None
