"""Signing in with the platform's own OAuth2 token endpoint (password grant) and out again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from services.console.session import PATH
from services.console.upstream import ApiError
from services.console.web import (
    api_for,
    check_form,
    clear_cookie,
    is_clerk,
    may_supervise,
    redirect,
    render,
    safe_next,
)

router = APIRouter()


@router.get("/login", summary="Sign-in page")
async def login_page(request: Request, next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    return render(request, "login.html", next=safe_next(next) or "", error=None)


@router.post("/login", summary="Sign in (username and password, as at the token endpoint)")
async def login(request: Request, username: Annotated[str, Form(min_length=1, max_length=64)],
                password: Annotated[str, Form(min_length=1, max_length=1024)],
                next: Annotated[str | None, Form(max_length=500)] = None) -> Response:
    api = api_for(request)
    try:
        await api.sign_in(username, password)  # the cookie is set on the way out (web.finish)
    except ApiError as exc:
        message = {401: "用户名或密码不正确。", 429: "尝试次数过多，请稍后再试。"}.get(
            exc.status, str(exc.problem.get("detail") or "暂时无法登录。"))
        return render(request, "login.html", status_code=exc.status if exc.status < 500 else 502,
                      next=safe_next(next) or "", error=message)
    me = api.principal
    assert me is not None
    home = f"{PATH}/desk" if is_clerk(me) and not may_supervise(me) else f"{PATH}/"
    return redirect(request, safe_next(next) or home)


@router.post("/logout", summary="Sign out (the refresh token is revoked)")
async def logout(request: Request) -> Response:
    await check_form(request)
    await api_for(request).sign_out()
    response = redirect(request, f"{PATH}/login")
    clear_cookie(request, response)
    return response
