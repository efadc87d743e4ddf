"""The checks identity's use cases start with (they were in the routes): a registration checked by rule before
the registry is asked, and the password policy naming the field. Pure: no server, no database."""

from __future__ import annotations

from datetime import date

import pytest

from services.identity.service.common import check_new_password, credit_code, non_empty_name
from services.identity.service.organisations import organisation_registration
from services.identity.service.people import registration
from shared.errors import ValidationProblem

TODAY = date(2026, 11, 30)


def rules_of(exc: pytest.ExceptionInfo[ValidationProblem]) -> list[tuple[str, str]]:
    return [(e.field, e.rule) for e in exc.value.errors]


def test_a_registration_derives_birth_date_and_sex_and_keeps_the_password_out_of_its_fingerprint():
    reg = registration(name=" 李明 ", id_number="４４５３８１１９９６０１０１１２３４", phone="138 1234 5678",
                       password="tea-kettle-ridge-58", today=TODAY)
    assert (reg.name, reg.id_number, reg.birth_date, reg.sex) == ("李明", "445381199601011234", date(1996, 1, 1), "male")
    assert reg.fingerprint == {"name": "李明", "id_number": "445381199601011234", "phone": "13812345678"}


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("id_number", "445381199601011235", "check_digit"),
    ("phone", "12345", None),
    ("name", "   ", "missing"),
])
def test_a_registration_breaking_a_rule_names_the_field(field, value, rule):
    body = {"name": "李明", "id_number": "445381199601011234", "phone": "13812345678",
            "password": "tea-kettle-ridge-58", field: value}
    with pytest.raises(ValidationProblem) as exc:
        registration(**body, today=TODAY)
    [(got_field, got_rule)] = rules_of(exc)
    assert got_field == f"body.{field}"
    assert rule is None or got_rule == rule


def test_a_password_built_from_the_id_numbers_birth_date_is_refused():
    with pytest.raises(ValidationProblem) as exc:
        check_new_password("body.password", "19960101", "李明", "445381199601011234")
    assert rules_of(exc) == [("body.password", "password_policy")]


def test_organisation_registration_checks_the_credit_code_and_the_name():
    reg = organisation_registration(credit_code_raw="92445381ma4w00000p", name=" 罗定市一味餐饮店 ",
                                    legal_representative_id_number="445381199601011234")
    assert (reg.credit_code, reg.name) == ("92445381MA4W00000P", "罗定市一味餐饮店")
    with pytest.raises(ValidationProblem) as exc:
        credit_code("body.credit_code", "92445381MA4W000001")
    assert rules_of(exc) == [("body.credit_code", "check_digit")]
    with pytest.raises(ValidationProblem):
        non_empty_name("body.name", " ")
