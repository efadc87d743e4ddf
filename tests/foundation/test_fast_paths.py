"""Hot public GETs answered without FastAPI's router (shared/fastpath.py): the same answer as the route, header
for header, with the request id, the trace, the metrics label and the time budget of every request; whatever the
fast path declines or fails on is the route's to answer. A fast POST (`FastPost`) gets the whole body, and the
route gets it again, whole, when the fast answer declines."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import pytest
import pytest_asyncio
from fastapi import APIRouter, FastAPI, Path
from starlette.requests import Request
from starlette.responses import Response

from shared.fastpath import FastGet, FastPaths, FastPost
from shared.service import ServiceSpec, create_service_app
from shared.testing import assert_same_answer, fast_and_routed

from .conftest import messaging, metadata, running_probe

router = APIRouter()
#: How the fast answer of `/greetings/{name}` behaves for a name: decline it, fail, or take its time.
DECLINED, FAILING, SLOW = "decline", "fails", "slow"


@router.get("/greetings/{name}")
async def greeting(name: Annotated[str, Path(max_length=8)]) -> Response:
    return _greeting(name)


def _greeting(name: str) -> Response:
    return Response(f'{{"hello":"{name}"}}', media_type="application/json",
                    headers={"ETag": f'"{name}"', "Cache-Control": "no-cache"})


async def fast_greeting(_request: Request, params: dict[str, str]) -> Response | None:
    name = params["name"]
    if len(name) > 8 or name == DECLINED:
        return None
    if name == FAILING:
        raise RuntimeError("the fast path failed")
    if name == SLOW:
        await asyncio.sleep(30)
    return _greeting(name)


@router.post("/greetings/{name}")
async def post_greeting(name: str) -> dict[str, str]:
    return {"posted": name}


@router.post("/notes/{name}", status_code=201)
async def post_note(name: Annotated[str, Path(max_length=8)], request: Request) -> Response:
    return _note(name, await request.body())


def _note(name: str, body: bytes) -> Response:
    return Response(json.dumps({"note": name, "body": body.decode("latin-1")}), status_code=201,
                    media_type="application/json")


async def fast_note(request: Request, params: dict[str, str]) -> Response | None:
    name = params["name"]
    body = await request.body()  # read before declining: the route must still get all of it
    if len(name) > 8 or name == DECLINED:
        return None
    if name == FAILING:
        raise RuntimeError("the fast path failed")
    return _note(name, body)


SPEC = ServiceSpec(name="fastprobe", title="probe", description="test", metadata=metadata, messaging=messaging,
                   routers=[router], fast=[FastGet(router, greeting, fast_greeting), FastPost(router, post_note, fast_note)])


def create_app(settings, **kw) -> FastAPI:
    return create_service_app(SPEC, settings, **kw)


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    async with running_probe(create_app, settings_for("fastprobe", request_budget_seconds=1.0), tokens) as c:
        yield c


async def test_a_fast_answer_is_the_routes_header_for_header(client):
    for path, headers in (("/fastprobe/v1/greetings/ada", {}), ("/fastprobe/healthz", {}),
                          ("/fastprobe/v1/greetings/ada", {"If-None-Match": '"ada"', "Accept-Language": "en"})):
        quick, routed = await fast_and_routed(client, path, headers=headers)
        assert quick.status_code == 200
        assert_same_answer(quick, routed)
    assert (await client.get("/fastprobe/healthz")).json() == {"status": "ok", "service": "fastprobe"}


async def test_the_fast_path_keeps_the_request_id_the_trace_and_the_route_label(client):
    trace = "0af7651916cd43dd8448eb211c80319c"
    r = await client.get("/fastprobe/v1/greetings/grace", headers={
        "X-Request-ID": "req-fast-1", "traceparent": f"00-{trace}-b7ad6b7169203331-01"})
    assert r.headers["x-request-id"] == "req-fast-1"
    assert r.headers["traceparent"].startswith(f"00-{trace}-") and not r.headers["traceparent"].endswith("b7ad6b7169203331-01")
    await fast_and_routed(client, "/fastprobe/v1/greetings/grace")
    text = (await client.get("/fastprobe/metrics")).text
    # One series for both ways in: the route's template, never the name in the path.
    assert 'route="/greetings/{name}",service="fastprobe",status="200"' in text and "grace" not in text


async def test_what_the_fast_path_declines_or_fails_on_is_the_routes_answer(client):
    fast: FastPaths = client.app.state.fast_paths
    before = fast.answered
    for name in (DECLINED, FAILING):
        r = await client.get(f"/fastprobe/v1/greetings/{name}")
        assert r.status_code == 200 and r.json() == {"hello": name}
    too_long = await client.get("/fastprobe/v1/greetings/much-too-long-a-name")
    assert too_long.status_code == 422 and too_long.headers["content-type"] == "application/problem+json"
    assert too_long.json()["errors"][0]["field"] == "path.name"
    # Other methods, other paths and a query the answer does not read are not its to judge either.
    assert (await client.post("/fastprobe/v1/greetings/ada")).json() == {"posted": "ada"}
    assert (await client.get("/fastprobe/v1/greetings/ada/more")).status_code == 404
    assert fast.answered == before


async def test_a_fast_post_gets_the_whole_body_and_the_route_gets_it_again_when_declined(client):
    fast: FastPaths = client.app.state.fast_paths
    body = b'{"specversion":"1.0","data":"' + b"x" * 70_000 + b'"}'
    for ctype in ("application/cloudevents+json", "application/json", "application/octet-stream"):
        before = fast.answered
        quick = await client.post("/fastprobe/v1/notes/ada", content=body, headers={"content-type": ctype})
        assert fast.answered == before + 1 and quick.status_code == 201
        fast.enabled = False
        try:
            routed = await client.post("/fastprobe/v1/notes/ada", content=body, headers={"content-type": ctype})
        finally:
            fast.enabled = True
        assert_same_answer(quick, routed)
        assert quick.json()["body"] == body.decode()
    before = fast.answered
    for name in (DECLINED, FAILING):
        r = await client.post(f"/fastprobe/v1/notes/{name}", content=body,
                              headers={"content-type": "application/cloudevents+json"})
        assert r.status_code == 201 and r.json() == {"note": name, "body": body.decode()}
    assert (await client.post("/fastprobe/v1/notes/much-too-long-a-name", content=body)).status_code == 422
    # The body limit and the NUL check hold before any answer, fast or routed.
    huge = await client.post("/fastprobe/v1/notes/ada", content=b"x" * 1_048_577,
                             headers={"content-type": "application/cloudevents+json"})
    assert huge.status_code == 413 and huge.headers["content-type"] == "application/problem+json"
    nul = await client.post("/fastprobe/v1/notes/ada", content=b'{"a":"\\u0000"}',
                            headers={"content-type": "application/json"})
    assert nul.status_code == 422 and nul.json()["errors"][0]["rule"] == "nul_character"
    assert fast.answered == before


async def test_the_time_budget_holds_on_the_fast_path(client):
    fast: FastPaths = client.app.state.fast_paths
    before = fast.answered
    r = await client.get(f"/fastprobe/v1/greetings/{SLOW}")
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/time-budget-exceeded") and int(r.headers["retry-after"]) >= 1
    assert r.headers["x-request-id"] and fast.answered == before, "cancelled, not handed to the router"


def test_a_fast_answer_stands_in_for_a_get_route_of_its_router():
    other = APIRouter()

    @other.get("/elsewhere")
    async def elsewhere() -> dict[str, str]:
        return {}

    app = FastAPI()
    app.include_router(router, prefix="/p/v1")
    with pytest.raises(ValueError, match="no GET route"):
        FastPaths(app, [FastGet(router, post_greeting, fast_greeting)])
    with pytest.raises(ValueError, match="no GET route"):
        FastPaths(app, [FastGet(router, elsewhere, fast_greeting)])
    with pytest.raises(ValueError, match="no POST route"):
        FastPaths(app, [FastPost(router, greeting, fast_greeting)])
    assert FastPaths(app, [FastGet(router, greeting, fast_greeting)]).routes[0].regex.pattern == \
        "^/p/v1/greetings/(?P<name>[^/]+)$"
