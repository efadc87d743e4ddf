"""Request ids and W3C trace context, carried from HTTP into events and back out to HTTP calls."""

from __future__ import annotations

import contextvars
import re
import secrets

_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar("traceparent", default=None)
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_traceparent(trace_id: str | None = None) -> str:
    return f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def child_traceparent(parent: str | None) -> str:
    """A new span in the parent's trace, or a new trace if the parent is absent or malformed."""
    m = _TRACEPARENT.match(parent or "")
    return new_traceparent(m.group(1) if m else None)


def current_traceparent() -> str | None:
    return _traceparent.get()


def set_traceparent(value: str | None) -> contextvars.Token[str | None]:
    return _traceparent.set(value)


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
