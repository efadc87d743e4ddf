"""A time budget for every request (issue 13, "no request may hold a worker").

The service's middleware (`shared.observability.RequestContextMiddleware`) cancels a request that runs past its budget (body reading included) and answers
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
from starlette.responses import Response
from starlette.types import Scope

from shared.errors import Problem
from shared.http_errors import problem_response

log = logging.getLogger("yimen.budget")

#: The request's `asyncio.Timeout`, which a route's own budget moves.
BUDGET_KEY = "yimen.time_budget"
#: The budget the request runs under: the middleware's, or the one its route declared (`time_budget`).
SECONDS_KEY = "yimen.time_budget_seconds"


def time_budget(seconds: float) -> Any:
    """A route dependency: this route's budget is `seconds` from the moment it is reached."""

    async def extend(request: Request) -> None:
        timeout: asyncio.Timeout | None = request.scope.get(BUDGET_KEY)
        if timeout is not None:
            timeout.reschedule(asyncio.get_running_loop().time() + seconds)
            request.scope[SECONDS_KEY] = seconds

    return Depends(extend)


class BudgetExceeded(Problem):
    status, slug, title = 503, "time-budget-exceeded", "The request took too long"


def overrun(scope: Scope) -> Response:
    """A request past its budget: logged, and the 503 problem to answer when nothing of the answer is out yet."""
    budget = float(scope[SECONDS_KEY])
    log.warning("request cancelled after its budget of %.1f s: %s %s", budget, scope.get("method"), scope.get("path"))
    retry = max(1, math.ceil(budget / 10))
    problem = BudgetExceeded(
        f"The request was stopped after {budget:g} s and nothing it had not committed was kept. "
        f"Retry in {retry} s, or narrow the request.",
        detail_zh=f"请求处理超过 {budget:g} 秒已被中止，未提交的内容均未保存。请 {retry} 秒后重试，或缩小请求范围。",
        headers={"Retry-After": str(retry)},
    )
    return problem_response(problem)
