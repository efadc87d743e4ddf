"""The service-point tree means something (a town's offer reaches its villages unless excluded; collection points
resolve the same way) and fees carry their amount, legal basis and exemptions, in the guide and in the
`catalog.item.published` event, through versioned publication."""

from __future__ import annotations

import pytest_asyncio

from services.catalog.app import create_app
from services.catalog.demo.items import ITEMS
from services.catalog.demo.reference import SERVICE_POINTS
from services.catalog.domain.rules import offered_points
from services.catalog.tests.test_api import (
    P,
    create_published,
    draft_body,
    editor,
    new_code,
    rules_of,
    wait_event,
)
from shared.testing import running_app


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    async with running_app(create_app, settings_for("catalog"), tokens=tokens, demo=True) as c:
        yield c


TREE = [(p["code"], p["parent_code"]) for p in SERVICE_POINTS]


def test_a_town_passes_its_offer_to_its_villages_unless_excluded_and_the_centre_passes_nothing():
    assert offered_points(["LD-LC"], [], TREE) == ["LD-LC", "LD-LC-01", "LD-LC-02", "LD-LC-03"]
    assert offered_points(["LD-LC"], ["LD-LC-02"], TREE) == ["LD-LC", "LD-LC-01", "LD-LC-03"]
    assert offered_points(["LD-CENTRE"], [], TREE) == ["LD-CENTRE"]
    everything = offered_points(["*"], ["LD-SL"], TREE)
    assert "LD-SL" not in everything and "LD-SL-01" not in everything and "LD-LC-01" in everything
    assert offered_points(["LD-NOWHERE"], [], TREE) == []


async def test_the_published_event_and_the_guide_carry_resolved_points(client, tokens):
    code = new_code()
    await create_published(client, tokens, code, service_points=["LD-CENTRE", "LD-LC"], excluded_points=["LD-LC-02"],
                           collection_points=["LD-CENTRE", "LD-SL"])
    ev = await wait_event(client.app.state.bus, "yimen.catalog.item.published", code)
    assert [p["code"] for p in ev.data["offered_at"]] == ["LD-CENTRE", "LD-LC", "LD-LC-01", "LD-LC-03"]
    assert [p["code"] for p in ev.data["collect_at"]] == ["LD-CENTRE", "LD-SL", "LD-SL-01", "LD-SL-02"]
    assert ev.data["offered_at"][1] == {"code": "LD-LC", "name": "罗城街道党群服务中心（便民服务中心）", "level": "town"}
    guide = (await client.get(f"{P}/items/{code}/guide")).json()
    assert guide["offered_at"] == ["LD-CENTRE", "LD-LC", "LD-LC-01", "LD-LC-03"]
    assert guide["excluded_points"] == ["LD-LC-02"] and guide["collect_at"][:2] == ["LD-CENTRE", "LD-SL"]
    # A village under the town finds the item; the excluded village does not.
    at = {p: {i["code"] for i in (await client.get(f"{P}/items", params={"service_point": p, "limit": 200})).json()["items"]}
          for p in ("LD-LC-01", "LD-LC-02")}
    assert code in at["LD-LC-01"] and code not in at["LD-LC-02"]


async def test_the_guide_shows_each_fee_with_amount_basis_and_exemptions(client):
    code = ITEMS["id-card"][0]
    fees = (await client.get(f"{P}/items/{code}/guide")).json()["fees"]
    assert fees["charged"] is True
    fee = fees["items"][0]
    assert fee["amount"] == "20.00" and fee["basis"] == "发改价格〔2003〕2322号"
    first = next(e for e in fee["exemptions"] if e["code"] == "first_application")
    assert first["name"] == "首次申领居民身份证" and "居民身份证法" in first["basis"]
    ev = await wait_event(client.app.state.bus, "yimen.catalog.item.published", code)
    assert ev.data["fees"]["items"][0]["exemptions"][0]["code"] == "first_application"


async def test_a_charged_fee_needs_an_amount_and_points_must_exist(client, tokens):
    body = draft_body(new_code(), excluded_points=["LD-NOWHERE"], collection_points=["LD-ELSEWHERE"],
                      fees={"charged": True, "items": [{"name": "工本费", "standard": "10 元", "basis": "某文件"}]})
    r = await client.post(f"{P}/items", json=body, headers=editor(tokens))
    assert {("body.excluded_points.0", "unknown_service_point"), ("body.collection_points.0", "unknown_service_point"),
            ("body.fees.items.0.amount", "fee_amount_required")} <= rules_of(r)
