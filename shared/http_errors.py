"""The FastAPI adapter for `shared.errors`: every `Problem`, every request-validation error and every
framework HTTP error leaves a service as `application/problem+json`. Anything unexpected becomes a bare 500
with a reference id; the trace goes to the log, never to the client.

Each answer is in one language, picked from the request's `Accept-Language` (`shared.errors.negotiate_language`):
Chinese (`zh-CN`) by default, English for `en`; titles, framework details and pydantic's validation messages
exist in both, a domain problem's detail in the languages its call site gave (`detail`, `detail_en`). The
response says which with `Content-Language` (and `Vary: Accept-Language`). The service middleware keeps the
request's language for answers rendered outside a route (an oversized body, the time budget)."""

from __future__ import annotations

import contextvars
import logging
import uuid
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import (
    EN,
    PROBLEM_JSON,
    ZH,
    FieldError,
    Problem,
    ProblemDetail,
    ValidationProblem,
    is_chinese,
    negotiate_language,
)

log = logging.getLogger("yimen.errors")

#: The request's `Accept-Language` as sent (negotiated only when a problem is rendered without the request).
_language: contextvars.ContextVar[str | None] = contextvars.ContextVar("yimen_language", default=None)


def request_language(request: Request | None = None) -> str:
    """The language of this request's answers: its `Accept-Language`, else the one the service middleware saw."""
    if request is not None:
        return negotiate_language(request.headers.get("accept-language"))
    return negotiate_language(_language.get())


def set_language(accept_language: str | None) -> contextvars.Token[str | None]:
    """Remember the request's `Accept-Language` for problems rendered without the request (the service
    middleware's 413 and 503); `reset_language` with the token when the request ends."""
    return _language.set(accept_language)


def reset_language(token: contextvars.Token[str | None]) -> None:
    _language.reset(token)


def problem_response(problem: Problem, request: Request | None = None, *, lang: str | None = None) -> JSONResponse:
    lang = lang or request_language(request)
    return JSONResponse(
        problem.body(str(request.url.path) if request else None, lang=lang),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers={**problem.headers, "Content-Language": lang, "Vary": "Accept-Language"},
    )


_HTTP_SLUGS = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
    406: "not-acceptable", 409: "conflict", 413: "payload-too-large", 415: "unsupported-media-type",
    429: "too-many-requests",
}
#: Details of the framework's own HTTP errors (raised with the bare status phrase), in both languages.
_HTTP_DETAILS = {
    404: ("没有这个地址。请查看本服务的接口文档（/<服务>/docs）。",
          "There is nothing at this address; see the service's API documentation (/<service>/docs)."),
    405: ("此地址不支持这种请求方法。", "This address does not accept this method."),
    406: ("无法以所要求的格式提供。", "The requested representation cannot be produced."),
    415: ("不支持此内容类型。", "This content type is not accepted."),
    400: ("请求有误。", "The request is malformed."),
}


def _pydantic_rule(err: dict[str, Any]) -> str:
    kind = str(err.get("type", "invalid"))
    # Our own validators raise PydanticCustomError whose type is already the rule's name.
    return kind.replace("value_error", "invalid") if kind.startswith("value_error") else kind


def validation_errors(exc: RequestValidationError) -> list[FieldError]:
    """Pydantic's errors as field errors: the English message as pydantic words it, the Chinese one from
    `RULE_MESSAGES_ZH` (or the validator's own text when it is Chinese: a `PydanticCustomError` may carry
    both, its message in Chinese and `{"en": …}` in its context)."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        ctx = dict(err.get("ctx") or {})
        error = FieldError(field=".".join(loc), rule=_pydantic_rule(err), message=msg)
        error._framework = True
        error._context.update({k: v for k, v in ctx.items() if isinstance(v, str | int | float)})
        if isinstance(ctx.get("en"), str):
            error.with_text(EN, ctx["en"])
        if str(err.get("type", "")).startswith("value_error") and "error" in ctx:
            # A validator's ValueError: its own words are the message in the language they are written in.
            error.with_text(ZH, msg if is_chinese(msg) else f"取值无效：{msg}")
        out.append(error)
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(ValidationProblem(validation_errors(exc)), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = _HTTP_SLUGS.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        detail_en = detail_zh = None
        phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else None
        if detail is None or detail == phrase:
            zh, detail_en = _HTTP_DETAILS.get(exc.status_code, (None, None))
            detail = zh or detail
        elif exc.status_code == 413 and "bytes" in detail:
            limit = "".join(c for c in detail if c.isdigit())
            detail_zh = f"请求内容最多 {limit} 字节。" if limit else None
        p = Problem(detail, slug=slug, status=exc.status_code, headers=dict(exc.headers or {}), detail_en=detail_en,
                    detail_zh=detail_zh)
        return problem_response(p, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        from shared.db import infrastructure_failure

        if infrastructure_failure(exc):
            # The database is restarting or saturated: nothing was committed, and a retry will do.
            log.warning("dependency unavailable on %s: %r", request.url.path, exc)
            return problem_response(Problem(
                "本服务依赖的组件暂时不可用，未作任何更改，请稍后重试。",
                detail_en="A dependency of this service is unavailable for a moment; nothing was changed. "
                          "Retry shortly.",
                slug="unavailable", status=503, headers={"Retry-After": "2"},
            ), request)
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error ref=%s path=%s", ref, request.url.path)
        p = Problem(
            f"发生内部错误，请向运维人员提供编号 {ref}。",
            detail_en=f"An internal error occurred; quote reference {ref} to the operator.",
            slug="internal",
            title="Internal error",
            status=500,
            reference=ref,
        )
        return problem_response(p, request)


#: Add to a route's `responses=` so OpenAPI documents the problem shape.
def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ProblemDetail, "content": {PROBLEM_JSON: {}}} for c in codes}
