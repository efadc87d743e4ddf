"""One language per answer (issue 18): how `Accept-Language` picks it and how a problem renders in it. Pure: no
platform (the platform-wide checks are in tests/foundation/test_http_conventions.py and test_docs_offline.py)."""

from __future__ import annotations

import pytest

from shared.errors import TITLES, Conflict, NotFound, Problem, invalid, negotiate_language


@pytest.mark.parametrize(("header", "lang"), [
    (None, "zh-CN"), ("", "zh-CN"), ("*", "zh-CN"), ("fr", "zh-CN"), ("zh-CN", "zh-CN"), ("zh-TW,zh;q=0.9", "zh-CN"),
    ("en", "en"), ("en-GB", "en"), ("en-US,en;q=0.9,zh-CN;q=0.8", "en"), ("zh-CN,en;q=0.5", "zh-CN"),
    ("en;q=0.2, zh;q=0.8", "zh-CN"), ("de, en;q=0.7", "en"), ("en;q=0", "zh-CN"), ("en;q=abc", "zh-CN"),
])
def test_accept_language_picks_chinese_by_default_and_english_on_request(header, lang):
    assert negotiate_language(header) == lang


def test_a_problem_renders_its_title_and_detail_in_the_language_asked():
    p = Conflict("该申请已受理，不能撤回。", detail_en="The application is accepted; it can no longer be withdrawn.",
                 slug="illegal-transition")
    assert p.body(lang="zh-CN")["title"] == TITLES["illegal-transition"][0]
    assert p.body(lang="zh-CN")["detail"] == "该申请已受理，不能撤回。"
    assert p.body(lang="en") == {"type": "https://yimen.gov.cn/problems/illegal-transition",
                                 "title": "Not possible in the current state", "status": 409,
                                 "detail": "The application is accepted; it can no longer be withdrawn."}
    # Without a language: as given (what the platform's own callers that forward bodies expect).
    assert p.body()["title"] == "Conflict with the current state"


def test_a_text_in_one_language_only_is_answered_as_it_is_and_titles_fall_back_to_the_class():
    p = NotFound("没有这个事项。")
    assert p.body(lang="en")["detail"] == "没有这个事项。" and p.body(lang="en")["title"] == "Not found"
    custom = Problem("x", slug="no-such-slug-anywhere", title="Something odd", status=418)
    assert custom.body(lang="zh-CN")["title"] == "Something odd"
    assert Problem("x", title="自定义标题", slug="no-such-slug").body(lang="zh-CN")["title"] == "自定义标题"


def test_field_errors_of_our_rules_answer_in_their_own_words():
    p = invalid("body.phone", "format", "Eleven digits starting with 1.", message_zh="须为以 1 开头的 11 位数字。")
    assert p.body(lang="zh-CN")["errors"][0]["message"] == "须为以 1 开头的 11 位数字。"
    assert p.body(lang="en")["errors"][0]["message"] == "Eleven digits starting with 1."
    assert p.body(lang="en")["detail"] == "body.phone: Eleven digits starting with 1."
    assert p.body(lang="zh-CN")["detail"] == "body.phone: 须为以 1 开头的 11 位数字。"
    english_only = invalid("body.id_number", "check_digit", "The check character does not match.")
    assert english_only.body(lang="zh-CN")["errors"][0]["message"] == "The check character does not match."
    chinese = invalid("form.shop_name", "required", "请填写“店名”。")
    assert chinese.body(lang="en")["errors"][0]["message"] == "请填写“店名”。"
