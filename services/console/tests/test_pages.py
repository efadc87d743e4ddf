"""The console's own guards, in process (the pages against the running platform are in tests/e2e/test_console.py):
sign-in redirects, the roles a page is for, the CSRF and origin checks on every form, the security headers."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.console.app import create_app
from services.console.config import ConsoleSettings
from services.console.session import COOKIE, Session
from shared.settings import SERVICES, PlatformSettings


@pytest.fixture
async def console(tokens):
    # No upstream answers on these URLs: the guards under test must refuse before any API is called.
    platform = PlatformSettings(service_urls={s: "http://127.0.0.1:9" for s in SERVICES})
    app = create_app(ConsoleSettings(platform=platform), jwks_fetcher=tokens.fetch)
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test") as c:
            yield c


def signed_in(client: httpx.AsyncClient, token: str) -> Session:
    session = Session.new(token, None)
    client.cookies.set(COOKIE, session.encode(), domain="console.test", path="/console")
    return session


async def test_the_sign_in_page_is_chinese_keyboard_ready_and_locked_down(console):
    r = await console.get("/console/login")
    assert r.status_code == 200 and '<html lang="zh-CN">' in r.text and "autofocus" in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"
    assert "<script" not in r.text and "http://" not in r.text.replace('xmlns="http://www.w3.org/2000/svg"', "")


async def test_a_page_without_a_session_sends_to_sign_in_and_back(console):
    r = await console.get("/console/supervision?state=open")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=%2Fconsole%2Fsupervision%3Fstate%3Dopen"


async def test_a_forged_or_expired_token_in_the_cookie_is_not_a_session(console, tokens):
    from datetime import timedelta

    signed_in(console, tokens.token(roles=["supervisor"], kind="staff", ttl=timedelta(seconds=-60)))
    r = await console.get("/console/")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    console.cookies.set(COOKIE, "bm90LWEtc2Vzc2lvbg", domain="console.test", path="/console")
    assert (await console.get("/console/")).status_code == 303


async def test_a_citizen_is_refused_the_console_and_the_desk(console, tokens):
    signed_in(console, tokens.token(roles=["citizen"]))
    for path in ("/console/", "/console/supervision", "/console/ratings", "/console/desk", "/console/desk/walk-in",
                 "/console/desk/applications/abc/receipt-slip"):
        r = await console.get(path)
        assert r.status_code == 403, path
        assert "没有相应角色" in r.text


async def test_a_form_needs_its_csrf_token_and_this_origin(console, tokens):
    session = signed_in(console, tokens.token(roles=["supervisor"], kind="staff", name="监察员"))
    r = await console.post("/console/supervision/1/answer", data={"answer": "已办结"})
    assert r.status_code == 403 and "表单" in r.text
    r = await console.post("/console/supervision/1/answer", data={"answer": "已办结", "csrf": "0" * 40})
    assert r.status_code == 403
    r = await console.post("/console/supervision/1/answer", data={"answer": "已办结", "csrf": session.csrf},
                           headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "另一个网站" in r.text
    clerk = signed_in(console, tokens.token(roles=["window_clerk"], kind="staff", dept="LD-ZSJ", point="LD-CENTRE"))
    r = await console.post("/console/desk/applications/abc/accept", data={"csrf": session.csrf})
    assert r.status_code == 403 and clerk.csrf != session.csrf
    # 窗口代录 files for a person: refused before any API is called without this session's token.
    walk_in = {"item_code": "X1", "name": "黄伯", "id_number": "445381195203041234", "consent": "SIGPAD-1"}
    for data in (walk_in, {**walk_in, "csrf": session.csrf}):
        r = await console.post("/console/desk/walk-in", data=data)
        assert r.status_code == 403 and "表单" in r.text


async def test_sign_out_needs_the_csrf_token_too(console, tokens):
    session = signed_in(console, tokens.token(roles=["supervisor"], kind="staff"))
    assert (await console.post("/console/logout")).status_code == 403
    r = await console.post("/console/logout", data={"csrf": session.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert f'{COOKIE}=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]


async def test_an_api_that_does_not_answer_is_a_page_saying_so_not_a_stack_trace(console, tokens):
    signed_in(console, tokens.token(roles=["supervisor"], kind="staff"))
    r = await console.get("/console/")
    assert r.status_code == 502 and "暂时无法连接" in r.text and r.headers["content-type"].startswith("text/html")
    r = await console.post("/console/login", data={"username": "someone", "password": "secret"})
    assert r.status_code == 502 and "Traceback" not in r.text
