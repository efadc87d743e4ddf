"""The errors a use case or a domain rule raises: RFC 9457 problem details as plain exceptions.

This module knows no web framework, so `domain/` and `service.py` modules raise these freely;
`shared/http_errors.py` is the one adapter that renders them (422 included) as `application/problem+json`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

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
