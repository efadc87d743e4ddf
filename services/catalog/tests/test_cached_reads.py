"""Published guides and flowcharts are rendered once per version and process: a strong ETag, Cache-Control,
304 on If-None-Match; a publication or a department's new name shows at once."""

from __future__ import annotations

import pytest_asyncio

from services.catalog.app import create_app
from services.catalog.tests.test_api import P, admin, create_published, draft_body, editor, new_code
from shared.testing import assert_same_answer, fast_and_routed, running_app


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    async with running_app(create_app, settings_for("catalog"), tokens=tokens, demo=True) as c:
        yield c


async def test_the_guide_answers_304_to_the_tag_it_gave_and_nothing_is_rendered_twice(client, tokens):
    code = new_code()
    await create_published(client, tokens, code)
    first = await client.get(f"{P}/items/{code}/guide")
    assert first.status_code == 200 and first.json()["code"] == code and first.json()["version"] == 1
    tag = first.headers["ETag"]
    assert tag.startswith('"') and first.headers["Cache-Control"] == "public, no-cache"
    again = await client.get(f"{P}/items/{code}/guide", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == tag
    assert (await client.get(f"{P}/items/{code}/guide", headers={"If-None-Match": 'W/"other", ' + tag})).status_code == 304
    other = await client.get(f"{P}/items/{code}/guide", headers={"If-None-Match": '"not-this-one"'})
    assert other.status_code == 200 and other.json() == first.json() and other.headers["ETag"] == tag
    cache = client.app.state.response_caches["published"]
    hits = cache.hits
    await client.get(f"{P}/items/{code}/guide")
    assert cache.hits == hits + 1, "served from memory"
    named = await client.get(f"{P}/items/{code}/guide", params={"version": 1})
    assert named.headers["Cache-Control"] == "public, max-age=300" and named.json() == first.json()


async def test_a_new_publication_changes_the_current_guide_at_once(client, tokens):
    code = new_code()
    await create_published(client, tokens, code)
    before = await client.get(f"{P}/items/{code}/guide")
    h = editor(tokens)
    r = await client.post(f"{P}/items/{code}/versions", headers=h)
    r = await client.put(f"{P}/items/{code}/draft", json=draft_body(name="小餐饮经营许可（新版）"),
                         headers={**h, "If-Match": r.headers["ETag"]})
    assert r.status_code == 200, r.text
    assert (await client.post(f"{P}/items/{code}/draft/submit", headers=h)).status_code == 200
    assert (await client.post(f"{P}/items/{code}/publish", headers=admin(tokens))).json()["version"] == 2
    after = await client.get(f"{P}/items/{code}/guide", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200, "the old tag no longer matches"
    assert after.json()["version"] == 2 and after.json()["name"] == "小餐饮经营许可（新版）"
    assert after.headers["ETag"] != before.headers["ETag"]
    old = await client.get(f"{P}/items/{code}/guide", params={"version": 1})
    assert old.json()["version"] == 1 and old.json()["status"] == "superseded"


async def test_a_department_renamed_shows_in_the_cached_guide_and_flowchart_at_once(client, tokens):
    code = new_code()
    await create_published(client, tokens, code)
    guide = (await client.get(f"{P}/items/{code}/guide")).json()
    dept = guide["department"]["code"]
    svg = await client.get(f"{P}/items/{code}/flowchart.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert (await client.get(f"{P}/items/{code}/flowchart.svg",
                             headers={"If-None-Match": svg.headers["ETag"]})).status_code == 304
    current = (await client.get(f"{P}/departments/{dept}")).json()
    renamed = current["name"] + "（更名）"
    body = {k: current[k] for k in ("credit_code", "phone") if current.get(k)}
    r = await client.put(f"{P}/departments/{dept}", json={**body, "name": renamed}, headers=admin(tokens))
    assert r.status_code == 200, r.text
    try:
        assert (await client.get(f"{P}/items/{code}/guide")).json()["department"]["name"] == renamed
        fresh = await client.get(f"{P}/items/{code}/flowchart.svg", headers={"If-None-Match": svg.headers["ETag"]})
        assert fresh.status_code == 200 and renamed in fresh.text
    finally:
        await client.put(f"{P}/departments/{dept}", json={**body, "name": current["name"]}, headers=admin(tokens))


async def test_an_unknown_item_is_still_a_404_problem_and_not_cached(client):
    r = await client.get(f"{P}/items/11441781MB0000001A40199999999/guide")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_the_cached_reads_without_the_router_answer_as_the_routes_and_leave_them_the_rest(client, tokens):
    """The guide and the flowcharts in the cache are answered by their fast paths (api/public.py,
    shared/fastpath.py) header for header as their routes answer them, 200 and 304; a miss, a named version, any
    other query or an over-long code is the route's."""
    code = new_code()
    await create_published(client, tokens, code)
    fast = client.app.state.fast_paths
    for kind in ("guide", "flowchart.svg", "flowchart.mmd"):
        url = f"{P}/items/{code}/{kind}"
        before = fast.answered
        first = await client.get(url)  # rendered by the route, and cached
        assert first.status_code == 200 and fast.answered == before, "a miss is the route's"
        quick, routed = await fast_and_routed(client, url)
        assert quick.content == first.content and quick.headers["ETag"] == first.headers["ETag"]
        assert_same_answer(quick, routed)
        quick, routed = await fast_and_routed(client, url, headers={"If-None-Match": first.headers["ETag"]})
        assert quick.status_code == 304
        assert_same_answer(quick, routed)
    before = fast.answered
    named = await client.get(f"{P}/items/{code}/guide", params={"version": 1})
    assert named.status_code == 200 and named.headers["Cache-Control"] == "public, max-age=300"
    assert (await client.get(f"{P}/items/{code}/guide", params={"version": "x"})).status_code == 422
    assert (await client.get(f"{P}/items/{code}/guide", params={"lang": "en"})).status_code == 200
    long = await client.get(f"{P}/items/{'1' * 41}/guide")
    assert long.status_code == 422 and long.headers["content-type"] == "application/problem+json"
    assert fast.answered == before, "each left to the route"
