"""Rules of identity without a server: ID numbers, credit codes, phones, lock-out, delegations, tokens."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import jwt
import pytest
from stdnum.cn import ric

from services.identity.domain.assurance import Assurance, NameMismatch, from_population_match, raised
from services.identity.domain.delegation import DelegationState, normalise_items
from services.identity.domain.lockout import LoginThrottle
from services.identity.domain.numbers import (
    NumberInvalid,
    normalise_phone,
    parse_citizen_id,
    parse_credit_code,
)
from services.identity.domain.passwords import Passwords, password_problem
from services.identity.domain.roles import shown_id_number, shown_phone
from services.identity.domain.tokens import SigningKey, TokenSubject, issued_at, revocation_instant
from services.identity.tests.helpers import credit_code, id_number, with_wrong_check_digit

TODAY = date(2026, 11, 26)


def rule_of(raw: str) -> str:
    with pytest.raises(NumberInvalid) as exc:
        parse_citizen_id(raw, today=TODAY)
    return exc.value.rule


def test_a_valid_number_gives_birth_date_and_sex():
    cid = parse_citizen_id("445381199001011230", today=TODAY)
    assert cid.birth_date == date(1990, 1, 1)
    assert cid.sex == "male"  # sequence 123 is odd
    assert parse_citizen_id(id_number(seq="124"), today=TODAY).sex == "female"


def test_wrong_check_digit_is_refused():
    assert rule_of(with_wrong_check_digit("445381199001011230")) == "check_digit"


@pytest.mark.parametrize("birth", ["19900230", "19901301", "19900001", "20990101", "18500101"])
def test_impossible_birth_dates_are_refused(birth):
    assert rule_of(id_number(birth=birth)) == "birth_date"


def test_a_province_part_that_never_existed_is_refused():
    assert rule_of(id_number(region="995381")) == "region"
    assert rule_of(id_number(region="005381")) == "region"


def test_a_region_code_newer_than_the_birth_is_accepted_though_stdnum_refuses_it():
    # 445381 (罗定市) exists since 1994; someone born in 1985 who got the number later carries it.
    number = id_number(region="445381", birth="19850101")
    assert not ric.is_valid(number)
    assert parse_citizen_id(number, today=TODAY).number == number


def test_abolished_region_codes_stay_valid():
    number = id_number(region="442822", birth="19950505")  # 四会县, abolished in 1988
    assert parse_citizen_id(number, today=TODAY).region == "442822"


def test_lower_case_x_full_width_digits_and_whitespace_are_normalised():
    x_number = next(n for n in (id_number() for _ in range(200)) if n.endswith("X"))
    assert parse_citizen_id(x_number.lower(), today=TODAY).number == x_number
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in x_number)
    assert parse_citizen_id(full_width, today=TODAY).number == x_number
    spaced = f"  {x_number[:6]} {x_number[6:14]}\u3000{x_number[14:]}\t"
    assert parse_citizen_id(spaced, today=TODAY).number == x_number


@pytest.mark.parametrize(("raw", "rule"), [
    ("4453811990010112", "length"), ("44538119900101123", "length"), ("445381900101123", "length"),
    ("44538119900101123A", "format"), ("4453811990O101123X", "format"), ("", "length"),
])
def test_malformed_numbers_name_their_rule(raw, rule):
    assert rule_of(raw) == rule


def test_credit_codes_by_gb_32100():
    code = credit_code()
    assert parse_credit_code(code.lower()) == code
    assert parse_credit_code(credit_code(authority="Y", category="1")).startswith("Y1")  # stdnum refuses Y
    assert parse_credit_code("11441781MB0000001A") == "11441781MB0000001A"
    for raw, rule in [(code[:-1], "length"), (code[:-1] + ("0" if code[-1] != "0" else "1"), "check_digit"),
                      ("Z" + code[1:], "format"), (code[:10] + "I" + code[11:], "format")]:
        with pytest.raises(NumberInvalid) as exc:
            parse_credit_code(raw)
        assert exc.value.rule == rule, raw


def test_phones_are_normalised_or_refused():
    assert normalise_phone("+86 138-1234-5678") == "13812345678"
    assert normalise_phone("１３８１２３４５６７８") == "13812345678"
    for bad in ("12812345678", "1381234567", "phone"):
        with pytest.raises(NumberInvalid):
            normalise_phone(bad)


def test_password_policy_and_hashing():
    for weak in ("short1", "12345678", "aaaaaaaaaa", "Password1", "x" * 129, "Passw0rd", "P@ssw0rd!", "1qaz2wsx3edc",
                 "woaini1314"):
        assert password_problem(weak), weak
    # What a guesser knows of the account counts as guessed: the ID number with a letter added is not a password.
    assert password_problem("445381199001011230a") is None
    assert password_problem("445381199001011230a", ["445381199001011230"])
    assert password_problem("long-enough-1") is None
    assert password_problem("CorrectHorseBatteryStaple") is None  # letters only is fine when long and random
    pw = Passwords(time_cost=1, memory_kib=1024, parallelism=1)
    stored = pw.hash("long-enough-1")
    assert pw.verify(stored, "long-enough-1")
    assert not pw.verify(stored, "long-enough-2")
    assert not pw.verify(None, "long-enough-1")  # unknown account: same work, always false


def test_five_failures_lock_for_fifteen_minutes_then_counting_starts_again():
    now = datetime(2026, 11, 26, 10, tzinfo=UTC)
    state = LoginThrottle()
    for _ in range(4):
        state = state.after_failure(now, threshold=5, lock_for=timedelta(minutes=15))
        assert not state.locked(now)
    state = state.after_failure(now, threshold=5, lock_for=timedelta(minutes=15))
    assert state.locked(now) and state.retry_after(now) == 900
    later = now + timedelta(minutes=15, seconds=1)
    assert not state.locked(later)
    assert state.after_failure(later, threshold=5, lock_for=timedelta(minutes=15)).failures == 1


def test_a_delegation_is_usable_only_by_its_agent_until_it_ends_or_is_revoked():
    now = datetime(2026, 11, 26, tzinfo=UTC)
    d = DelegationState("agent", now + timedelta(days=1), None)
    assert d.unusable_because(agent_id="agent", now=now) is None
    assert d.unusable_because(agent_id="other", now=now)
    assert d.unusable_because(agent_id="agent", now=now + timedelta(days=2))
    assert DelegationState("agent", now + timedelta(days=1), now).unusable_because(agent_id="agent", now=now)
    assert normalise_items([" B ", "A", "B", ""]) == ["A", "B"]
    assert normalise_items(None) is None


def test_privacy_masks_for_everyone_but_the_person():
    assert shown_id_number("445381199001011230", is_self=True) == "445381199001011230"
    assert shown_id_number("445381199001011230", is_self=False) == "4453**********1230"
    assert shown_phone("13812345678", is_self=False) == "138****5678"
    assert shown_phone("13812345678", is_self=False, roles=frozenset({"window_clerk"})) == "13812345678"


def test_signed_tokens_carry_the_contract_claims_and_keys_survive_encryption():
    key = SigningKey.generate()
    now = datetime.now(UTC)
    token = key.sign(TokenSubject(sub="p1", kind="person", roles=["citizen"], name="李明", hid="445381199001011230"),
                     now=now, ttl=timedelta(minutes=15))
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "kid": key.kid, "typ": "JWT"}
    claims = jwt.decode(token, key.private_key.public_key(), algorithms=["EdDSA"], audience="yimen",
                        issuer="yimen-identity")
    assert claims["exp"] - int(claims["iat"]) == 900 and claims["hid"] == "445381199001011230"
    assert claims["iat"] == int(now.timestamp() * 1000) / 1000, "iat to the millisecond (revocation compares it)"
    pem = key.private_pem("passphrase")
    assert "ENCRYPTED" in pem
    assert SigningKey.from_pem(key.kid, pem, "passphrase").public_jwk() == key.public_jwk()
    assert "d" not in key.public_jwk()  # the private scalar never enters the JWKS


def test_failures_spread_out_over_time_never_lock():
    t = datetime(2026, 11, 26, 10, tzinfo=UTC)
    state = LoginThrottle()
    for day in range(10):
        state = state.after_failure(t + timedelta(days=day), threshold=5, lock_for=timedelta(minutes=15))
    assert state.failures == 1 and not state.locked(t + timedelta(days=9))


def test_registry_verdicts_give_levels_and_a_mismatch_creates_nothing():
    assert from_population_match("match") == Assurance(2, "population_registry")
    level_1 = from_population_match("not_found")
    assert level_1.level == 1 and "人口库" in (level_1.note or "")
    with pytest.raises(NameMismatch):
        from_population_match("name_mismatch")
    assert raised(3, 2) == 3 and raised(1, 3) == 3


def test_a_revocation_is_later_than_every_token_issued_before_it_and_earlier_than_those_after():
    t = datetime(2026, 11, 30, 9, 0, 0, 123456, tzinfo=UTC)
    nb = revocation_instant(t)
    assert issued_at(t, None) < nb.timestamp() <= issued_at(t, nb)
    # A second revocation in the same millisecond still ends tokens issued after the first one.
    second = revocation_instant(t, previous=nb)
    assert second > nb and issued_at(t, nb) < second.timestamp()
