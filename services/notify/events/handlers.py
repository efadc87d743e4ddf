"""What notify consumes: one durable consumer over every `yimen.` event.

One consumer rather than one per publisher keeps the stream's order, and the stream's order follows cause:
an application is accepted (intake) before a department asks for a correction on it (workflow), so the
case notify learned from the first is there when the second arrives. Events notify has no use for are
acknowledged and skipped.

A busy consumer gathers what arrives within a quarter of a second (a five-department case's task events come
within a second): each batch is one transaction and one write of its messages and steps, for messages and
live-stream steps that may come that much later."""

from __future__ import annotations

from services.notify.service import HANDLED_TYPES, on_event, on_events
from shared.messaging import Consumer

#: The most events one batch takes (`Consumer.batch`): at the worker's default of 20, a five-department case's 17
#: events filled a gathered batch each (bench, 10 clients: a transaction and five statements per case).
BATCH = 200

CONSUMERS: list[Consumer] = [
    Consumer("notify-events", "yimen.>", on_event,
             "Applicant-facing steps become messages and live-stream steps; cards and data-access anomalies "
             "tell the department; certificates feed the expiry reminders.", types=frozenset(HANDLED_TYPES),
             batch_handler=on_events, gather=0.25, batch=BATCH),
]
