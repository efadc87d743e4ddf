"""Hot public GETs answered without FastAPI's router (issue 14, "public reads near the bare request").

A request through FastAPI's router costs about a thousand Python calls before the route's own work: the route
table is walked (every included router asks each of its routes whether the table changed, then matches them in
turn) and the parameters are solved and validated by the dependency machinery. For the most frequent public reads
(the public status query, a published guide, liveness) that was several times the read itself. A `FastGet`
gives such a route a second, cheap way in: the service's middleware (`RequestContextMiddleware`, which still
stamps the request id and trace, keeps the time budget and counts the metrics) matches the path against the
route's own template and calls the route's `answer` with the raw path parameters.

A `FastPost` does the same for a POST (the department simulator's webhook receiver, issue 14's department path):
the middleware reads the whole body first (bounded as for the route) and gives it to the fast answer and, if that
declines, again to the router. A POST's answer acts, so it declines (returns None) or raises only before it acts,
or where acting again is harmless (the route meeting the request again answers it the same way).

`answer` may answer only what the route would answer the same way (headers and body): it validates its input at
least as strictly as the route declares it, and returns None for anything else — a query it does not expect, a
cache miss, an unknown receipt, a client over a limit — and then the router takes the request as if the fast path
did not exist, so every error stays the route's own problem+json. An exception in `answer` does the same (the
route meets it again and answers it its way); only cancellation (the time budget) passes through. The route label
of the metrics is the route's, as the router sets it. Tests show each fast answer equal to the router's
(`FastPaths.enabled = False` turns the fast path off in a running app)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Receive, Scope, Send

log = logging.getLogger("yimen.fastpath")

#: The route's answer from the raw (percent-decoded) path parameters, or None to leave the request to the router.
Answer = Callable[[Request, dict[str, str]], Awaitable[Response | None]]


@dataclass(frozen=True)
class FastGet:
    """`answer` stands in for the GET route of `router` whose endpoint is `endpoint`."""

    router: APIRouter
    endpoint: Callable[..., Any]
    answer: Answer
    method: ClassVar[str] = "GET"


@dataclass(frozen=True)
class FastPost(FastGet):
    """`answer` stands in for the POST route of `router` whose endpoint is `endpoint`; it declines or fails only
    before acting (or idempotently), see the module's note."""

    method: ClassVar[str] = "POST"


@dataclass(frozen=True)
class _Resolved:
    method: str
    regex: re.Pattern[str]
    route: APIRoute
    answer: Answer


class FastPaths:
    """The fast routes of one app, each matched by its route's full path (prefixes included)."""

    def __init__(self, app: FastAPI, fast: list[FastGet]) -> None:
        self.enabled = True
        #: Requests answered here rather than by the router (tests read it).
        self.answered = 0
        self.routes: list[_Resolved] = []
        for f in fast:
            route = next((r for r in f.router.routes if isinstance(r, APIRoute) and r.endpoint is f.endpoint
                          and f.method in (r.methods or ())), None)
            if route is None:
                raise ValueError(f"no {f.method} route of {f.endpoint.__name__} in its router")
            # The path as the app serves it, with every prefix it is included under (the router's own lookup).
            template = str(app.url_path_for(route.name, **{p: "{" + p + "}" for p in route.param_convertors}))
            if not template.endswith(route.path):
                raise ValueError(f"{route.name}: {template} is not {route.path} under a prefix (a name used twice?)")
            regex, _, convertors = compile_path(template)
            if any(type(c).__name__ != "StringConvertor" for c in convertors.values()):
                raise ValueError(f"{route.name}: only plain path parameters are matched here")
            self.routes.append(_Resolved(f.method, regex, route, f.answer))
        #: The methods some fast route answers.
        self.methods = frozenset(r.method for r in self.routes)

    def _match(self, scope: Scope) -> tuple[_Resolved, re.Match[str]] | None:
        if not self.enabled or scope.get("root_path") or scope["method"] not in self.methods:
            return None
        path, method = scope["path"], scope["method"]
        for r in self.routes:
            if r.method == method and (m := r.regex.match(path)) is not None:
                return r, m
        return None

    def takes(self, scope: Scope) -> bool:
        """A fast route may answer this request (the middleware then reads a POST's body first)."""
        return self._match(scope) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer a request if a fast route takes it; False leaves it, untouched, to the router (a POST's body
        is the middleware's to give the router again)."""
        found = self._match(scope)
        if found is None:
            return False
        r, m = found
        try:
            response = await r.answer(Request(scope, receive), m.groupdict())
        except Exception as exc:  # the router meets it again and answers it as the route does
            log.debug("fast path of %s left to the router: %r", r.route.name, exc)
            return False
        if response is None:
            return False
        scope["route"] = r.route  # the metrics' route label, as the router would set it
        self.answered += 1
        await response(scope, receive, send)
        return True
