"""A time budget for every request (issue 13, "no request may hold a worker").

`TimeBudgetMiddleware` cancels a request that runs past its budget (body reading included) and answers
503 problem+json with `Retry-After`, so a slow query or a hostile parameter cannot keep a worker, a database
connection or the gateway busy. Cancellation reaches every `await` of the request (database calls, HTTP calls
to other services); CPU-bound work holds the event loop and cannot be cancelled, which is why such work is
bounded where it happens (bounded parameters, indexed working-day arithmetic, imports parsed in a thread).

A route that legitimately takes longer (a registry import of 100,000 rows) declares its own budget with the
dependency `dependencies=[time_budget(seconds)]`, which moves the deadline once the route is reached."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from fastapi import Depends, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import Problem
from shared.http_errors import problem_response

log = logging.getLogger("yimen.budget")

_SCOPE_KEY = "yimen.time_budget"


def time_budget(seconds: float) -> Any:
    """A route dependency: this route's budget is `seconds` from the moment it is reached."""

    async def extend(request: Request) -> None:
        timeout: asyncio.Timeout | None = request.scope.get(_SCOPE_KEY)
        if timeout is not None:
            timeout.reschedule(asyncio.get_running_loop().time() + seconds)
            request.scope["yimen.time_budget_seconds"] = seconds

    return Depends(extend)


class BudgetExceeded(Problem):
    status, slug, title = 503, "time-budget-exceeded", "The request took too long"


class TimeBudgetMiddleware:
    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds) as timeout:
                scope[_SCOPE_KEY] = timeout
                await self.app(scope, receive, watched_send)
        except TimeoutError:
            if not timeout.expired():  # a timeout of the work's own, already answered by the error handlers
                raise
            budget = float(scope.get("yimen.time_budget_seconds", self.seconds))
            log.warning("request cancelled after its budget of %.1f s: %s %s", budget, scope.get("method"),
                        scope.get("path"))
            if started:  # part of the answer is out: closing the connection is all that is left
                raise
            retry = max(1, math.ceil(budget / 10))
            problem = BudgetExceeded(
                f"The request was stopped after {budget:g} s and nothing it had not committed was kept. "
                f"Retry in {retry} s, or narrow the request.",
                detail_zh=f"请求处理超过 {budget:g} 秒已被中止，未提交的内容均未保存。请 {retry} 秒后重试，或缩小请求范围。",
                headers={"Retry-After": str(retry)},
            )
            await problem_response(problem)(scope, receive, send)
