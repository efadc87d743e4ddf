"""Identity assurance at submission (实名核验): an item's `min_assurance_level` against the applicant's token
`level`; a too-low level is refused before anything is fetched from datashare for the applicant."""

from __future__ import annotations

import pytest

from services.intake.domain.assurance import required_level, shortfall
from services.intake.tests import factories as f
from services.intake.tests.test_applications import BASE, PROBLEM, complete_draft, submit


async def test_a_self_registered_account_drafts_and_checks_but_cannot_submit_and_nothing_is_fetched(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())  # published without the field: level 2 needed
    level_1 = f.citizen(tokens, level=1)
    app = await complete_draft(intake, level_1, item["code"])
    asked = len(intake.datashare.requests)
    notice = await intake.client.post(f"{BASE}/applications/{app['id']}/check", headers=level_1)
    assert notice.status_code == 200
    first = notice.json()["problems"][0]
    assert (first["field"], first["rule"]) == ("applicant.assurance_level", "assurance_level_too_low")
    r = await submit(intake, level_1, app["id"])
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM, r.text
    body = r.json()
    assert body["type"].endswith("/assurance-level-too-low")
    assert body["required_level"] == 2 and body["current_level"] == 1 and "窗口" in body["detail"]
    assert len(intake.datashare.requests) == asked, "nothing was fetched for a level-1 applicant"
    view = await intake.client.get(f"{BASE}/applications/{app['id']}", headers=level_1)
    assert view.json()["status"] == "draft"


async def test_an_item_that_needs_an_in_person_check_refuses_level_2_and_accepts_level_3(intake, tokens):
    item = await intake.publish_item(f.food_permit_item(min_assurance_level=3))
    person = "p-level"
    level_2 = f.citizen(tokens, person, level=2)
    app = await complete_draft(intake, level_2, item["code"])
    r = await submit(intake, level_2, app["id"], key="k-level-2")
    assert r.status_code == 403 and r.json()["required_level"] == 3 and r.json()["current_level"] == 2
    level_3 = f.citizen(tokens, person, level=3)
    r = await submit(intake, level_3, app["id"], key="k-level-3")
    assert r.status_code == 200, r.text
    assert r.json()["receipt_number"]


@pytest.mark.parametrize(("payload", "level", "refused"), [
    ({}, 1, True), ({}, 2, False), ({"min_assurance_level": 3}, 2, True), ({"min_assurance_level": 1}, 1, False),
    ({"min_assurance_level": "3"}, 1, True),  # not an int: the default (2) applies
])
def test_the_required_level_defaults_to_two(payload, level, refused):
    assert (shortfall(payload, level) is not None) == refused
    assert required_level({}) == 2
