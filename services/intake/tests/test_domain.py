"""The pure rules: completeness (一次性告知), uploads, lifecycle, receipts, applicants, reuse."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from services.intake.domain import completeness, receipts, uploads
from services.intake.domain.applicants import NotAnApplicant, applicant_of, delegation_refusal, may_view
from services.intake.domain.completeness import Provided
from services.intake.domain.lifecycle import Action, IllegalTransition, ensure, may, sources
from services.intake.domain.reuse import Earlier, match_materials, prefill_form
from services.intake.tests.factories import BUSINESS_LICENCE, PDF, food_permit_item
from shared.auth import Principal


def test_the_notice_lists_every_missing_field_and_material_at_once():
    item = food_permit_item()
    found = completeness.check(item, {"staff_count": "many"}, [], {"M01": "no_match", "M02": "unavailable"})
    by_field = {f.field: f.rule for f in found}
    assert by_field == {
        "form.shop_name": "required", "form.address": "required", "form.staff_count": "type",
        "materials.M01": "not_found_in_datashare", "materials.M02": "datashare_unavailable",
        "materials.M03": "required", "materials.M04": "required",
    }


def test_optional_and_may_follow_materials_are_not_needed_at_submission():
    item = food_permit_item()
    item["materials"][2]["necessity"] = "may_follow"
    provided = [Provided("M01", "fetched"), Provided("M02", "fetched"), Provided("M04", "commitment")]
    assert completeness.check(item, {"shop_name": "a", "address": "b"}, provided) == []


def test_a_commitment_where_the_item_allows_none_is_a_finding():
    item = food_permit_item()
    found = completeness.check_materials(item, [Provided("M03", "commitment")])
    assert ("materials.M03", "commitment_not_allowed") in {(f.field, f.rule) for f in found}


def test_materials_to_fetch_are_those_datashare_holds_and_not_yet_given():
    item = food_permit_item()
    assert [m["code"] for m in completeness.to_fetch(item, [])] == ["M01", "M02"]
    assert [m["code"] for m in completeness.to_fetch(item, [Provided("M01", "upload")])] == ["M02"]


def test_channel_and_point_outside_the_item_are_both_reported():
    found = completeness.check_channel_and_point(food_permit_item(), channel="post", service_point="LD-FC")
    assert [f.rule for f in found] == ["channel_not_offered", "service_point_not_offered"]
    assert completeness.check_channel_and_point(food_permit_item(service_points=["*"]), channel="online",
                                                service_point="LD-FC") == []


def test_uploads_are_checked_by_extension_content_size_and_hash():
    m = food_permit_item()["materials"][2]  # pdf/png, 1000 bytes
    assert uploads.check_type(m, "plan.docx", b"PK") .rule == "file_type"
    assert uploads.check_type(m, "plan.pdf", b"\x89PNG") .rule == "file_type"
    assert uploads.check_type(m, "plan.PDF", PDF[:16]) is None
    assert uploads.check_size(m, 1001).rule == "max_bytes"
    assert uploads.check_size(m, 0).rule == "empty"
    assert uploads.check_hash("ab" * 32, "cd" * 32).rule == "sha256_mismatch"
    assert uploads.check_hash(None, "cd" * 32) is None


def test_lifecycle_allows_withdrawal_before_decision_only():
    assert may("submitted", Action.WITHDRAW) and may("awaiting_correction", Action.WITHDRAW)
    with pytest.raises(IllegalTransition):
        ensure("decided", Action.WITHDRAW)
    with pytest.raises(IllegalTransition):
        ensure("accepted", Action.SUBMIT)
    # A clerk hands over only a result waiting at the window; electronic delivery also follows the decision.
    assert sources(Action.HAND_OVER) == ["awaiting_pickup"]
    assert sources(Action.DELIVER) == ["awaiting_pickup", "decided"]
    assert sources(Action.SUBMIT) == ["draft", "returned"]


def test_receipt_number_is_item_code_date_in_shanghai_and_serial():
    at = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)  # already the 27th in Shanghai
    prefix = receipts.receipt_prefix("CODE", at)
    assert receipts.receipt_number(prefix, 17) == "CODE202611270017"
    assert len(receipts.verification_code()) == 6
    with pytest.raises(ValueError):
        receipts.receipt_number(prefix, 10000)


def _p(**kw):
    claims = {"sub": "u1", "kind": "person", "roles": ["citizen"], "hid": "445381199001011234", **kw}
    return Principal.from_claims(claims)


def test_the_applicant_is_the_person_the_organisation_or_the_delegating_principal():
    assert applicant_of(_p()).id == "u1"
    org = applicant_of(_p(org="91441781MA51234567"))
    assert (org.kind, org.id, org.agent_id) == ("organisation", "91441781MA51234567", "u1")
    act = applicant_of(_p(act={"sub": "u2", "kind": "person", "hid": "445381198001011230"}))
    assert (act.id, act.holder_id, act.agent_id) == ("u2", "445381198001011230", "u1")
    assert applicant_of(_p(org="X"), on_behalf_of="u1").kind == "person"
    with pytest.raises(NotAnApplicant):
        applicant_of(_p(), on_behalf_of="someone-else")
    with pytest.raises(NotAnApplicant):
        applicant_of(Principal.from_claims({"sub": "s", "kind": "staff", "roles": ["window_clerk"]}))


def test_staff_see_their_point_or_department_only():
    clerk = Principal.from_claims({"sub": "s", "kind": "staff", "roles": ["window_clerk"], "point": "LD-LC"})
    assert may_view(clerk, applicant_id="u1", service_point="LD-LC", department="LD-WJJ")
    assert not may_view(clerk, applicant_id="u1", service_point="LD-CENTRE", department="LD-WJJ")
    assert not may_view(_p(sub="u9"), applicant_id="u1", service_point="LD-LC", department="X")


def test_a_known_delegation_holds_the_agent_to_its_items_and_term():
    now = datetime(2026, 11, 26, tzinfo=UTC)
    later, earlier = datetime(2027, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    base = {"agent_id": "a", "principal_id": "p", "item_code": "I1", "now": now, "known": True,
            "delegation_agent": "a", "delegation_principal": "p", "valid_until": later}
    assert delegation_refusal(**{**base, "known": False, "delegation_agent": None}) is None
    assert delegation_refusal(**base) is None
    assert delegation_refusal(**{**base, "items": ["I1", "I2"]}) is None
    assert "cover" in delegation_refusal(**{**base, "items": ["I2"]})
    assert "revoked" in delegation_refusal(**{**base, "revoked_at": earlier})
    assert "expired" in delegation_refusal(**{**base, "valid_until": earlier})
    assert "name" in delegation_refusal(**{**base, "delegation_agent": "b"})


def test_prefill_matches_by_certificate_type_then_code_then_name_and_skips_commitments():
    earlier_item = food_permit_item()
    earlier_item["materials"][0]["code"] = "LIC"
    new_item = food_permit_item()
    atts = [SimpleNamespace(material_code="LIC", kind="fetched", reference="C-1", id=1),
            SimpleNamespace(material_code="M03", kind="upload", reference=None, id=2),
            SimpleNamespace(material_code="M04", kind="commitment", reference=None, id=3)]
    e = Earlier("a1", {"shop_name": "老店", "address": ""}, earlier_item, atts)
    got = {m["material_code"]: (m["matched_by"], m["attachment_id"]) for m in match_materials(new_item, [e])}
    assert got == {"M01": ("certificate_type", 1), "M03": ("code", 2)}
    assert prefill_form(new_item, [e]) == {"shop_name": "老店"}
    assert new_item["materials"][0]["certificate_type"] == BUSINESS_LICENCE


def test_wrong_status_codes_are_limited_per_address_for_an_hour_and_only_failures_count():
    from shared.ratelimit import RateLimiter

    limiter = RateLimiter(receipts.MAX_WRONG_CODES, receipts.QUERY_WINDOW.total_seconds())
    for i in range(receipts.MAX_WRONG_CODES):
        assert limiter.wait("203.0.113.7", now=60.0 * i) is None
        limiter.count("203.0.113.7", now=60.0 * i)
    assert limiter.wait("203.0.113.7", now=600.0) == 3000.0
    assert limiter.wait("198.51.100.20", now=600.0) is None  # another address is not touched
    assert limiter.wait("203.0.113.7", now=3601.0) is None  # the oldest failure has aged out
