"""The datashare rules without a server: identifiers, field schemas, signatures, the hash chain, imports, sharing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from stdnum.cn import ric
from stdnum.iso7064 import mod_37_36

from services.datashare.domain import certificates as rules
from services.datashare.domain import registries, sharing
from services.datashare.domain.access_log import (
    GENESIS,
    canonical_around_seq,
    canonical_row,
    chain_hash,
    verify_chain,
)
from services.datashare.domain.identifiers import (
    certificate_identifier,
    credit_code_problem,
    id_number_problem,
    identifier_is_valid,
)
from services.datashare.domain.opendata import on_time
from services.datashare.tests.factories import FOOD_PERMIT, credit_code, food_item, id_number
from shared.auth import ActingFor, Principal
from shared.errors import Forbidden, ValidationProblem


def test_identifier_follows_gbt_36903_with_a_mod_37_36_check():
    ident = certificate_identifier(FOOD_PERMIT, "11441781MB0000001A", 42)
    body, _, check = ident.rpartition(".")
    assert body == f"1.2.156.3005.2.{FOOD_PERMIT}.11441781MB0000001A.000042.001"
    assert check == mod_37_36.calc_check_digit(body.replace(".", ""))
    assert identifier_is_valid(ident)
    assert not identifier_is_valid(ident.replace("000042", "000043"))


def test_id_number_region_is_not_checked_against_todays_code_list():
    # 440000 is not a county code stdnum knows for 1980; the number is still a real person's.
    body = "44000019800101001"
    number = body + ric.calc_check_digit(body + "0")
    assert id_number_problem(number) is None
    assert id_number_problem(number[:-1] + ("0" if number[-1] != "0" else "1"))[0] == "check_digit"
    assert id_number_problem("12345")[0] == "length"
    assert id_number_problem("4453811990010A0011")[0] == "format"


def test_credit_code_rules():
    assert credit_code_problem(credit_code()) is None
    assert credit_code_problem("11441781MB0000001A") is None
    assert credit_code_problem("11441781MB0000001B")[0] == "check_digit"
    assert credit_code_problem("1144178OMB0000001A")[0] == "format"


def test_fields_are_checked_against_the_type_schema():
    schema = rules.SEED_TYPES[1].field_schema
    assert rules.field_problems(schema, {"name": "店", "business_items": ["热食"]}) == []
    problems = {(e.field, e.rule) for e in rules.field_problems(schema, {"address": 3, "x": 1, "business_items": "a"})}
    assert problems == {("body.fields.name", "required"), ("body.fields.address", "type"),
                        ("body.fields.x", "unknown_field"), ("body.fields.business_items", "type")}
    assert rules.field_problems(schema, {}, partial=True) == []
    assert [e.rule for e in rules.schema_problems({"type": "object", "properties": {}, "required": ["a"]})] == ["schema"]


def test_fields_from_the_application_form_keep_only_what_the_type_defines():
    schema = rules.SEED_TYPES[1].field_schema
    out = rules.fields_from_form(schema, {"address": "罗城", "address2": "x", "business_items": "not a list"}, "店")
    assert out == {"address": "罗城", "name": "店"}


def test_validity_and_status():
    assert rules.valid_until(date(2026, 11, 26), 5) == date(2031, 11, 25)
    assert rules.valid_until(date(2024, 2, 29), 1) == date(2025, 2, 27)
    assert rules.valid_until(date(2026, 1, 1), None) is None
    assert rules.status_on("valid", date(2026, 1, 1), date(2026, 1, 1)) == "valid"
    assert rules.status_on("valid", date(2026, 1, 1), date(2026, 1, 2)) == "expired"
    assert rules.status_on("revoked", None, date(2026, 1, 2)) == "revoked"


def test_signature_covers_the_canonical_content():
    private, public = rules.new_signing_key()
    content = {"number": "N1", "fields": {"name": "店", "area_m2": 30}, "holder_id": "X"}
    sig = rules.sign(private, content)
    assert rules.signature_is_valid(public, dict(reversed(list(content.items()))), sig)  # key order is irrelevant
    assert not rules.signature_is_valid(public, {**content, "holder_id": "Y"}, sig)
    _, other_public = rules.new_signing_key()
    assert not rules.signature_is_valid(other_public, content, sig)
    assert not rules.signature_is_valid(public, content, "%%%")


def _chain(n: int) -> list[dict]:
    rows, prev = [], GENESIS
    for i in range(1, n + 1):
        row = {"seq": i, "recorded_at": datetime(2026, 11, 26, 10, i, tzinfo=UTC), "accessor_subject": f"s{i}",
               "accessor_kind": "staff", "accessor_department": "LD-GAJ", "service": "LD-GAJ",
               "action": "registry_lookup", "target": "registry:population", "holder_id": "H", "fields": ["name"],
               "outcome": "found", "prev_hash": prev}
        row["hash"] = prev = chain_hash(prev, row)
        rows.append(row)
    return rows


def test_the_canonical_row_splits_around_its_seq_whatever_its_strings_hold():
    """Issue 14: PostgreSQL hashes an appended row from the text on either side of its seq."""
    row = {"recorded_at": datetime(2026, 12, 1, 3, 30, tzinfo=UTC), "accessor_subject": 'x,"seq":0,"y',
           "accessor_kind": "staff", "accessor_department": None, "service": '"seq":0,', "action": "read",
           "target": "人口库/44", "holder_id": "h", "application_id": None, "item_code": None,
           "material_code": None, "purpose": "审批", "fields": ["name", ',"seq":0,'], "outcome": "found"}
    prefix, suffix = canonical_around_seq(row)
    for seq in (1, 42, 10**12):
        assert prefix + str(seq) + suffix == canonical_row({**row, "seq": seq})


def test_hash_chain_names_the_first_edited_removed_or_truncated_row():
    rows = _chain(5)
    assert verify_chain(rows, head_seq=5).intact
    edited = [dict(r) for r in rows]
    edited[2]["accessor_subject"] = "someone else"
    assert verify_chain(edited).first_broken_seq == 3
    assert verify_chain(rows[:2] + rows[3:]).first_broken_seq == 4
    truncated = verify_chain(rows[:4], head_seq=5)
    assert not truncated.intact and truncated.first_broken_seq == 5


def test_import_rows_are_reported_with_line_field_and_rule():
    good = id_number()
    csv_body = (f"id_number,name,birth_date,gender\n{good},张三,,男\n{good},张三,,男\n"
                f"{id_number('19900101')},李四,1991-01-01,女\n{id_number()},王五,,X\n").encode()
    parsed = registries.parse_import(registries.POPULATION, registries.read_records(csv_body, "text/csv"))
    assert [r["id_number"] for r in parsed.rows] == [good]
    assert parsed.rows[0]["birth_date"] == "1990-01-01"
    assert [(r.line, r.field, r.rule) for r in parsed.rejected] == [
        (3, "id_number", "duplicate"), (4, "birth_date", "mismatch"), (5, "gender", "enum")]
    with pytest.raises(ValueError):
        registries.read_records(b'{"rows": 1}', "application/json")
    parsed = registries.parse_import(registries.LEGAL_PERSONS, [(1, {"credit_code": credit_code(), "name": "x",
                                                                       "colour": "red"})])
    assert parsed.rejected[0].rule == "unknown_column"


def _person(hid: str | None = None, org: str | None = None, act_hid: str | None = None) -> Principal:
    act = ActingFor(subject="p", kind="person", holder_id=act_hid) if act_hid else None
    return Principal(subject="s", kind="person", roles=frozenset({"citizen"}), holder_id=hid, organisation=org,
                     acting_for=act)


def test_sharing_names_the_source_and_the_holder():
    item = food_item()
    need = sharing.material_need(item, "M-LICENCE")
    assert need.certificate_type == "11441781MB0000001A001" and need.fields == ("name", "legal_representative")
    with pytest.raises(Forbidden):
        sharing.material_need(item, "M-PLAN")
    with pytest.raises(ValidationProblem):
        sharing.material_need(item, "M-NONE")
    with pytest.raises(Forbidden):
        sharing.check_asked_source(need, "11441781MB0000006R001", None)
    assert sharing.check_requester(_person(org="ORG"), item, "ORG") == "holder"
    assert sharing.check_requester(_person(act_hid="P1"), item, "P1") == "holder"
    with pytest.raises(Forbidden):
        sharing.check_requester(_person(hid="P2"), item, "P1")
    staff = Principal(subject="x", kind="staff", roles=frozenset({"department_reviewer"}), department="LD-WJJ")
    assert sharing.check_requester(staff, item, "ANY") == "department"
    clerk = Principal(subject="c", kind="staff", roles=frozenset({"window_clerk"}), department="LD-ZSJ")
    assert sharing.check_requester(clerk, item, "ANY") == "window"
    with pytest.raises(Forbidden):
        sharing.check_requester(Principal(subject="x", kind="staff", roles=frozenset(), department="LD-MZJ"), item, "A")
    assert sharing.project({"name": "a", "secret": "b"}, ("name", "missing")) == {"name": "a"}
    assert sharing.application_problem({"status": "withdrawn"}, "I") is not None
    assert sharing.application_problem({"status": "accepted", "item_code": "J"}, "I") is not None
    assert sharing.application_problem({"status": "in_review", "item_code": "I"}, "I") is None


CST = ZoneInfo("Asia/Shanghai")


def test_on_time_counts_working_days_in_the_city_time_zone():
    accepted = datetime(2026, 9, 30, 2, tzinfo=UTC)  # Wednesday before the National Day holiday
    limit = {"value": 3, "unit": "working_days"}
    assert on_time(accepted, datetime(2026, 10, 9, 2, tzinfo=UTC), limit, CST) is True
    assert on_time(accepted, datetime(2026, 10, 13, 2, tzinfo=UTC), limit, CST) is False
    assert on_time(accepted, datetime(2026, 10, 2, 2, tzinfo=UTC), {"value": 24, "unit": "hours"}, CST) is False
    assert on_time(accepted, datetime(2026, 10, 2, 2, tzinfo=UTC), None, CST) is None


# --- purpose binding, serials, the access watch ----------------------------------------------------------------

def test_serials_are_a_keyed_permutation_that_does_not_follow_the_count():
    from services.datashare.domain.identifiers import SERIAL_SPACE, permuted_serial

    serials = [permuted_serial("k" * 64, FOOD_PERMIT, n) for n in range(20_000)]
    assert len(set(serials)) == len(serials) and all(0 <= s < SERIAL_SPACE for s in serials)
    assert sum(b - a == 1 for a, b in zip(serials, serials[1:], strict=False)) < 10
    assert permuted_serial("another key", FOOD_PERMIT, 1) != permuted_serial("k" * 64, FOOD_PERMIT, 1)
    with pytest.raises(ValueError):
        permuted_serial("k", FOOD_PERMIT, SERIAL_SPACE)


def test_a_verification_code_is_compared_whole_and_case_blind():
    from services.datashare.domain.identifiers import new_verification_code, verification_code_matches

    code = new_verification_code()
    assert len(code) == 10 and verification_code_matches(code, code.lower())
    assert not verification_code_matches(code, code[:-1]) and not verification_code_matches(None, code)


def _staff(dept: str | None = None, point: str | None = None, role: str = "department_reviewer",
           kind: str = "staff") -> Principal:
    return Principal(subject="s", kind=kind, roles=frozenset({role}), department=dept, service_point=point)


def test_a_department_needs_an_open_task_and_a_window_needs_to_be_accepting():
    from services.datashare.domain import purpose

    app = {"id": "a1", "status": "in_review", "item_code": "X", "service_point": "LD-CENTRE"}
    assert purpose.task_basis(_staff("LD-WJJ"), app, {"LD-WJJ"}) == "department"
    with pytest.raises(Forbidden):
        purpose.task_basis(_staff("LD-XFJ"), app, {"LD-WJJ"})
    clerk = _staff("LD-ZSJ", "LD-CENTRE", "window_clerk")
    with pytest.raises(Forbidden):
        purpose.task_basis(clerk, app, set())
    assert purpose.task_basis(clerk, {**app, "status": "submitted"}, set()) == "window"
    with pytest.raises(Forbidden):
        purpose.task_basis(_staff("LD-ZSJ", "LD-LC", "window_clerk"), {**app, "status": "submitted"}, set())
    with pytest.raises(Forbidden):
        purpose.task_basis(_staff("LD-WJJ"), {**app, "status": "delivered"}, {"LD-WJJ"})


def test_a_window_clerk_fetches_for_a_walk_in_they_fill_in_at_their_point_but_not_for_a_draft_of_someone_online():
    from services.datashare.domain import purpose

    clerk = _staff("LD-ZSJ", "LD-CENTRE", "window_clerk")
    walk_in = {"id": "a1", "status": "draft", "item_code": "X", "service_point": "LD-CENTRE",
               "walk_in": {"service_point": "LD-CENTRE", "clerk_name": "周敏"}}
    assert purpose.task_basis(clerk, walk_in, set()) == "window"
    assert purpose.task_basis(clerk, {**walk_in, "status": "returned"}, set()) == "window"
    for refused in ({**walk_in, "walk_in": None}, {**walk_in, "status": "in_review"}):
        with pytest.raises(Forbidden):
            purpose.task_basis(clerk, refused, set())
    with pytest.raises(Forbidden):
        purpose.task_basis(_staff("LD-ZSJ", "LD-LC", "window_clerk"), walk_in, set())


def test_the_holder_must_be_named_in_the_application_and_the_item_must_name_the_source():
    from services.datashare.domain import purpose

    person, other = id_number(), id_number()
    app = {"applicant": {"holder_id": person[:4] + "*" * 10 + person[-4:]}, "form": {"rep": {"id": other}}}
    assert purpose.holder_in_application(person, app) and purpose.holder_in_application(other, app)
    assert not purpose.holder_in_application(id_number("19700101"), app)
    codes, fields = purpose.sources_named(food_item(), registry="population")
    assert codes == ("M-REP-ID",) and fields == ("name", "gender")
    with pytest.raises(Forbidden):
        purpose.sources_named(food_item(), registry="legal_persons")
    with pytest.raises(Forbidden):
        purpose.sources_named(food_item(), registry="population", material_code="M-LICENCE")


def test_released_fields_are_projected_and_masked_unless_the_grant_shows_them():
    from services.datashare.domain import purpose

    record = {"name": "陈明", "phone": "13812345678", "id_number": "445381199001011234", "address": "罗城"}
    masked = purpose.release(record, purpose.Grant("department", ("name", "phone")))
    assert masked == {"name": "陈明", "phone": "138****5678"}
    shown = purpose.release(record, purpose.Grant("window", ("name", "phone"), unmasked=True))
    assert shown == {"name": "陈明", "phone": "13812345678"}
    whole = purpose.release(record, purpose.reason_grant())
    assert whole["id_number"] == "4453**********1234" and whole["address"] == "罗城"


def test_the_watch_rules_count_within_the_window_only():
    from datetime import timedelta

    from services.datashare.domain import anomalies as watch

    now = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # 14:00 in the city: daytime
    t = watch.Thresholds(window=timedelta(hours=1), outside_case_holders=3, refused_reads=2, failed_verifications=2,
                         night_reads=2)

    def row(seq: int, minutes_ago: int, outcome: str = "found", holder: str | None = "h", app: str | None = None,
            action: str = "registry_lookup") -> watch.Row:
        return watch.Row(seq, now - timedelta(minutes=minutes_ago), action, outcome, holder, app)

    assert watch.detect([row(1, 5, "refused"), row(2, 90, "refused")], now, t, staff_reader=True) == []
    kinds = {a.kind for a in watch.detect([row(1, 5, "refused"), row(2, 4, "refused")], now, t, staff_reader=True)}
    assert kinds == {watch.REFUSED_READS}
    outside = [row(i, 10 - i, holder=f"h{i}") for i in range(3)]
    (a,) = watch.detect(outside, now, t, staff_reader=True)
    assert a.kind == watch.OUTSIDE_CASES and a.count == 3 and a.entry_seqs == (0, 1, 2)
    assert watch.detect([row(i, 10 - i, holder=f"h{i}", app="app") for i in range(3)], now, t, staff_reader=True) == []
    failed = [row(i, 1, "code_mismatch", action="certificate_verification") for i in range(2)]
    assert [a.kind for a in watch.detect(failed, now, t, staff_reader=False)] == [watch.FAILED_VERIFICATIONS]
    # A citizen's account probing others' data is watched for refusals, not for its own reads.
    citizen = [row(1, 3, "refused"), row(2, 2, "refused"), *(row(i, 1, holder=f"h{i}") for i in range(3, 6))]
    assert [a.kind for a in watch.detect(citizen, now, t, staff_reader=False)] == [watch.REFUSED_READS]
    night = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # 00:00 in the city
    rows = [watch.Row(i, night - timedelta(minutes=i), "registry_lookup", "found", "h", "app") for i in (2, 1)]
    (n,) = watch.detect(rows, night, t, staff_reader=True)
    assert n.kind == watch.NIGHT_READS and n.bucket == "2026-11-30"
    assert watch.is_night(night, 22, 6) and not watch.is_night(now, 22, 6)
