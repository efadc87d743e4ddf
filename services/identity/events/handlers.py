"""What the identity service consumes from the bus."""

from __future__ import annotations

from shared.messaging import Consumer

CONSUMERS: list[Consumer] = []
