"""The catalog service running for real (migrations, database, bus): demo catalogue, public reads, search,
editing with ETags, publication events on the bus, permissions and precise errors."""

from __future__ import annotations

import asyncio
import copy
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import pytest_asyncio

from services.catalog.app import create_app
from services.catalog.demo.items import FOOD_PERMIT, ITEMS
from shared.events import Event, new_event
from shared.testing import eventually, recording_statements, running_app

FOOD_CODE = ITEMS["food-permit"][0]
BIRTH_CODE = ITEMS["birth-certificate"][0]
P = "/catalog/v1"


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    async with running_app(create_app, settings_for("catalog"), tokens=tokens, demo=True) as c:
        yield c


def editor(tokens, dept: str = "LD-SCJGJ") -> dict[str, str]:
    return tokens.headers("ed-" + dept, kind="staff", roles=["catalog_editor"], dept=dept)


def admin(tokens) -> dict[str, str]:
    return tokens.headers("root", kind="staff", roles=["admin"])


def new_code() -> str:
    """A fresh implementation code under 市场监督管理局."""
    return "11441781MB0000001A4" + "01" + uuid.uuid4().hex[:10].upper()


def draft_body(code: str | None = None, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(ITEMS["food-permit"][1])
    body["name"] = "小餐饮经营许可（测试）"
    body.update(changes)
    if code:
        body["code"] = code
    return body


async def wait_event(bus, type_: str, subject: str, match=lambda e: True, timeout: float = 10) -> Event:
    """Read the stream from the start until an event of `type_` about `subject` that `match`es arrives."""
    sub = await bus.js.subscribe(bus.names.subject(type_), ordered_consumer=True)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no {type_} event about {subject}")
            msg = await sub.next_msg(timeout=left)
            ev = Event.from_json(msg.data)
            if ev.subject == subject and match(ev):
                return ev
    finally:
        await sub.unsubscribe()


def problem(r, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return r.json()


def rules_of(r) -> set[tuple[str, str]]:
    return {(e["field"], e["rule"]) for e in problem(r, 422)["errors"]}


async def create_published(client, tokens, code: str, **changes: Any) -> dict[str, Any]:
    r = await client.post(f"{P}/items", json=draft_body(code, **changes), headers=editor(tokens))
    assert r.status_code == 201, r.text
    assert (await client.post(f"{P}/items/{code}/draft/submit", headers=editor(tokens))).status_code == 200
    r = await client.post(f"{P}/items/{code}/publish", headers=editor(tokens))
    assert r.status_code == 200, r.text
    return r.json()


# --- demo catalogue and public reads ---------------------------------------------------------------------


async def test_demo_catalogue_is_loaded_and_published(client):
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = await client.get(f"{P}/items", params={"limit": 7, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        seen += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    demo = {c for c, _ in ITEMS.values()}
    assert demo <= {i["code"] for i in seen}
    assert len({i["department"] for i in seen if i["code"] in demo}) >= 8
    depts = (await client.get(f"{P}/departments")).json()
    assert {"LD-SCJGJ", "LD-WJJ", "LD-XFJ", "LD-STHJJ", "LD-GAJ", "LD-MZJ", "LD-RSJ"} <= {d["code"] for d in depts}


async def test_food_permit_published_event_carries_the_whole_version(client):
    ev = await wait_event(client.app.state.bus, "yimen.catalog.item.published", FOOD_CODE)
    d = ev.data
    assert ev.source == "/yimen/catalog"
    assert d["code"] == FOOD_CODE and d["version"] == 1 and d["kind"] == "01" and d["kind_name"] == "行政许可"
    assert d["department"] == "LD-SCJGJ" and d["case_kind"] == "promised"
    assert d["statutory_limit"]["value"] == 20 and d["statutory_limit"]["unit"] == "working_days"
    assert d["promised_limit"]["value"] == 10 and d["visits_required"] == 0 and d["fully_online"] is True
    assert d["service_points"] == ["*"] and "开办餐饮店" in d["life_events"]
    materials = {m["code"]: m for m in d["materials"]}
    assert materials["business_licence"]["source"] == "certificate"
    assert materials["business_licence"]["certificate_type"] == "11441781MB0000001A001"
    assert materials["legal_rep_id"]["registry"] == "population"
    assert materials["food_safety_commitment"]["commitment_allowed"] is True
    for m in d["materials"]:
        assert {"necessity", "condition", "fields", "form", "originals", "copies", "file_types", "max_bytes",
                "legal_basis"} <= set(m)
    stage = next(s for s in d["process"]["steps"] if s["kind"] == "parallel")
    assert stage["departments"] == ["LD-SCJGJ", "LD-WJJ", "LD-XFJ", "LD-STHJJ"]
    assert stage["lead_department"] == "LD-SCJGJ"
    assert {"limit_days", "on_reject", "deemed_approval_on_timeout", "excluded_from_limit"} <= set(stage)
    assert d["result"]["certificate_type"] == FOOD_PERMIT and d["result"]["name"] == "食品经营许可证"
    assert d["result"]["fields"]["name"] == "form.business_name"
    assert {"form_fields", "special_procedures", "fees", "published_at", "themes", "channels", "audience"} <= set(d)
    assert d["min_assurance_level"] == 2  # the default: matched against the population registry


async def test_an_item_declares_the_assurance_level_needed_to_submit_and_the_demo_has_one_needing_3(client):
    household_move = ITEMS["household-move"][0]
    ev = await wait_event(client.app.state.bus, "yimen.catalog.item.published", household_move)
    assert ev.data["min_assurance_level"] == 3
    item = (await client.get(f"{P}/items/{household_move}")).json()
    assert item["min_assurance_level"] == 3
    summaries = (await client.get(f"{P}/items", params={"limit": 200})).json()["items"]
    assert {i["code"]: i["min_assurance_level"] for i in summaries}[household_move] == 3


async def test_public_reads_need_no_token(client):
    r = await client.get(f"{P}/items/{FOOD_CODE}")
    assert r.status_code == 200 and r.json()["status"] == "published" and r.headers["ETag"]
    assert "updated_by" not in r.json()
    guide = (await client.get(f"{P}/items/{FOOD_CODE}/guide")).json()
    assert guide["accepting_unit"] == "罗定市市场监督管理局" and guide["materials"] and guide["legal_basis"]
    assert guide["time_limit"]["promised"]["value"] == 10 and guide["fees"]["charged"] is False
    assert guide["consultation"] and guide["transit"] and guide["status_query"] and guide["office_hours"]
    svg = await client.get(f"{P}/items/{FOOD_CODE}/flowchart.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(svg.content).tag.endswith("svg")
    mmd = await client.get(f"{P}/items/{FOOD_CODE}/flowchart.mmd")
    assert mmd.text.startswith("flowchart TD") and "subgraph" in mmd.text
    for link in guide["forms"] + guide["samples"]:
        page = await client.get(link["url"])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), link
        assert "经营场所" in page.text and "食品安全自查承诺书" in page.text
    assert "罗定市罗城街道" in (await client.get(guide["samples"][0]["url"])).text
    ld = await client.get(f"{P}/items/{FOOD_CODE}/cpsv")
    assert ld.headers["content-type"].startswith("application/ld+json")
    assert ld.json()["@type"] == "PublicService" and ld.json()["identifier"] == FOOD_CODE
    events = (await client.get(f"{P}/life-events")).json()
    restaurant = next(e for e in events if e["name"] == "开办餐饮店")
    assert FOOD_CODE in {i["code"] for i in restaurant["items"]}
    points = (await client.get(f"{P}/service-points", params={"level": "town"})).json()
    assert {"LD-LC", "LD-SL", "LD-FC", "LD-SD", "LD-LN"} <= {p["code"] for p in points}
    village = (await client.get(f"{P}/service-points/LD-LC-01")).json()
    assert village["parent_code"] == "LD-LC" and FOOD_CODE in village["items"]
    assert (await client.get(f"{P}/intermediary-services")).json()[0]["legal_basis"]
    dataset = (await client.get(f"{P}/open/catalogue.json")).json()
    assert len(dataset["items"]) >= 30 and dataset["departments"]


async def test_list_filters(client):
    async def codes(**params: Any) -> set[str]:
        r = await client.get(f"{P}/items", params={"limit": 200, **params})
        assert r.status_code == 200, r.text
        return {i["code"] for i in r.json()["items"]}

    assert FOOD_CODE in await codes(life_event="开办餐饮店", zero_visit="true", audience="legal_person")
    assert FOOD_CODE not in await codes(zero_visit="false")
    assert FOOD_CODE in await codes(theme="startup", department="LD-SCJGJ", channel="online")
    marriage = ITEMS["marriage"][0]
    assert marriage in await codes(service_point="LD-CENTRE")
    assert marriage not in await codes(service_point="LD-LC-01")
    assert FOOD_CODE not in await codes(department="LD-GAJ")


async def test_negative_list_answers_may_i_open(client):
    r = (await client.get(f"{P}/negative-list", params={"q": "我想开饭店"})).json()
    assert r["verdict"] == "permitted_with_approval" and "食品经营许可" in r["answer"]
    assert {x["item"] for e in r["entries"] for x in e["requirements"]} >= {FOOD_CODE}
    assert (await client.get(f"{P}/negative-list", params={"q": "放贷"})).json()["verdict"] == "prohibited"
    assert (await client.get(f"{P}/negative-list", params={"q": "卖花"})).json()["verdict"] == "not_listed"


@pytest.mark.parametrize("q,code", [("我想开饭店", FOOD_CODE), ("出生证", BIRTH_CODE),
                                    ("我想开饭店", ITEMS["individual-licence"][0]),
                                    ("怎么办身份证", ITEMS["id-card"][0])])
async def test_search_finds_the_right_items(client, q, code):
    r = await client.get(f"{P}/search", params={"q": q})
    assert r.status_code == 200, r.text
    top = [h["item"]["code"] for h in r.json()["items"][:3]]
    assert code in top, (q, r.json()["terms"], top)


async def test_search_ranks_name_hits_first_and_filters(client):
    r = (await client.get(f"{P}/search", params={"q": "出生证"})).json()
    assert r["items"][0]["item"]["code"] == BIRTH_CODE
    r = (await client.get(f"{P}/search", params={"q": "我想开饭店"})).json()
    assert r["items"][0]["item"]["code"] == FOOD_CODE
    assert r["terms"][0] == "饭店" and "餐饮" in r["terms"]
    scores = [h["score"] for h in r["items"]]
    assert scores == sorted(scores, reverse=True)
    r = (await client.get(f"{P}/search", params={"q": "我想开饭店", "department": "LD-XFJ"})).json()
    assert {h["item"]["department"] for h in r["items"]} == {"LD-XFJ"}
    page = (await client.get(f"{P}/search", params={"q": "饭店 餐饮", "limit": 1})).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    nxt = (await client.get(f"{P}/search", params={"q": "饭店 餐饮", "limit": 1, "cursor": page["next_cursor"]})).json()
    assert nxt["items"][0]["item"]["code"] != page["items"][0]["item"]["code"]


async def test_searches_that_found_nothing_are_counted_by_their_words_and_never_keep_a_number(client, tokens):
    from datetime import date, timedelta

    for _ in range(2):
        r = await client.get(f"{P}/search", params={"q": "量子潜水艇 13800138000 ABC"})
        assert r.status_code == 200 and r.json()["items"] == []
    assert (await client.get(f"{P}/search", params={"q": "我想开饭店"})).json()["items"]  # found: not a miss
    today = date.today()
    params = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    sup = tokens.headers("sup", kind="staff", roles=["supervisor"])
    r = await client.get(f"{P}/search/misses", params=params, headers=sup)
    assert r.status_code == 200, r.text
    misses = {m["terms"]: m["searches"] for m in r.json()}
    key = next(k for k in misses if "潜水艇" in k)
    assert misses[key] == 2 and "13800138000" not in r.text and "abc" not in key and "饭店" not in misses
    assert (await client.get(f"{P}/search/misses", params=params)).status_code == 401
    citizen = tokens.headers("p-1", roles=["citizen"])
    assert (await client.get(f"{P}/search/misses", params=params, headers=citizen)).status_code == 403
    bad = await client.get(f"{P}/search/misses", params={"from": "2026-02-01", "to": "2026-01-01"}, headers=sup)
    assert ("query.to", "order") in rules_of(bad)


async def test_bad_input_gets_precise_problems(client):
    assert ("query.q", "string_too_short") in rules_of(await client.get(f"{P}/search", params={"q": ""}))
    assert ("query.q", "no_terms") in rules_of(await client.get(f"{P}/search", params={"q": "我想要"}))
    assert ("query.cursor", "cursor") in rules_of(await client.get(f"{P}/items", params={"cursor": "!!"}))
    # Filters from a fixed set are enums: a value outside it names the field and the rule.
    assert ("query.audience", "literal_error") in rules_of(
        await client.get(f"{P}/items", params={"audience": "alien"}))
    assert ("query.theme", "literal_error") in rules_of(await client.get(f"{P}/items", params={"theme": "ufo"}))
    assert ("query.version", "greater_than_equal") in rules_of(
        await client.get(f"{P}/items/{FOOD_CODE}", params={"version": 0}))
    problem(await client.get(f"{P}/items/{FOOD_CODE}", params={"version": 99}), 404)
    problem(await client.get(f"{P}/items/NOPE"), 404)
    problem(await client.get(f"{P}/service-points/NOPE"), 404)


# --- writes ----------------------------------------------------------------------------------------------


async def test_writes_need_a_token_and_the_right_role(client, tokens):
    body = draft_body(new_code())
    problem(await client.post(f"{P}/items", json=body), 401)
    problem(await client.post(f"{P}/items", json=body, headers=tokens.headers("p1")), 403)
    problem(await client.post(f"{P}/items/{FOOD_CODE}/withdraw"), 401)
    problem(await client.post(f"{P}/items/{FOOD_CODE}/withdraw", headers=tokens.headers("p1")), 403)
    # An editor of 公安局 may neither create nor touch 市场监管局's items.
    other = editor(tokens, "LD-GAJ")
    assert problem(await client.post(f"{P}/items", json=body, headers=other), 403)["type"].endswith("other-department")
    problem(await client.post(f"{P}/items/{FOOD_CODE}/versions", headers=other), 403)
    problem(await client.post(f"{P}/items/{FOOD_CODE}/withdraw", headers=other), 403)
    problem(await client.get(f"{P}/items/{FOOD_CODE}/changes", headers=other), 403)


async def test_save_time_rules_each_give_a_precise_422(client, tokens):
    h = editor(tokens)

    async def broken(mutate) -> set[tuple[str, str]]:
        body = draft_body(new_code())
        mutate(body)
        return rules_of(await client.post(f"{P}/items", json=body, headers=h))

    def promised_over(b): b["promised_limit"]["value"] = 30
    def no_basis(b): b["materials"][0]["legal_basis"] = None
    def applicant_cert(b): b["materials"][0]["source"] = "applicant"
    def bad_intermediary(b): b["intermediary_services"] = [{"code": "ZJ-404", "legal_basis": "无"}]
    def ghost_dept(b): b["process"]["steps"][1]["departments"][1] = "LD-GHOST"
    def lone_parallel(b): b["process"]["steps"][1].update(departments=["LD-SCJGJ"])
    def lead_outside(b): b["process"]["steps"][1].update(lead_department="LD-GAJ")
    # A certificate result must say where its fields come from, or it would be issued empty.
    def unmapped_certificate(b): b["result"]["fields"] = {}
    def mapped_to_nothing(b): b["result"]["fields"]["address"] = "form.no_such_field"
    def choice_without_options(b): b["form_fields"][0].update(type="select", options=[])

    assert ("body.promised_limit.value", "promised_within_statutory") in await broken(promised_over)
    assert ("body.materials.0.legal_basis", "legal_basis_required") in await broken(no_basis)
    assert ("body.materials.0.source", "datashare_supplies") in await broken(applicant_cert)
    assert ("body.intermediary_services.0.code", "not_on_intermediary_list") in await broken(bad_intermediary)
    assert ("body.process.steps.1.departments.1", "unknown_department") in await broken(ghost_dept)
    assert ("body.process.steps.1.departments", "parallel_min_departments") in await broken(lone_parallel)
    assert ("body.process.steps.1.lead_department", "lead_in_stage") in await broken(lead_outside)
    assert ("body.result.fields.name", "certificate_mapping_required") in await broken(unmapped_certificate)
    assert ("body.result.fields.address", "unknown_form_field") in await broken(mapped_to_nothing)
    assert ("body.form_fields.0.options", "options_required") in await broken(choice_without_options)
    bad_code = draft_body("123")
    assert ("body.code", "string_pattern_mismatch") in rules_of(await client.post(f"{P}/items", json=bad_code, headers=h))
    unknown_field = draft_body(new_code(), colour="red")
    assert ("body.colour", "extra_forbidden") in rules_of(await client.post(f"{P}/items", json=unknown_field, headers=h))
    for level, rule in ((0, "greater_than_equal"), (4, "less_than_equal")):
        body = draft_body(new_code(), min_assurance_level=level)
        assert ("body.min_assurance_level", rule) in rules_of(await client.post(f"{P}/items", json=body, headers=h))


async def test_a_certificate_mapping_must_cover_every_field_its_announced_type_requires(client, tokens):
    h, code = editor(tokens), "11441781MB0000001A099"
    await client.app.state.bus.publish(new_event(
        "yimen.datashare.certificate_type.upserted", source="/yimen/datashare", subject=code,
        data={"code": code, "name": "小作坊登记证", "issuer_department": "LD-SCJGJ",
              "fields": ["name", "address", "licence_scope"], "required": ["name", "licence_scope"]}))

    async def known() -> bool:
        from services.catalog.store import repo
        async with client.app.state.db.transaction() as s:
            return code in (await repo.reference(s)).certificate_types

    await eventually(known)
    body = draft_body(new_code())
    body["result"] = {"type": "certificate", "certificate_type": code, "name": "小作坊登记证",
                      "fields": {"name": "form.business_name", "operator": "applicant.name"}}
    assert rules_of(await client.post(f"{P}/items", json=body, headers=h)) >= {
        ("body.result.fields.licence_scope", "certificate_mapping_required"),
        ("body.result.fields.operator", "unknown_certificate_field")}
    body["result"]["fields"] = {"name": "form.business_name", "licence_scope": "form.business_scope"}
    r = await client.post(f"{P}/items", json=body, headers=h)
    assert r.status_code == 201, r.text


async def test_draft_edits_need_if_match_and_a_fresh_etag(client, tokens):
    h, code = editor(tokens), new_code()
    r = await client.post(f"{P}/items", json=draft_body(code), headers={**h, "Idempotency-Key": code})
    assert r.status_code == 201, r.text
    etag = r.headers["ETag"]
    again = await client.post(f"{P}/items", json=draft_body(code), headers={**h, "Idempotency-Key": code})
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    problem(await client.post(f"{P}/items", json=draft_body(code), headers=h), 409)
    update = draft_body(name="小餐饮经营许可（第二稿）")
    problem(await client.put(f"{P}/items/{code}/draft", json=update, headers=h), 428)
    problem(await client.put(f"{P}/items/{code}/draft", json=update, headers={**h, "If-Match": '"stale"'}), 412)
    r = await client.put(f"{P}/items/{code}/draft", json=update, headers={**h, "If-Match": etag})
    assert r.status_code == 200 and r.json()["name"] == "小餐饮经营许可（第二稿）"
    assert r.headers["ETag"] != etag
    problem(await client.put(f"{P}/items/{code}/draft", json=update, headers={**h, "If-Match": etag}), 412)
    got = await client.get(f"{P}/items/{code}/draft", headers=h)
    assert got.headers["ETag"] == r.headers["ETag"]
    changes = (await client.get(f"{P}/items/{code}/changes", headers=h)).json()
    assert [c["action"] for c in changes] == ["create", "update"]
    assert changes[1]["fields"] == ["name"] and changes[1]["actor"] == "staff:ed-LD-SCJGJ"
    # Not published yet: the public sees nothing.
    problem(await client.get(f"{P}/items/{code}"), 404)
    problem(await client.post(f"{P}/items/{code}/publish", headers=h), 409)
    # A reviewer returns it; the editor sees it as draft again, and the ETag moved on.
    submitted = await client.post(f"{P}/items/{code}/draft/submit", headers={**h, "If-Match": got.headers["ETag"]})
    assert submitted.json()["status"] == "in_review"
    returned = await client.post(f"{P}/items/{code}/draft/return", headers=h, json={"note": "平面图要求写错了"})
    assert returned.json()["status"] == "draft"
    problem(await client.post(f"{P}/items/{code}/draft/return", headers=h), 409)
    v1 = await client.get(f"{P}/items/{code}/versions/1", headers=h)
    assert v1.json()["status"] == "draft" and v1.headers["ETag"] == returned.headers["ETag"] != got.headers["ETag"]
    problem(await client.get(f"{P}/items/{code}/versions/9", headers=h), 404)
    log = (await client.get(f"{P}/items/{code}/changes", headers=h)).json()
    assert log[-1]["action"] == "return" and log[-1]["note"] == "平面图要求写错了"


async def test_publish_supersede_and_withdraw_with_events(client, tokens):
    h, code, bus = editor(tokens), new_code(), client.app.state.bus
    v1 = await create_published(client, tokens, code)
    assert v1["status"] == "published" and v1["version"] == 1
    ev = await wait_event(bus, "yimen.catalog.item.published", code)
    assert ev.data["name"] == "小餐饮经营许可（测试）" and ev.data["version"] == 1
    # A published version never changes: there is no draft to edit until a new version starts.
    problem(await client.put(f"{P}/items/{code}/draft", json=draft_body(), headers={**h, "If-Match": "*"}), 404)
    r = await client.post(f"{P}/items/{code}/versions", headers=h)
    assert r.status_code == 201 and r.json()["version"] == 2 and r.json()["status"] == "draft"
    problem(await client.post(f"{P}/items/{code}/versions", headers=h), 409)
    changed = draft_body(name="小餐饮经营许可（2027 版）")
    r = await client.put(f"{P}/items/{code}/draft", json=changed, headers={**h, "If-Match": r.headers["ETag"]})
    assert r.status_code == 200, r.text
    assert (await client.get(f"{P}/items/{code}")).json()["name"] == "小餐饮经营许可（测试）"
    assert (await client.post(f"{P}/items/{code}/draft/submit", headers=h)).json()["status"] == "in_review"
    problem(await client.put(f"{P}/items/{code}/draft", json=changed, headers={**h, "If-Match": "*"}), 409)
    assert (await client.post(f"{P}/items/{code}/publish", headers=admin(tokens))).json()["version"] == 2
    ev2 = await wait_event(bus, "yimen.catalog.item.published", code, lambda e: e.data["version"] == 2)
    assert ev2.data["name"] == "小餐饮经营许可（2027 版）"
    current = (await client.get(f"{P}/items/{code}")).json()
    old = (await client.get(f"{P}/items/{code}", params={"version": 1})).json()
    assert current["version"] == 2 and old["status"] == "superseded" and old["name"] == "小餐饮经营许可（测试）"
    hits = (await client.get(f"{P}/search", params={"q": "2027"})).json()["items"]
    assert code in [x["item"]["code"] for x in hits]
    versions = (await client.get(f"{P}/items/{code}/versions")).json()
    assert [(v["version"], v["status"]) for v in versions] == [(1, "superseded"), (2, "published")]
    assert versions[0]["ended_at"] and "created_by" not in versions[0]
    r = await client.post(f"{P}/items/{code}/withdraw", headers=h, json={"note": "政策调整"})
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    ev3 = await wait_event(bus, "yimen.catalog.item.withdrawn", code)
    assert ev3.data["version"] == 2 and ev3.data["withdrawn_at"]
    problem(await client.get(f"{P}/items/{code}"), 404)
    assert (await client.get(f"{P}/items/{code}", params={"version": 2})).json()["status"] == "withdrawn"
    problem(await client.post(f"{P}/items/{code}/withdraw", headers=h), 409)
    listed = (await client.get(f"{P}/items", params={"limit": 200, "department": "LD-SCJGJ"})).json()["items"]
    assert code not in {i["code"] for i in listed}
    actions = [c["action"] for c in (await client.get(f"{P}/items/{code}/changes", headers=h)).json()]
    assert actions == ["create", "submit", "publish", "new_version", "update", "submit", "supersede", "publish",
                       "withdraw"]


async def test_admin_maintains_departments_and_the_event_flows(client, tokens):
    body = {"name": "罗定市交通运输局", "credit_code": "11441781MB0000012E"}
    problem(await client.put(f"{P}/departments/LD-JTJ", json=body, headers=editor(tokens)), 403)
    r = await client.put(f"{P}/departments/LD-JTJ", json=body, headers=admin(tokens))
    assert r.status_code == 200 and r.json()["name"] == "罗定市交通运输局"
    ev = await wait_event(client.app.state.bus, "yimen.catalog.department.upserted", "LD-JTJ")
    assert ev.data == {"code": "LD-JTJ", "name": "罗定市交通运输局", "credit_code": "11441781MB0000012E", "phone": None,
                       "kind": "government_department"}
    # The check character is checked (GB 32100): one wrong character is a 422 naming the rule.
    assert ("body.credit_code", "credit_code") in rules_of(await client.put(
        f"{P}/departments/LD-JTJ", json={**body, "credit_code": "11441781MB0000012X"}, headers=admin(tokens)))
    assert ("body.credit_code", "string_pattern_mismatch") in rules_of(
        await client.put(f"{P}/departments/LD-JTJ", json={"name": "x", "credit_code": "IOZ"}, headers=admin(tokens)))


async def test_demo_can_be_turned_off(settings_for, tokens):
    async with running_app(create_app, settings_for("catalog"), tokens=tokens, demo=False) as c:
        assert (await c.get(f"{P}/departments")).json() == []
        assert (await c.get(f"{P}/items")).json()["items"] == []


async def test_admin_maintains_the_service_point_tree_and_lists(client, tokens):
    h = admin(tokens)
    point = {"name": "罗城街道新城社区党群服务站", "level": "village", "parent_code": "LD-LC"}
    problem(await client.put(f"{P}/service-points/LD-LC-09", json=point, headers=editor(tokens)), 403)
    r = await client.put(f"{P}/service-points/LD-LC-09", json=point, headers=h)
    assert r.status_code == 200, r.text
    assert "LD-LC-09" in (await client.get(f"{P}/service-points/LD-LC")).json()["children"]
    # Other services learn the point's name (timelines name the unit, not its code); the demo's points too.
    ev = await wait_event(client.app.state.bus, "yimen.catalog.service_point.upserted", "LD-LC-09")
    assert ev.data == {"code": "LD-LC-09", "name": point["name"], "level": "village", "parent_code": "LD-LC"}
    ev = await wait_event(client.app.state.bus, "yimen.catalog.service_point.upserted", "LD-CENTRE")
    assert ev.data["name"] and ev.data["level"] == "city"
    assert ("body.parent_code", "tree_level") in rules_of(
        await client.put(f"{P}/service-points/LD-X", json={**point, "parent_code": "LD-CENTRE"}, headers=h))
    assert ("body.parent_code", "unknown_service_point") in rules_of(
        await client.put(f"{P}/service-points/LD-X", json={**point, "parent_code": "LD-NOPE"}, headers=h))
    assert ("body.parent_code", "parent_required") in rules_of(
        await client.put(f"{P}/service-points/LD-X", json={**point, "parent_code": None}, headers=h))
    # A listed intermediary service can then be required by an item; an unlisted one cannot.
    entry = {"name": "房屋安全鉴定", "department": "LD-ZJJ", "legal_basis": "《城市危险房屋管理规定》第七条"}
    assert ("body.legal_basis", "string_too_short") in rules_of(
        await client.put(f"{P}/intermediary-services/ZJ-100", json={**entry, "legal_basis": ""}, headers=h))
    assert ("body.department", "unknown_department") in rules_of(
        await client.put(f"{P}/intermediary-services/ZJ-100", json={**entry, "department": "LD-NO"}, headers=h))
    assert (await client.put(f"{P}/intermediary-services/ZJ-100", json=entry, headers=h)).status_code == 200
    body = draft_body(new_code(), intermediary_services=[{"code": "ZJ-100"}])
    assert (await client.post(f"{P}/items", json=body, headers=editor(tokens))).status_code == 201
    # The negative list answers with a new entry at once.
    neg = {"category": "permitted", "title": "未获得许可，不得经营网吧", "keywords": ["网吧", "网咖"],
           "requirements": [{"approval": "网络文化经营许可", "department": "LD-ZSJ"}]}
    assert ("body.requirements", "approval_required") in rules_of(
        await client.put(f"{P}/negative-list/NL-300", json={**neg, "requirements": []}, headers=h))
    assert (await client.put(f"{P}/negative-list/NL-300", json=neg, headers=h)).status_code == 200
    answer = (await client.get(f"{P}/negative-list", params={"q": "我想开网吧"})).json()
    assert answer["verdict"] == "permitted_with_approval" and "网络文化经营许可" in answer["answer"]
    r = await client.put(f"{P}/life-events/退休", json={"audience": ["natural_person"]}, headers=h)
    assert r.status_code == 200
    assert "退休" in {e["name"] for e in (await client.get(f"{P}/life-events")).json()}


async def test_demo_loads_only_into_an_empty_database(client):
    from services.catalog.demo.load import demo_hook

    before = (await client.get(f"{P}/departments")).json()
    await demo_hook(True)(client.app.state.ctx)
    assert (await client.get(f"{P}/departments")).json() == before
    r = await client.get(f"{P}/items/{FOOD_CODE}/versions")
    assert [v["version"] for v in r.json()] == [1]


async def test_search_looks_tokens_up_by_equality_never_like(client):
    with recording_statements(client.app.state.db.engine) as log:
        assert (await client.get(f"{P}/search", params={"q": "我想开饭店"})).json()["items"]
    searched = [s for s in log.statements if "ITEM_TOKEN" in s]
    assert searched and all(" LIKE " not in s for s in log.statements)
    assert any("ITEM_TOKEN.TOKEN IN" in s for s in searched)


async def test_a_department_limit_beyond_its_stage_or_outside_it_is_a_precise_422(client, tokens):
    """Issue 17: per-department limits within a parallel stage (明确部门办理时限), checked at save time."""
    h = editor(tokens)
    body = draft_body(new_code())
    stage = body["process"]["steps"][1]
    stage["department_limits"] = {stage["departments"][1]: stage["limit_days"] + 1, "LD-GAJ": 1}
    rules = rules_of(await client.post(f"{P}/items", json=body, headers=h))
    assert rules == {(f"body.process.steps.1.department_limits.{stage['departments'][1]}", "within_step_limit"),
                     ("body.process.steps.1.department_limits.LD-GAJ", "department_in_step")}
    stage["department_limits"] = {stage["departments"][1]: stage["limit_days"] - 1}
    r = await client.post(f"{P}/items", json=body, headers=h)
    assert r.status_code == 201, r.text
    saved = next(s for s in r.json()["process"]["steps"] if s["kind"] == "parallel")
    assert saved["department_limits"] == {stage["departments"][1]: stage["limit_days"] - 1}
