"""Unit tests of the catalogue's rules, life cycle, search terms and flowcharts (no server, no database)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from services.catalog.demo.items import FOOD_PERMIT, ITEMS
from services.catalog.demo.reference import DEPARTMENTS, INTERMEDIARY_SERVICES, LIFE_EVENTS, SERVICE_POINTS
from services.catalog.domain import flowchart, lifecycle
from services.catalog.domain.model import ItemContent
from services.catalog.domain.rules import Reference, check_item
from services.catalog.domain.search import index_terms, query_terms

REF = Reference(
    departments=frozenset(d["code"] for d in DEPARTMENTS),
    service_points=frozenset(p["code"] for p in SERVICE_POINTS),
    life_events=frozenset(e["name"] for e in LIFE_EVENTS),
    intermediaries={s["code"]: s["legal_basis"] for s in INTERMEDIARY_SERVICES},
)
NAMES = {d["code"]: d["name"] for d in DEPARTMENTS}


def food_permit() -> dict[str, Any]:
    import copy

    return copy.deepcopy(ITEMS["food-permit"][1])


def rules_broken(content: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e.field, e.rule) for e in check_item(ItemContent.model_validate(content), REF)}


def test_every_demo_item_keeps_every_rule():
    for slug, (code, content) in ITEMS.items():
        assert rules_broken(content) == set(), slug
        assert len(code) == 31, slug


def test_demo_covers_thirty_items_over_eight_departments():
    assert len(ITEMS) >= 30
    assert len({c["department"] for _, c in ITEMS.values()}) >= 8


def test_food_permit_is_as_the_contract_describes():
    c = ItemContent.model_validate(food_permit())
    stage = next(s for s in c.process.steps if s.kind == "parallel")
    assert stage.departments == ["LD-SCJGJ", "LD-WJJ", "LD-XFJ", "LD-STHJJ"]
    assert stage.lead_department == "LD-SCJGJ"
    by_code = {m.code: m for m in c.materials}
    assert by_code["business_licence"].source == "certificate"
    assert by_code["business_licence"].certificate_type == "11441781MB0000001A001"
    assert by_code["legal_rep_id"].source == "registry" and by_code["legal_rep_id"].registry == "population"
    assert by_code["floor_plan"].source == "applicant"
    assert by_code["food_safety_commitment"].commitment_allowed
    assert c.result.certificate_type == FOOD_PERMIT
    assert c.fully_online and c.visits_required == 0
    assert c.promised_limit.value == 10 and c.statutory_limit.value == 20
    assert "开办餐饮店" in c.life_events


def test_promised_limit_may_not_exceed_statutory():
    c = food_permit()
    c["promised_limit"]["value"] = 25
    assert ("promised_limit.value", "promised_within_statutory") in rules_broken(c)


def test_certificate_material_must_cite_legal_basis():
    c = food_permit()
    c["materials"][0]["legal_basis"] = None
    assert ("materials.0.legal_basis", "legal_basis_required") in rules_broken(c)


def test_material_datashare_supplies_may_not_be_asked_of_the_applicant():
    c = food_permit()
    c["materials"][0]["source"] = "applicant"
    assert ("materials.0.source", "datashare_supplies") in rules_broken(c)


def test_certificate_source_needs_a_certificate_type():
    c = food_permit()
    c["materials"][0]["certificate_type"] = None
    assert ("materials.0.certificate_type", "certificate_type_required") in rules_broken(c)


def test_intermediary_service_must_be_on_the_list():
    c = food_permit()
    c["intermediary_services"] = [{"code": "ZJ-999", "legal_basis": "某办法"}]
    assert ("intermediary_services.0.code", "not_on_intermediary_list") in rules_broken(c)
    c["intermediary_services"] = [{"code": "ZJ-001"}]
    assert rules_broken(c) == set()


def test_every_department_in_the_process_must_exist():
    c = food_permit()
    c["process"]["steps"][1]["departments"].append("LD-NOPE")
    assert ("process.steps.1.departments.4", "unknown_department") in rules_broken(c)


def test_parallel_stage_needs_two_departments_and_a_lead_among_them():
    c = food_permit()
    c["process"]["steps"][1]["departments"] = ["LD-SCJGJ"]
    assert ("process.steps.1.departments", "parallel_min_departments") in rules_broken(c)
    c = food_permit()
    c["process"]["steps"][1]["lead_department"] = "LD-GAJ"
    assert ("process.steps.1.lead_department", "lead_in_stage") in rules_broken(c)
    c["process"]["steps"][1]["lead_department"] = None
    assert ("process.steps.1.lead_department", "lead_required") in rules_broken(c)


def test_step_limits_fit_in_the_promised_limit_and_fully_online_means_zero_visits():
    c = food_permit()
    c["process"]["steps"][1]["limit_days"] = 9
    assert ("process.steps", "steps_within_promised") in rules_broken(c)
    c = food_permit()
    c["visits_required"] = 1
    assert ("visits_required", "fully_online_zero_visits") in rules_broken(c)


def test_unknown_service_point_life_event_and_theme_are_named():
    c = food_permit()
    c["service_points"] = ["LD-CENTRE", "LD-XX"]
    c["life_events"] = ["开飞机"]
    c["themes"] = ["startup", "space"]
    broken = rules_broken(c)
    assert ("service_points.1", "unknown_service_point") in broken
    assert ("life_events.0", "unknown_life_event") in broken
    assert ("themes.1", "unknown_theme") in broken


def test_domain_imports_no_framework_database_or_bus():
    import ast
    from pathlib import Path

    domain = Path(__file__).resolve().parent.parent / "domain"
    for path in domain.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in {"fastapi", "sqlalchemy", "nats", "httpx", "starlette"}, (path, name)
                assert not name.startswith(("services.catalog.store", "services.catalog.api", "shared.db",
                                            "shared.messaging")), (path, name)


def test_life_cycle_moves_only_along_its_arrows():
    assert lifecycle.next_status("draft", "submit") == "in_review"
    assert lifecycle.next_status("in_review", "publish") == "published"
    assert lifecycle.next_status("published", "supersede") == "superseded"
    assert lifecycle.next_status("published", "withdraw") == "withdrawn"
    for status, action in [("draft", "publish"), ("published", "submit"), ("withdrawn", "publish"),
                           ("superseded", "withdraw")]:
        with pytest.raises(lifecycle.IllegalTransition):
            lifecycle.next_status(status, action)


def test_change_log_names_changed_fields():
    assert lifecycle.changed_fields({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == ["b", "c"]


@pytest.mark.parametrize("query,expected", [("我想开饭店", "饭店"), ("出生证", "出生"), ("怎么办身份证", "身份证")])
def test_query_is_segmented_into_meaningful_terms(query, expected):
    terms = query_terms(query)
    assert terms[expected] == 2
    assert not {"我", "想", "想开", "怎么办", "开"} & set(terms)


def test_query_adds_synonyms_with_a_lower_boost():
    terms = query_terms("我想开饭店")
    assert terms["饭店"] == 2 and terms["餐饮"] == 1 and terms["餐馆"] == 1
    assert query_terms("我想要") == {}


def test_food_permit_index_holds_restaurant_words():
    terms = {t for t, _ in index_terms(ItemContent.model_validate(food_permit()))}
    assert {"饭店", "餐馆", "食品"} <= terms


def test_flowchart_svg_is_xml_with_parallel_lanes_side_by_side():
    svg = flowchart.svg("X", 1, ItemContent.model_validate(food_permit()), NAMES)
    root = ET.fromstring(svg.encode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    lanes = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "lane"]
    assert [g.get("data-department") for g in lanes] == ["LD-SCJGJ", "LD-WJJ", "LD-XFJ", "LD-STHJJ"]
    ys = {g.find("{http://www.w3.org/2000/svg}rect").get("y") for g in lanes}
    xs = [int(g.find("{http://www.w3.org/2000/svg}rect").get("x")) for g in lanes]
    assert len(ys) == 1 and xs == sorted(xs) and len(set(xs)) == 4


def test_mermaid_draws_the_parallel_stage_as_a_subgraph():
    text = flowchart.mermaid(ItemContent.model_validate(food_permit()), NAMES)
    assert text.startswith("flowchart TD")
    assert "subgraph joint_review" in text and "（牵头）" in text
    assert "joint_review_fork --> joint_review_3" in text


def test_flowchart_notes_special_procedures_outside_the_limit():
    item = ItemContent.model_validate(ITEMS["eia-approval"][1])
    svg = flowchart.svg("X", 1, item, NAMES)
    root = ET.fromstring(svg.encode())
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any("特别程序" in t and "专家评审" in t for t in texts)
    longest = max(len(t) for t in texts)
    assert float(root.get("width")) >= longest * 11
    assert "review -.- special_1" in flowchart.mermaid(item, NAMES)
