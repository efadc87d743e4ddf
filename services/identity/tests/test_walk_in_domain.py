"""The claim code's rules without a server (窗口代录)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.identity.domain import walkin
from services.identity.domain.passwords import NO_PASSWORD, Passwords

NOW = datetime(2026, 11, 30, 10, tzinfo=UTC)


def state(code: str = "FJKEQFM9FN", **kw):  # type: ignore[no-untyped-def]
    values = {"code_hash": walkin.code_hash(code), "expires_at": walkin.expires(NOW), "failures": 0, "claimed_at": None}
    return walkin.ClaimState(**{**values, **kw})


def test_a_code_is_typed_off_paper_without_case_spaces_or_hyphens():
    assert walkin.code_opens(state(), "fjke-qfm9 fn", NOW)
    assert not walkin.code_opens(state(), "FJKEQFM9FM", NOW)


def test_a_code_opens_nothing_once_claimed_expired_void_or_tried_too_often():
    assert not walkin.code_opens(state(claimed_at=NOW), "FJKEQFM9FN", NOW)
    assert not walkin.code_opens(state(), "FJKEQFM9FN", walkin.expires(NOW) + timedelta(seconds=1))
    assert not walkin.code_opens(state(code_hash=None), "FJKEQFM9FN", NOW)
    assert not walkin.code_opens(state(failures=walkin.MAX_CLAIM_FAILURES), "FJKEQFM9FN", NOW)
    assert walkin.void_after_failure(walkin.MAX_CLAIM_FAILURES) and not walkin.void_after_failure(1)


def test_new_codes_avoid_look_alike_characters_and_differ():
    codes = {walkin.new_claim_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == walkin.LENGTH and not set(c) & set("01OILZ2S5B8") for c in codes)


def test_an_account_without_a_password_never_verifies():
    pw = Passwords(time_cost=1, memory_kib=1024, parallelism=1)
    for guess in ("not-a-password-anyone-has", "", NO_PASSWORD):
        assert not pw.verify(NO_PASSWORD, guess)
    assert pw.verify(pw.hash("harbour-lantern-73"), "harbour-lantern-73")
