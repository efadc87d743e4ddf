"""JSON logs, Prometheus metrics and the middleware that stamps each request with an id and a trace."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.budget import BUDGET_KEY, SECONDS_KEY, overrun
from shared.errors import PayloadTooLarge, Problem, invalid
from shared.fastpath import FastPaths
from shared.http_errors import problem_response, reset_language, set_language
from shared.privacy import mask_text
from shared.tracing import (
    child_traceparent,
    current_request_id,
    current_traceparent,
    new_traceparent,
    reset_request_id,
    reset_traceparent,
    set_request_id,
    set_traceparent,
)

#: `FastAPI(telemetry=NO_OTEL)`: FastAPI's native OpenTelemetry off. The platform traces with its own
#: `traceparent` and metrics (below), and FastAPI would otherwise ask the global providers whether they are
#: configured on every request.
NO_OTEL: Any = {"tracing": False, "metrics": False, "logs": False}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            # Personal numbers never reach a log line, whoever wrote the message.
            "message": mask_text(record.getMessage()),
        }
        if rid := current_request_id():
            entry["request_id"] = rid
        if tp := current_traceparent():
            entry["traceparent"] = tp
        if record.exc_info:
            entry["exc"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", as_json: bool = True) -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if as_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "nats", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total", "HTTP requests", ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_seconds", "HTTP request latency", ["service", "method", "route"],
            registry=self.registry,
        )
        self.events_published = Counter(
            "events_published_total", "Events published by the outbox relay", ["service"], registry=self.registry
        )
        self.events_handled = Counter(
            "events_handled_total", "Events handled", ["service", "consumer", "result"], registry=self.registry
        )
        self.service = service
        #: The counter and histogram children of each (method, route, status): `labels()` looks its arguments up
        #: under a lock on every call; routes are templates, so this stays as small as the API.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:
            children = self._children[(method, route, status)] = (
                self.requests.labels(self.service, method, route, str(status)),
                self.latency.labels(self.service, method, route))
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


#: The route label of a request no route answered (a 404, or a middleware's own refusal): the path itself would
#: give every scanner's guess a series of its own.
UNMATCHED = "(unmatched)"


class RequestContextMiddleware:
    """The one ASGI middleware of a service, plain ASGI so streaming is untouched: the request's language, id and
    trace, its time budget (`shared.budget`), a body-size limit and NUL checks, and its metrics.

    One middleware rather than one per concern: each layer of pure ASGI costs a coroutine, a `send` wrapper and a
    scan of the headers on every request, which made the stack a fifth of a busy service's CPU. The budget is
    the outermost part of it, so reading a slow body counts against it; the answers rendered here (413, 422,
    503) are in the request's language and carry its id and trace."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int, budget_seconds: float = 0,
                 fast: FastPaths | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.budget = budget_seconds
        #: Hot public GETs answered without the router (`shared.fastpath`), inside everything above.
        self.fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        # One pass over the headers for the five read here (ASGI servers give names in lower case).
        rid = parent = declared = language = None
        ctype = ""
        for k, v in scope.get("headers", ()):
            if k == b"content-type":
                ctype = v.decode("latin-1")
            elif k == b"content-length":
                declared = v.decode("latin-1")
            elif k == b"accept-language":
                language = v.decode("latin-1")
            elif k == b"x-request-id":
                rid = v.decode()
            elif k == b"traceparent":
                parent = v.decode()
        tp = child_traceparent(parent) if parent else new_traceparent()
        rid = rid or os.urandom(16).hex()
        t0, t1, t2 = set_language(language), set_request_id(rid), set_traceparent(tp)
        response_headers = ((b"x-request-id", rid.encode()), (b"traceparent", tp.encode()))
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", ()), *response_headers]
            await send(message)

        try:
            if self.budget > 0:
                try:
                    async with asyncio.timeout(self.budget) as timeout:
                        scope[BUDGET_KEY], scope[SECONDS_KEY] = timeout, self.budget
                        await self._guarded(scope, receive, send_wrapper, declared, ctype)
                except TimeoutError:
                    if not timeout.expired():  # a timeout of the work's own, already answered by the handlers
                        raise
                    answer = overrun(scope)
                    if started:  # part of the answer is out: closing the connection is all that is left
                        raise
                    await answer(scope, receive, send_wrapper)
            else:
                await self._guarded(scope, receive, send_wrapper, declared, ctype)
        finally:
            # The template of the route that answered, as its router declares it (`/status/{receipt_number}`,
            # without the prefix it is included under), which the router left in the scope.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.metrics.observe(scope.get("method", ""), route, status, time.perf_counter() - start)
            reset_language(t0)
            reset_request_id(t1)
            reset_traceparent(t2)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, declared: str | None, ctype: str) -> None:
        """The body limit and the NUL checks, then the app."""
        multipart = ctype.startswith("multipart/")
        limit = self.max_body * 32 if multipart else self.max_body
        if declared and declared.isdigit() and int(declared) > limit:
            resp = problem_response(PayloadTooLarge(f"The body is limited to {limit} bytes.", detail_zh=f"请求内容最多 {limit} 字节。"))
            await resp(scope, receive, send)
            return
        if bad := _bad_url(scope):
            await problem_response(bad)(scope, receive, send)
            return
        # A NUL can be neither stored in nor compared with a PostgreSQL text column, so text bodies carrying one
        # are refused here once for every route (file uploads are binary and pass). Text bodies are small
        # (bounded by `limit`), so they are read whole, checked, and handed on.
        form = ctype.startswith("application/x-www-form-urlencoded")
        method = scope.get("method")
        text = method in ("POST", "PUT", "PATCH") and (form or ctype.startswith(("application/json", "text/")))
        # A POST a fast route may answer is read whole too, whatever its type: the fast answer and, if it
        # declines, the router each get the body (`shared.fastpath`).
        fast = self.fast is not None and (method == "GET" or (method == "POST" and self.fast.takes(scope)))
        body: bytes | None = None
        if text or (fast and method == "POST"):
            chunks: list[bytes] = []
            received = 0
            more = True
            while more:
                msg = await receive()
                if msg["type"] != "http.request":
                    break
                chunks.append(msg.get("body", b""))
                received += len(chunks[-1])
                more = msg.get("more_body", False)
                if received > limit:
                    await problem_response(PayloadTooLarge(f"The body is limited to {limit} bytes.", detail_zh=f"请求内容最多 {limit} 字节。"))(
                        scope, receive, send)
                    return
            body = b"".join(chunks)
            if text:
                lowered = body.lower()
                if b"\x00" in body or b"\\u0000" in lowered or (form and b"%00" in body):
                    await problem_response(
                        invalid(_nul_field(body), "nul_character", "Text may not contain the NUL character (U+0000).",
                                message_zh="文本不能包含 NUL 字符（U+0000）。")
                    )(scope, receive, send)
                    return

        if fast:
            assert self.fast is not None
            if await self.fast(scope, _replay(body, receive) if body is not None else self._limited(receive, limit),
                               send):
                return
        app_receive = _replay(body, receive) if body is not None else self._limited(receive, limit)
        try:
            await self.app(scope, app_receive, send)
        except StarletteHTTPException as exc:  # the body limit hit outside FastAPI's parsing
            if exc.status_code != 413:
                raise
            await problem_response(PayloadTooLarge(str(exc.detail)))(scope, receive, send)

    @staticmethod
    def _limited(receive: Receive, limit: int) -> Receive:
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    # An HTTPException passes FastAPI's body parsing (which turns anything else into a
                    # 400) and reaches the problem handler as a 413.
                    raise StarletteHTTPException(413, f"The body is limited to {limit} bytes.")
            return msg

        return limited_receive


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body read already, then whatever comes next (a disconnect)."""
    replayed = False

    async def buffered_receive() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return buffered_receive


def _nul_field(body: bytes) -> str:
    """The dotted path of the first JSON string (key or value) holding a NUL, to name the field in the 422."""
    try:
        doc = json.loads(body)
    except ValueError:
        return "body"

    def walk(node: Any, path: str) -> str | None:
        if isinstance(node, str):
            return path if "\x00" in node else None
        if isinstance(node, dict):
            for k, v in node.items():
                if "\x00" in k:
                    return path
                if (found := walk(v, f"{path}.{k}")) is not None:
                    return found
        if isinstance(node, list):
            for i, v in enumerate(node):
                if (found := walk(v, f"{path}.{i}")) is not None:
                    return found
        return None

    return walk(doc, "body") or "body"


def _bad_url(scope: Scope) -> Problem | None:
    path, raw_query = scope.get("path", ""), scope.get("query_string", b"")
    if "%" not in path and "\x00" not in path and not raw_query:
        return None  # most requests: nothing that could hide a NUL or repeat a parameter
    if "%" not in path and "\x00" not in path and not any(c in raw_query for c in b"%+\x00"):
        # Nothing escaped: the names are as written (what `parse_qsl` below would find).
        names = [part.partition(b"=")[0] for part in raw_query.split(b"&") if part]
        if len(set(names)) == len(names):
            return None
    from urllib.parse import parse_qsl, unquote

    if "\x00" in unquote(path):
        return invalid("path", "nul_character", "The path may not contain the NUL character (U+0000).",
                       message_zh="路径不能包含 NUL 字符（U+0000）。")
    query = raw_query.decode("latin-1")
    seen: set[str] = set()
    for name, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return invalid(f"query.{name.replace(chr(0), '')}", "nul_character",
                           "Query parameters may not contain the NUL character (U+0000).",
                           message_zh="查询参数不能包含 NUL 字符（U+0000）。")
        if name in seen:
            # No Yimen route takes a list in its query; a repeated name is a mistake or a smuggling attempt.
            return invalid(f"query.{name}", "repeated", "Give each query parameter once.",
                           message_zh="每个查询参数只能出现一次。")
        seen.add(name)
    return None


def metrics_endpoint(metrics: Metrics):  # type: ignore[no-untyped-def]
    async def endpoint(_: Request) -> Response:
        return metrics.render()

    return endpoint
