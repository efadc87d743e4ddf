"""The FastAPI adapter for `shared.errors`: every `Problem`, every request-validation error and every
framework HTTP error leaves a service as `application/problem+json`. Anything unexpected becomes a bare 500
with a reference id; the trace goes to the log, never to the client."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import PROBLEM_JSON, FieldError, Problem, ProblemDetail, ValidationProblem

log = logging.getLogger("yimen.errors")


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(str(request.url.path) if request else None),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict with the current state"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("too-many-requests", "Too many requests"),
}


def _pydantic_rule(err: dict[str, Any]) -> str:
    kind = str(err.get("type", "invalid"))
    # Our own validators raise PydanticCustomError whose type is already the rule's name.
    return kind.replace("value_error", "invalid") if kind.startswith("value_error") else kind


def validation_errors(exc: RequestValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.append(FieldError(field=".".join(loc), rule=_pydantic_rule(err), message=msg))
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        return problem_response(
            ValidationProblem(errors, detail="; ".join(f"{e.field}: {e.message}" for e in errors)), request
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _HTTP_SLUGS.get(exc.status_code, ("error", "Error"))
        detail = exc.detail if isinstance(exc.detail, str) else None
        p = Problem(detail, slug=slug, title=title, status=exc.status_code, headers=dict(exc.headers or {}))
        return problem_response(p, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        from shared.db import infrastructure_failure

        if infrastructure_failure(exc):
            # The database is restarting or saturated: nothing was committed, and a retry will do.
            log.warning("dependency unavailable on %s: %r", request.url.path, exc)
            return problem_response(Problem(
                "A dependency of this service is unavailable for a moment; nothing was changed. Retry shortly.",
                slug="unavailable", title="Service unavailable", status=503, headers={"Retry-After": "2"},
            ), request)
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error ref=%s path=%s", ref, request.url.path)
        p = Problem(
            f"An internal error occurred; quote reference {ref} to the operator.",
            slug="internal",
            title="Internal error",
            status=500,
            reference=ref,
        )
        return problem_response(p, request)


#: Add to a route's `responses=` so OpenAPI documents the problem shape.
def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ProblemDetail, "content": {PROBLEM_JSON: {}}} for c in codes}
