"""Walk-in filing (窗口代录, #15) across the running platform: a clerk at the city centre files, completes, gets
consent for, submits and accepts an immediate item with a fee for a person with no account; the person claims the
account with the code on the receipt slip, sees the case, pays on the payment platform (the simulator), and the
result is collected at a town point; the timeline names who held the case and how to reach them (谁在办)."""

from __future__ import annotations

import jwt
import pytest

from deploy.demo import HappyPath, walk_in_at_the_counter

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def path(platform):
    p = HappyPath(platform.base, platform.admin["username"], platform.admin["password"], say=lambda _m: None,
                  seed=20163)
    p.admin_and_catalogue()
    return p


@pytest.fixture(scope="module")
def walk(path):
    return walk_in_at_the_counter(path)


def test_identity_opened_a_level_3_account_without_a_password_and_the_clerk_filed_at_their_own_point(walk):
    filed = walk["filed"]
    assert filed["person"]["account_created"] is True and filed["person"]["assurance_level"] == 3
    app = filed["application"]
    assert app["applicant"]["id"] == filed["person"]["id"] and app["channel"] == "window"
    assert app["service_point"] == "LD-CENTRE" and app["walk_in"]["clerk_name"] == walk["centre"].name
    assert walk["refused"]["errors"][0] | {"message": None} == {"field": "consent", "rule": "required", "message": None}


def test_what_the_population_registry_holds_is_fetched_for_the_person_not_scanned(walk):
    provided = {m["code"]: m["provided"] for m in walk["notice"]["materials"]}
    assert provided["applicant_id"] == "fetched", walk["notice"]
    assert all(p["field"] != "materials.applicant_id" for p in walk["notice"]["problems"])


def test_the_slip_prints_the_receipt_the_code_and_the_claim_code_as_html_and_pdf(walk):
    receipt = walk["accepted"]["receipt_number"]
    html = walk["slip"].text
    assert walk["slip"].headers["content-type"].startswith("text/html")
    assert receipt in html and walk["filed"]["person"]["claim_code"] in html and "承诺办结日期" in html
    assert walk["seen"]["verification_code"] in html
    assert walk["pdf"].headers["content-type"] == "application/pdf" and walk["pdf"].content.startswith(b"%PDF-")


def test_the_person_claimed_the_account_and_sees_the_case_under_their_own_login(path, walk):
    visitor = walk["visitor"]
    claims = jwt.decode(visitor.token, options={"verify_signature": False})
    assert claims["sub"] == walk["filed"]["person"]["id"] and claims["level"] == 3
    mine = path.http.get("/intake/v1/me/applications", headers=visitor.headers).json()["items"]
    assert walk["filed"]["application"]["id"] in {a["id"] for a in mine}
    assert walk["seen"]["walk_in"]["consent"]["kind"] == "signature_capture"
    lookups = path.http.get("/identity/v1/me/lookups", headers=visitor.headers).json()
    assert any(x["reason"].startswith("窗口代录") for x in lookups)


def test_the_immediate_item_was_paid_once_and_collected_at_the_town_point(walk):
    assert walk["paid"]["intake_answer"] == {"status": "paid"} and walk["paid"]["amount"] == "10.00"
    assert walk["queued"][0]["service_point"] == "LD-LC" and walk["queued"][0]["handed_in_at"] == "LD-CENTRE"
    done = walk["delivered"]
    assert done["status"] == "delivered" and done["outcome"] == "approved" and done["payment"]["status"] == "paid"
    steps = [t["step"] for t in done["timeline"]]
    assert "窗口代录" in steps and "申请人签字确认" in steps and "即办件当场办结" in steps and "已缴费" in steps
    assert done["timeline"][-1]["unit"] == "LD-LC"


def test_the_timeline_names_who_held_the_case_with_unit_and_office_phone(walk):
    timeline = walk["delivered"]["timeline"]
    centre, town = walk["centre"], walk["town"]
    accepted = next(t for t in timeline if t["step"] == "受理")
    assert accepted["staff_name"] == centre.name and accepted["staff_contact"] == "0766-3822101"
    handed = timeline[-1]
    assert handed["staff_name"] == town.name and handed["staff_contact"] == "0766-3822201" and handed["unit_name"]
    assert any(centre.name in h and "0766-3822101" in h for h in walk["holders"])
