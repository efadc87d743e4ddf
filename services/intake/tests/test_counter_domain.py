"""The counter's rules without a server: fees and exemptions, the delivery choice against resolved points, and
the promised date on the receipt slip."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from services.intake.domain import delivery, fees, slip
from shared.workdays import WorkCalendar, YearTable

ITEM = {
    "offered_at": [{"code": "LD-CENTRE", "name": "中心", "level": "city"}, {"code": "LD-LC", "name": "罗城", "level": "town"},
                   {"code": "LD-LC-01", "name": "龙华", "level": "village"}],
    "collect_at": [{"code": "LD-CENTRE", "name": "中心", "level": "city"}, {"code": "LD-SL", "name": "素龙", "level": "town"}],
    "fees": {"charged": True, "items": [
        {"name": "工本费", "standard": "20 元", "basis": "甲", "amount": "20.00",
         "exemptions": [{"code": "first_application", "name": "首次申领", "basis": "乙"}]},
        {"name": "快递费", "standard": "5.5 元", "basis": "丙", "amount": "5.50", "exemptions": []}]},
}


def test_the_bill_sums_amounts_and_an_exemption_clears_only_the_items_it_covers():
    assert fees.bill(ITEM, None).amount == Decimal("25.50")
    exempt = fees.bill(ITEM, "first_application")
    assert exempt.amount == Decimal("5.50") and [line["exempted"] for line in exempt.lines] == [True, False]
    assert not fees.bill({"fees": {"charged": False, "items": ITEM["fees"]["items"]}}, None).due
    assert not fees.bill({"fees": {"charged": True, "items": [{"name": "x", "amount": "abc"}]}}, None).due


def test_only_a_listed_exemption_may_be_claimed():
    assert fees.check_claim(ITEM, None) is None and fees.check_claim(ITEM, "first_application") is None
    found = fees.check_claim(ITEM, "veteran")
    assert found is not None and found.rule == "unknown_exemption" and "first_application" in found.message


def test_amounts_compare_as_decimals_and_codes_have_twenty_digits():
    assert fees.same_amount("20", "20.00") and not fees.same_amount("20.01", "20.00")
    assert not fees.same_amount("twenty", "20.00")
    code = fees.payment_code()
    assert len(code) == 20 and code.isdigit() and code.startswith("4417")


def test_pick_up_only_where_collection_is_offered_and_post_needs_an_address():
    assert delivery.check_choice(ITEM, method="pickup", point="LD-SL", address=None) == []
    assert [f.rule for f in delivery.check_choice(ITEM, method="pickup", point="LD-LC-01", address=None)] == [
        "collection_not_offered"]
    assert [f.field for f in delivery.check_choice(ITEM, method="post", point=None, address=" ")] == ["delivery.address"]
    assert delivery.check_choice(ITEM, method="electronic", point=None, address=None) == []
    assert delivery.point_name(ITEM, "LD-SL") == "素龙" and delivery.point_name(ITEM, "LD-X") is None


def test_a_point_outside_the_resolved_list_is_refused_and_old_versions_fall_back_to_listed_codes():
    from services.intake.domain.completeness import check_point

    assert check_point(ITEM, "LD-LC-01") is None
    assert check_point(ITEM, "LD-NOWHERE").rule == "service_point_not_offered"
    assert check_point({"service_points": ["*"]}, "LD-ANY") is None
    assert check_point({"service_points": ["LD-CENTRE"]}, "LD-LC").rule == "service_point_not_offered"


def test_the_promised_date_counts_working_days_and_skips_holidays():
    # 2026-09-30 (Wed) + 3 working days, with 1–7 October a holiday and 10 October a make-up working Saturday.
    table = YearTable(2026, frozenset(date(2026, 10, d) for d in range(1, 8)), frozenset({date(2026, 10, 10)}), "test")
    cal = WorkCalendar({2026: table}, use_library=False)
    day, text = slip.promised_on(date(2026, 9, 30), {"value": 3, "unit": "working_days"}, cal, immediate=False)
    assert day == date(2026, 10, 10) and "3 个工作日" in text
    day, text = slip.promised_on(date(2026, 9, 30), {"value": 1, "unit": "working_days"}, cal, immediate=True)
    assert day == date(2026, 9, 30) and "即办件" in text


def test_the_slip_escapes_what_it_prints_and_the_pdf_embeds_no_font_file():
    s = slip.Slip(receipt_number="R1", verification_code="123456", item_name="<script>x</script>", item_code="C",
                  applicant_name="张三", handed_in_at="中心", accepted_on=date(2026, 11, 30), promised_on=None,
                  promised_text="按办事指南", next_steps=["办理环节：审查 → 决定。"])
    page = slip.render_html(s)
    assert "<script>x" not in page and "&lt;script&gt;" in page and "123456" in page
    pdf = slip.render_pdf(s, printed_at=datetime(2026, 11, 30, 10, 0))
    assert pdf.startswith(b"%PDF-") and b"STSong-Light" in pdf and b"FontFile" not in pdf
