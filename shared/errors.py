"""RFC 9457 problem details for every error a service returns.

Services raise `Problem` subclasses (or FastAPI's own exceptions); `install_error_handlers` renders every one
of them — 422 included — as `application/problem+json`. Anything unexpected becomes a bare 500 with a
reference id; the trace goes to the log, never to the client."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("yimen.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://yimen.gov.cn/problems/"


class FieldError(BaseModel):
    """One broken rule on one field."""

    field: str = Field(description="Dotted path of the field, e.g. `body.id_number` or `materials.2.file`.")
    rule: str = Field(description="Stable machine name of the rule, e.g. `check_digit`, `missing`, `max_length`.")
    message: str = Field(description="What is wrong, in words a person can act on.")


class ProblemDetail(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class Problem(Exception):
    """An error with a stable `type`; subclasses set the defaults, call sites give the detail."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        slug: str | None = None,
        title: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        if slug:
            self.slug = slug
        if title:
            self.title = title
        if status:
            self.status = status
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [e.model_dump() for e in self.errors]
        body.update(self.extra)
        return body


class BadRequest(Problem):
    pass


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict with the current state"


class PreconditionFailed(Problem):
    status, slug, title = 412, "precondition-failed", "The resource has changed (ETag mismatch)"


class PreconditionRequired(Problem):
    status, slug, title = 428, "precondition-required", "If-Match is required to change this resource"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class TooManyRequests(Problem):
    status, slug, title = 429, "too-many-requests", "Too many requests"


class ValidationProblem(Problem):
    """A 422 raised by domain rules, with the same shape as pydantic's request validation."""

    status, slug, title = 422, "validation", "The request breaks one or more rules"

    def __init__(self, errors: list[FieldError] | FieldError, detail: str | None = None, **kw: Any) -> None:
        errs = errors if isinstance(errors, list) else [errors]
        super().__init__(detail or "; ".join(f"{e.field}: {e.message}" for e in errs), errors=errs, **kw)


def invalid(field: str, rule: str, message: str) -> ValidationProblem:
    return ValidationProblem(FieldError(field=field, rule=rule, message=message))


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
