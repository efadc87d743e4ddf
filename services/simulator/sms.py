"""The sandbox SMS gateway (短信网关沙箱): plays a carrier-facing SMS gateway's HTTP API for notify.

It records every message it accepts (in memory; a restart empties it), refuses sends while it is told to be
down (503, as a gateway in trouble answers), dedupes by the sender's `reference`, and posts a delivery receipt
to the sender's `callback_url` shortly after, signed per Standard Webhooks. Numbers starting with one of
`fail_prefixes` are "delivered" as failed (空号), so a failed receipt can be seen too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.webhooks import signed_headers

log = logging.getLogger("yimen.simulator.sms")


class SmsSandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIMEN_SIMULATOR_SMS_", extra="ignore")

    #: The key senders present as `Authorization: Bearer …` (notify's `YIMEN_NOTIFY_SMS_GATEWAY_KEY`).
    key: str = "sandbox-key"
    #: Signs delivery receipts (notify's `YIMEN_NOTIFY_SMS_CALLBACK_SECRET`).
    callback_secret: str = "whsec_" + "eWltZW4tbm90aWZ5LXNhbmRib3gtc2VjcmV0"
    receipt_delay_seconds: float = 0.2
    fail_prefixes: list[str] = Field(default_factory=lambda: ["1990000"])
    #: At most this many messages are kept (the oldest go first).
    keep: int = 5000


@dataclass
class SmsRecord:
    id: str
    to: str
    content: str
    reference: str | None
    callback_url: str | None
    received_at: datetime
    receipt: str | None = None  # delivered | failed, once the callback was accepted
    receipt_attempts: int = 0

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "to": self.to, "content": self.content, "reference": self.reference,
                "received_at": self.received_at.isoformat(), "receipt": self.receipt}


@dataclass
class SandboxSmsGateway:
    settings: SmsSandboxSettings = field(default_factory=SmsSandboxSettings)
    records: list[SmsRecord] = field(default_factory=list)
    down_until: float = 0.0
    refused: int = 0
    _by_reference: dict[str, SmsRecord] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def down(self) -> bool:
        return time.monotonic() < self.down_until

    def set_outage(self, seconds: float) -> None:
        self.down_until = time.monotonic() + seconds if seconds > 0 else 0.0

    def outage_left(self) -> float:
        return max(0.0, self.down_until - time.monotonic())

    def accept(self, *, to: str, content: str, reference: str | None, callback_url: str | None) -> SmsRecord:
        if reference and reference in self._by_reference:
            return self._by_reference[reference]
        rec = SmsRecord(uuid.uuid4().hex, to, content, reference, callback_url, datetime.now(UTC))
        self.records.append(rec)
        if reference:
            self._by_reference[reference] = rec
        if len(self.records) > self.settings.keep:
            old = self.records.pop(0)
            self._by_reference.pop(old.reference or "", None)
        if callback_url:
            task = asyncio.create_task(self._receipt(rec))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return rec

    def outcome(self, rec: SmsRecord) -> str:
        return "failed" if any(rec.to.startswith(p) for p in self.settings.fail_prefixes) else "delivered"

    async def _receipt(self, rec: SmsRecord) -> None:
        """Post the receipt, retrying a while if the sender does not take it (a receipt lost is a status
        stuck at `sent`, which is what a real gateway's give-up looks like too)."""
        await asyncio.sleep(self.settings.receipt_delay_seconds)
        status = self.outcome(rec)
        body = json.dumps({"reference": rec.reference, "id": rec.id, "status": status,
                           "reason": "空号" if status == "failed" else None,
                           "at": datetime.now(UTC).isoformat()})
        async with httpx.AsyncClient(timeout=5) as http:
            for attempt in range(8):
                rec.receipt_attempts += 1
                headers = signed_headers(self.settings.callback_secret, f"rcpt_{rec.id}", body)
                with contextlib.suppress(httpx.HTTPError):
                    r = await http.post(rec.callback_url or "", content=body.encode(), headers=headers)
                    if r.is_success:
                        rec.receipt = status
                        return
                await asyncio.sleep(min(0.5 * 2 ** attempt, 10))
        log.warning("sms sandbox: receipt for %s not taken", rec.id)

    def listing(self, *, to: str | None, reference: str | None, limit: int) -> list[SmsRecord]:
        rows = [r for r in self.records if (to is None or r.to == to) and (reference is None or r.reference == reference)]
        return rows[-limit:]


def gateway_of(state: Any) -> SandboxSmsGateway:
    gw = getattr(state, "sms_gateway", None)
    if gw is None:
        gw = state.sms_gateway = SandboxSmsGateway()
    return gw
