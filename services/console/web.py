"""What every page shares: the templates, the session of the request, rendering with the security headers,
and the answers for a missing sign-in, a refused form and an API's error."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from services.console.config import ConsoleSettings
from services.console.session import COOKIE, PATH, Session, csrf_ok
from services.console.upstream import Api, ApiError
from shared.auth import ADMIN, DEPARTMENT_REVIEWER, SUPERVISOR, WINDOW_CLERK, Principal

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

STATUS_NAMES = {
    "draft": "草稿", "submitted": "待受理", "returned": "退回补正", "not_accepted": "不予受理", "accepted": "已受理",
    "in_review": "审查中", "awaiting_correction": "待补正", "decided": "已办结", "awaiting_payment": "待缴费",
    "awaiting_pickup": "待领取", "delivered": "已送达", "withdrawn": "已撤回",
}
KIND_NAMES = {
    "yellow_card": "黄牌", "red_card": "红牌督办", "bad_rating": "差评整改", "repeated_application": "重复申请",
    "material_asked_again": "重复索要材料", "complaint_overdue": "投诉逾期", "rectification_overdue": "整改逾期",
}
REASON_NAMES = {"near_deadline": "临近期限", "promised_limit_exceeded": "超过承诺时限",
                "statutory_limit_exceeded": "超过法定时限"}
CHINA = ZoneInfo("Asia/Shanghai")


def local_time(value: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An ISO instant from an API (UTC) as Beijing time: every time on these pages is the city's."""
    if not value:
        return "—"
    try:
        return datetime.fromisoformat(value).astimezone(CHINA).strftime(fmt)
    except ValueError:
        return value


templates.env.globals.update(STATUS_NAMES=STATUS_NAMES, KIND_NAMES=KIND_NAMES, REASON_NAMES=REASON_NAMES)
templates.env.filters["pct"] = lambda v: "—" if v is None else f"{v:.0%}"
templates.env.filters["local"] = local_time

# No script runs on these pages, no frame may hold them, and forms post only here.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def settings_of(request: Request) -> ConsoleSettings:
    return request.app.state.settings


def api_for(request: Request) -> Api:
    """The API client of this request, with the session from the cookie (if any)."""
    if not hasattr(request.state, "api"):
        st = request.app.state
        request.state.api = Api(st.http, st.settings, st.verifier, Session.decode(request.cookies.get(COOKIE)))
    return request.state.api


def is_overseer(p: Principal) -> bool:
    return p.has(SUPERVISOR, ADMIN)


def may_supervise(p: Principal) -> bool:
    """Supervisors see the city; a department's staff see their department."""
    return is_overseer(p) or (p.is_staff and p.has(DEPARTMENT_REVIEWER) and bool(p.department))


def is_clerk(p: Principal) -> bool:
    return p.is_staff and p.has(WINDOW_CLERK)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    api = api_for(request)
    principal = api.principal
    context.update(request=request, me=principal, csrf=api.session.csrf if api.session else "",
                   may_supervise=bool(principal and may_supervise(principal)),
                   is_clerk=bool(principal and is_clerk(principal)))
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    return finish(request, response)


def finish(request: Request, response: Response) -> Response:
    """Security headers, and the renewed session cookie when the access token was renewed on the way."""
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
    api = getattr(request.state, "api", None)
    if api is not None and api.session is not None and api.session.changed:
        set_cookie(request, response, api.session)
    return response


def set_cookie(request: Request, response: Response, session: Session) -> None:
    response.set_cookie(COOKIE, session.encode(), path=PATH, httponly=True, samesite="strict",
                        secure=settings_of(request).secure_cookies, max_age=12 * 3600)


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict",
                           secure=settings_of(request).secure_cookies)


def redirect(request: Request, url: str) -> Response:
    return finish(request, RedirectResponse(url, status_code=303))


def to_sign_in(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"{PATH}/login?next={quote(here, safe='')}", status_code=303)
    clear_cookie(request, response)
    return finish(request, response)


def safe_next(value: str | None) -> str | None:
    """Only a path of this console: never another site (open redirect)."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith(PATH + "/") or "\\" in value:
        return None
    return value


async def check_form(request: Request) -> dict[str, str]:
    """The posted form, after the CSRF and origin checks."""
    api = api_for(request)
    await api.who()  # a POST without a live session signs in again
    form = await request.form()
    origin = request.headers.get("origin")
    host = request.headers.get("x-forwarded-host") or request.headers.get("host")
    if origin and origin != "null" and urlsplit(origin).netloc != host:
        raise Refused("这个表单来自另一个网站，已拒绝。")
    if api.session is None or not csrf_ok(api.session, str(form.get("csrf") or "")):
        raise Refused("表单已过期或不是从本页提交的，请刷新页面后重试。")
    return {k: v for k, v in form.items() if isinstance(v, str)}


class Refused(Exception):
    """A POST that failed the CSRF or origin check."""


def problem_text(err: ApiError) -> Markup:
    """An API's problem as the page shows it: the detail, then each field and rule."""
    lines = [str(err.problem.get("detail") or err.problem.get("title") or err.status)]
    lines += [f"{e.get('field')}: {e.get('message')} ({e.get('rule')})" for e in err.errors]
    return Markup("<br>").join(lines)


async def on_sign_in_needed(request: Request, _: Exception) -> Response:
    return to_sign_in(request)


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.status == 401:
        return to_sign_in(request)
    status = exc.status if exc.status in (403, 404, 409, 422) else 502
    return render(request, "error.html", status_code=status, error=exc, message=problem_text(exc))


async def on_refused(request: Request, exc: Exception) -> Response:
    return render(request, "error.html", status_code=403, error=None, message=str(exc))


async def on_unreachable(request: Request, exc: Exception) -> Response:
    """An API that does not answer: say so on a page (502), never a stack trace or a bare JSON error."""
    return render(request, "error.html", status_code=502, error=None,
                  message="平台服务暂时无法连接，请稍后刷新重试。")
