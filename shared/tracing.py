"""Request ids and W3C trace context, carried from HTTP into events and back out to HTTP calls."""

from __future__ import annotations

import contextvars
import os
import re

_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar("traceparent", default=None)
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_traceparent(trace_id: str | None = None) -> str:
    if trace_id:
        return f"00-{trace_id}-{os.urandom(8).hex()}-01"
    ids = os.urandom(24).hex()  # one draw for the trace and the span (every request makes one)
    return f"00-{ids[:32]}-{ids[32:]}-01"


def child_traceparent(parent: str | None) -> str:
    """A new span in the parent's trace, or a new trace if the parent is absent or malformed."""
    m = _TRACEPARENT.match(parent or "")
    return new_traceparent(m.group(1) if m else None)


def current_traceparent() -> str | None:
    return _traceparent.get()


def set_traceparent(value: str | None) -> contextvars.Token[str | None]:
    return _traceparent.set(value)


def reset_traceparent(token: contextvars.Token[str | None]) -> None:
    _traceparent.reset(token)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> contextvars.Token[str | None]:
    return _request_id.set(value)


def outgoing_headers() -> dict[str, str]:
    """Headers to add to a call to another service so the trace continues."""
    h = {}
    if tp := current_traceparent():
        h["traceparent"] = child_traceparent(tp)
    if rid := current_request_id():
        h["x-request-id"] = rid
    return h


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)
