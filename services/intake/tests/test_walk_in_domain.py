"""Walk-in rules without a server (窗口代录): the card's number as typed, and consent before submission."""

from __future__ import annotations

from services.intake.domain import slip, walkin


def test_the_cards_number_is_normalised_and_checked():
    number, why = walkin.card_number("４４５３８１ １９５２０３０４５６３３")
    assert number == "445381195203045633" and why is None
    assert walkin.card_number("445381195203045634")[1] is not None  # wrong check character
    assert walkin.card_number("44538119520304563x")[0].endswith("X")


def test_a_walk_in_needs_a_signed_slip_or_a_signature_capture():
    assert walkin.consent_finding(None) is not None and walkin.consent_finding(None).field == "consent"  # type: ignore[union-attr]
    assert walkin.consent_finding("signed_slip") is None and walkin.consent_finding("signature_capture") is None


def test_the_slip_shows_the_filing_clerk_and_the_claim_code_only_when_given():
    from datetime import date

    base = dict(receipt_number="R1", verification_code="123456", item_name="临时居民身份证申领", item_code="X",
                applicant_name="黄伯", handed_in_at="罗定市政务服务中心", accepted_on=date(2026, 11, 30),
                promised_on=date(2026, 11, 30), promised_text="当场办结")
    plain = dict(slip.Slip(**base).rows())
    assert "办理方式" not in plain and "网上认领码" not in plain
    walked = dict(slip.Slip(**base, filed_by="周敏", claim_code="FJKEQFM9FN", claim_until=date(2026, 12, 30)).rows())
    assert walked["办理方式"] == "窗口代录（经办人：周敏）" and walked["网上认领码"].startswith("FJKEQFM9FN")
    html = slip.render_html(slip.Slip(**base, filed_by="周敏", claim_code="FJKEQFM9FN"))
    assert "FJKEQFM9FN" in html
