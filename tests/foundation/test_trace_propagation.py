"""A service's outgoing HTTP calls continue the trace of the request (or event) being handled."""

from __future__ import annotations

import httpx

from shared.service import _propagate_trace
from shared.tracing import set_request_id, set_traceparent


async def test_outgoing_calls_carry_a_child_span_of_the_current_trace_and_the_request_id():
    trace = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    set_traceparent(trace)
    set_request_id("req-1")
    try:
        request = httpx.Request("GET", "http://datashare/x")
        await _propagate_trace(request)
    finally:
        set_traceparent(None)
        set_request_id(None)
    assert request.headers["traceparent"].startswith("00-" + "a" * 32 + "-")
    assert request.headers["traceparent"] != trace, "a new span in the same trace"
    assert request.headers["x-request-id"] == "req-1"
