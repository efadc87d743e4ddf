"""What notify consumes: one durable consumer over every `yimen.` event.

One consumer rather than one per publisher keeps the stream's order, and the stream's order follows cause:
an application is accepted (intake) before a department asks for a correction on it (workflow), so the
case notify learned from the first is there when the second arrives. Events notify has no use for are
acknowledged and skipped."""

from __future__ import annotations

from services.notify.service import HANDLED_TYPES, on_event, on_events
from shared.messaging import Consumer

CONSUMERS: list[Consumer] = [
    Consumer("notify-events", "yimen.>", on_event,
             "Applicant-facing steps become messages and live-stream steps; cards and data-access anomalies "
             "tell the department; certificates feed the expiry reminders.", types=frozenset(HANDLED_TYPES),
             batch_handler=on_events),
]
