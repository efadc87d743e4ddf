"""Every error is problem+json; tokens are verified against a JWKS served over real HTTP; creating POSTs are
idempotent under a key."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import httpx
import jwt
import pytest
import pytest_asyncio
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, FastAPI, Header, Request
from pydantic import BaseModel, Field

from shared.auth import ADMIN, CurrentPrincipal, JWKSVerifier, http_jwks_fetcher, require_roles
from shared.errors import Conflict, NotFound, Unauthorized, invalid
from shared.idempotency import run_idempotent
from shared.service import ServiceSpec, create_service_app
from shared.testing import TokenIssuer, free_port, running_app, wait_port

from .conftest import effect, messaging, metadata

router = APIRouter()


class Thing(BaseModel):
    name: str = Field(min_length=2, max_length=10)
    count: int = Field(ge=0)


@router.post("/things", status_code=201)
async def create_thing(
    thing: Thing, request: Request, principal: CurrentPrincipal,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
):
    async def work(session):
        res = await session.execute(effect.insert().values(consumer="thing", event_id=thing.name))
        await asyncio.sleep(0.05)
        return 201, {"id": res.inserted_primary_key[0], "name": thing.name}

    return await run_idempotent(request, key=idempotency_key, scope=f"{principal.subject}:things",
                                payload=thing.model_dump(), work=work)


#: Held open by a test: the first request's work waits on it while a repeat arrives.
HELD: dict[str, asyncio.Event] = {}
#: Set by the first request's work once it has written (on SQLite it then holds the one write lock).
REACHED: dict[str, asyncio.Event] = {}


@router.post("/held-things", status_code=201)
async def create_held_thing(
    thing: Thing, request: Request, principal: CurrentPrincipal,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
):
    async def work(session):
        res = await session.execute(effect.insert().values(consumer="held", event_id=thing.name))
        if thing.count == 0:
            raise invalid("body.count", "refused", "Refused after writing.")
        if (gate := HELD.get(thing.name)) is not None:
            REACHED[thing.name].set()
            await gate.wait()
        return 201, {"id": res.inserted_primary_key[0], "name": thing.name}

    return await run_idempotent(request, key=idempotency_key, scope=f"{principal.subject}:held",
                                payload=thing.model_dump(), work=work)


@router.get("/things/{thing_id}")
async def get_thing(thing_id: int, principal: CurrentPrincipal):
    raise NotFound(f"No thing {thing_id}.")


@router.post("/admin-only", dependencies=[require_roles(ADMIN)])
async def admin_only():
    return {"ok": True}


@router.post("/conflict")
async def conflict():
    raise Conflict("Already decided.")


@router.post("/rule")
async def rule():
    raise invalid("body.id_number", "check_digit", "The check digit should be X.")


@router.get("/boom")
async def boom():
    raise RuntimeError("secret internals /etc/passwd")


SPEC = ServiceSpec(name="probe", title="Yimen probe", description="test", metadata=metadata,
                   messaging=messaging, routers=[router])


def create_app(settings, **kw) -> FastAPI:
    return create_service_app(SPEC, settings, **kw)


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    settings = settings_for("probe")
    settings.migrate_on_start = False
    app_url = settings.resolved_database_url()
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(app_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    async with running_app(create_app, settings, tokens=tokens) as c:
        yield c


def _is_problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["title"]
    return body


async def test_every_error_is_problem_json(client, tokens):
    user = tokens.headers("u1")
    body = _is_problem(await client.post("/probe/v1/things", json={"name": "x", "count": -1}, headers=user), 422)
    fields = {e["field"]: e["rule"] for e in body["errors"]}
    assert fields == {"body.name": "string_too_short", "body.count": "greater_than_equal"}
    _is_problem(await client.post("/probe/v1/things", content=b"{bad", headers={**user, "content-type": "application/json"}), 422)
    _is_problem(await client.get("/probe/v1/things/7", headers=user), 404)
    _is_problem(await client.get("/probe/v1/things/7"), 401)
    _is_problem(await client.post("/probe/v1/admin-only", headers=user), 403)
    _is_problem(await client.post("/probe/v1/conflict"), 409)
    body = _is_problem(await client.post("/probe/v1/rule", headers={"Accept-Language": "en"}), 422)
    assert body["errors"] == [{"field": "body.id_number", "rule": "check_digit", "message": "The check digit should be X."}]
    _is_problem(await client.delete("/probe/v1/conflict"), 405)


async def test_every_error_answers_in_one_language_chinese_by_default_english_on_request(client, tokens):
    user = tokens.headers("u1")
    bad = {"name": "x", "count": -1}
    zh = await client.post("/probe/v1/things", json=bad, headers=user)
    body = _is_problem(zh, 422)
    assert zh.headers["content-language"] == "zh-CN" and "accept-language" in zh.headers["vary"].lower()
    assert body["title"] == "请求不符合规则"
    assert {e["field"]: e["message"] for e in body["errors"]} == {"body.name": "至少 2 个字符。",
                                                                  "body.count": "须大于或等于 0。"}
    en = await client.post("/probe/v1/things", json=bad, headers={**user, "Accept-Language": "en-GB,en;q=0.9"})
    body = _is_problem(en, 422)
    assert en.headers["content-language"] == "en" and body["title"] == "The request breaks one or more rules"
    assert {e["field"]: e["message"] for e in body["errors"]} == {
        "body.name": "String should have at least 2 characters", "body.count": "Input should be greater than or equal to 0"}
    # A rule of ours worded in English only is answered in its own words (it may give `message_zh`).
    body = _is_problem(await client.post("/probe/v1/rule"), 422)
    assert body["errors"] == [{"field": "body.id_number", "rule": "check_digit", "message": "The check digit should be X."}]
    # Framework errors (401, 404, 405, 413) and the problem types' titles, in both languages.
    for lang, title, detail in (("zh-CN", "需要登录认证", "此接口需要访问令牌"), ("en", "Authentication required",
                                                                        "This route needs a bearer token")):
        r = await client.get("/probe/v1/things/7", headers={"Accept-Language": lang})
        body = _is_problem(r, 401)
        assert body["title"] == title and body["detail"].startswith(detail) and r.headers["content-language"] == lang
    assert _is_problem(await client.get("/probe/v1/nothing-here"), 404)["detail"].startswith("没有这个地址")
    assert _is_problem(await client.get("/probe/v1/nothing-here", headers={"Accept-Language": "en"}),
                       404)["detail"].startswith("There is nothing at this address")
    assert _is_problem(await client.delete("/probe/v1/conflict"), 405)["title"] == "不支持此请求方法"
    big = b'{"name": "' + b"x" * 2_000_000 + b'", "count": 1}'
    r = await client.post("/probe/v1/things", content=big, headers={**user, "content-type": "application/json"})
    assert _is_problem(r, 413)["detail"].startswith("请求内容最多") and r.headers["content-language"] == "zh-CN"
    r = await client.post("/probe/v1/things", content=big,
                          headers={**user, "content-type": "application/json", "Accept-Language": "en"})
    assert _is_problem(r, 413)["title"] == "Request body too large" and r.headers["content-language"] == "en"
    # Neither language asked for (or `*`): Chinese; a domain detail given in one language only is kept as it is.
    r = await client.post("/probe/v1/conflict", headers={"Accept-Language": "fr, *;q=0.5"})
    assert r.headers["content-language"] == "zh-CN" and _is_problem(r, 409)["detail"] == "Already decided."


async def test_an_unexpected_error_is_a_bare_500_without_internals(client):
    body = _is_problem(await client.get("/probe/v1/boom"), 500)
    assert "passwd" not in str(body) and "Traceback" not in str(body)
    assert body["reference"]


async def test_an_oversized_body_is_413(client, tokens):
    big = b'{"name": "' + b"x" * 2_000_000 + b'", "count": 1}'
    _is_problem(await client.post("/probe/v1/things", content=big,
                                  headers={**tokens.headers("u1"), "content-type": "application/json"}), 413)


async def test_request_id_and_trace_come_back(client):
    r = await client.get("/probe/healthz", headers={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"})
    assert r.headers["x-request-id"]
    assert r.headers["traceparent"].startswith("00-" + "a" * 32)


async def test_same_idempotency_key_makes_one_thing_even_concurrently(client, tokens):
    h = {**tokens.headers("u-idem"), "Idempotency-Key": "k-1"}
    results = await asyncio.gather(
        *(client.post("/probe/v1/things", json={"name": "once", "count": 1}, headers=h) for _ in range(8))
    )
    created = [r for r in results if r.status_code == 201]
    assert {r.json()["id"] for r in created} and len({r.json()["id"] for r in created}) == 1
    assert all(r.status_code in (201, 409) for r in results)
    again = await client.post("/probe/v1/things", json={"name": "once", "count": 1}, headers=h)
    assert again.status_code == 201 and again.json() == created[0].json()
    assert again.headers["idempotent-replayed"] == "true"
    other = await client.post("/probe/v1/things", json={"name": "other", "count": 1}, headers=h)
    body = _is_problem(other, 422)
    assert body["errors"][0]["rule"] == "idempotency_key_reused"


# ---- tokens against a JWKS served over HTTP ---------------------------------------------------------------

@pytest.fixture(scope="module")
def jwks_server():
    issuer = TokenIssuer()
    app = FastAPI()

    @app.get("/jwks.json")
    async def jwks():
        return issuer.jwks()

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port("127.0.0.1", port)
    yield issuer, f"http://127.0.0.1:{port}/jwks.json"
    server.should_exit = True
    thread.join(5)


async def test_valid_token_is_accepted_and_its_claims_read(jwks_server):
    issuer, url = jwks_server
    v = JWKSVerifier(http_jwks_fetcher(url))
    p = await v.verify(issuer.token("s1", kind="staff", roles=["window_clerk"], dept="LD-SCJGJ", point="LD-CENTRE"))
    assert (p.subject, p.kind, p.department, p.service_point) == ("s1", "staff", "LD-SCJGJ", "LD-CENTRE")
    assert p.has("window_clerk")


async def test_forged_expired_and_foreign_tokens_are_refused(jwks_server):
    issuer, url = jwks_server
    v = JWKSVerifier(http_jwks_fetcher(url), min_refresh=0)
    good = issuer.token("s1")
    head, payload, sig = good.split(".")
    forged = f"{head}.{payload}.{'A' * len(sig)}"
    other = TokenIssuer()
    other.keys = {issuer.kid: Ed25519PrivateKey.generate()}  # the same kid with another key
    other.kid = issuer.kid
    cases = {
        "wrong signature": forged,
        "signed by another key": other.token("s1"),
        "expired": issuer.token("s1", ttl=timedelta(minutes=-10)),
        "other issuer": TokenIssuer(issuer="evil").token("s1"),
        "alg none": jwt.encode({"sub": "s1", "iss": "yimen-identity", "aud": "yimen", "exp": 9999999999, "iat": 1},
                               key=None, algorithm="none"),
        "HS256 with the public key": jwt.encode({"sub": "s1"}, "a-shared-secret-of-thirty-two-bytes!", algorithm="HS256",
                                                headers={"kid": issuer.kid}),
        "garbage": "not.a.token",
    }
    for what, token in cases.items():
        with pytest.raises(Unauthorized):
            await v.verify(token)
            pytest.fail(what)


async def test_rotation_new_key_is_picked_up_and_a_retired_key_fails(jwks_server):
    issuer, url = jwks_server
    v = JWKSVerifier(http_jwks_fetcher(url), min_refresh=0)
    old_kid = issuer.kid
    old_token = issuer.token("s1")
    assert (await v.verify(old_token)).subject == "s1"
    issuer.rotate()
    assert (await v.verify(issuer.token("s2"))).subject == "s2"  # unknown kid → refetch
    assert (await v.verify(old_token)).subject == "s1"  # old key still served until its tokens expire
    issuer.retire(old_kid)
    v.ttl = 0  # the cache expires
    with pytest.raises(Unauthorized):
        await v.verify(old_token)


async def test_a_service_refuses_a_token_it_cannot_verify(client):
    forged = TokenIssuer().token("intruder")
    body = _is_problem(await client.get("/probe/v1/things/1", headers={"Authorization": f"Bearer {forged}"}), 401)
    assert "签名密钥未知或已停用" in body["detail"]


async def test_a_nul_character_anywhere_in_text_input_is_a_422(client, tokens):
    user = tokens.headers("u-nul")
    body = _is_problem(await client.get("/probe/v1/things/7", params={"q": "a\x00b"},
                                        headers={**user, "Accept-Language": "en"}), 422)
    assert body["errors"][0] == {"field": "query.q", "rule": "nul_character",
                                 "message": "Query parameters may not contain the NUL character (U+0000)."}
    body = _is_problem(await client.get("/probe/v1/things/7", params={"q": "a\x00b"}, headers=user), 422)
    assert body["errors"][0]["message"] == "查询参数不能包含 NUL 字符（U+0000）。"
    _is_problem(await client.get("/probe/v1/things/a%00b", headers=user), 422)
    body = _is_problem(await client.post("/probe/v1/things", json={"name": "a\x00b", "count": 1}, headers=user), 422)
    assert (body["errors"][0]["field"], body["errors"][0]["rule"]) == ("body.name", "nul_character")
    fine = await client.post("/probe/v1/things", json={"name": "100%00", "count": 1}, headers=user)
    assert fine.status_code == 201


async def test_a_repeat_while_the_first_runs_is_told_409_at_once_and_then_replayed(client, tokens):
    # The key is claimed in the work's own transaction (PostgreSQL) or just before it (SQLite): either way a
    # repeat arriving meanwhile is answered at once, neither made to wait for the work nor doing it again.
    h = {**tokens.headers("u-held"), "Idempotency-Key": "held-1"}
    HELD["held"], REACHED["held"] = asyncio.Event(), asyncio.Event()
    try:
        first = asyncio.create_task(client.post("/probe/v1/held-things", json={"name": "held", "count": 1},
                                                headers=h))
        await asyncio.wait_for(REACHED["held"].wait(), 10)
        for _ in range(200):
            repeat = await asyncio.wait_for(
                client.post("/probe/v1/held-things", json={"name": "held", "count": 1}, headers=h), 5)
            if repeat.status_code == 409:
                break
            assert repeat.status_code != 201 and not first.done(), (repeat.status_code, repeat.text)
            await asyncio.sleep(0.01)
        assert _is_problem(repeat, 409)["type"].endswith("idempotency-in-flight")
        assert not first.done()
    finally:
        HELD["held"].set()
    done = await first
    assert done.status_code == 201
    again = await client.post("/probe/v1/held-things", json={"name": "held", "count": 1}, headers=h)
    assert again.status_code == 201 and again.json() == done.json() and again.headers["idempotent-replayed"] == "true"
    assert _is_problem(await client.post("/probe/v1/held-things", json={"name": "other", "count": 1}, headers=h),
                       422)["errors"][0]["rule"] == "idempotency_key_reused"


async def test_a_request_that_fails_leaves_its_key_free(client, tokens):
    h = {**tokens.headers("u-held"), "Idempotency-Key": "held-2"}
    for _ in range(2):  # its own answer each time: neither a replay nor "in flight"
        body = _is_problem(await client.post("/probe/v1/held-things", json={"name": "refused", "count": 0},
                                             headers=h), 422)
        assert body["errors"][0]["rule"] == "refused"
    done = await client.post("/probe/v1/held-things", json={"name": "refused", "count": 1}, headers=h)
    assert done.status_code == 201 and "idempotent-replayed" not in done.headers
