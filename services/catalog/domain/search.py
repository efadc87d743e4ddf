"""Chinese search terms: jieba segments names, keywords, life events and themes into tokens with a weight per
field; a query is segmented the same way and matched by token equality (an indexed lookup, never LIKE)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

import jieba

from services.catalog.domain.model import THEMES, ItemContent

jieba.setLogLevel(logging.WARNING)

#: Field weights: a hit in the name counts most.
WEIGHTS = {"name": 10, "keyword": 8, "life_event": 6, "theme": 4, "department": 2}
#: Words that carry no meaning in a request like “我想办个…”.
STOPWORDS = frozenset(
    "我 我们 想 想要 要 需要 怎么 怎样 如何 哪里 在哪 去 的 了 吗 呢 啊 个 一个 办 办理 申请 给 能 可以 请问 "
    "什么 手续 有 和 与 及 或 为 是 在 怎么办 想开 要办 咋办 哪儿".split()
)
#: Phrases of intent that precede what the person actually wants (“我想…”, “怎么办…”).
_INTENT = re.compile(r"^(请问|我想要|我想|我要|想要|想|要|怎么样|怎么|怎样|如何|去哪里|哪里可以|在哪里|在哪)+")
#: What people say → the words the catalogue uses. Expanded at query time, so items need not list every one.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "饭店": ("餐饮", "餐馆", "餐饮店"),
    "餐馆": ("餐饮", "饭店", "餐饮店"),
    "饭馆": ("餐饮", "饭店", "餐馆"),
    "酒楼": ("餐饮", "饭店"),
    "小吃店": ("餐饮", "小吃"),
    "出生证": ("出生医学证明",),
    "生孩子": ("出生", "新生儿"),
    "身份证": ("居民身份证",),
    "户口": ("户籍", "入户"),
    "公司": ("企业",),
    "开店": ("个体户", "营业执照"),
    "低保": ("最低生活保障",),
    "社保": ("社会保障", "社会保险"),
    "医保": ("医疗保险",),
}
#: Terms jieba should keep whole (domain vocabulary).
_DOMAIN_WORDS = ["饭店", "餐馆", "餐饮店", "出生证", "营业执照", "食品经营", "户口", "身份证", "结婚证", "社保卡", "医保"]
for _w in _DOMAIN_WORDS:
    jieba.add_word(_w, freq=20000)

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Search-mode segmentation, lower-cased, without stop words and punctuation; each token once."""
    out: list[str] = []
    for tok in jieba.lcut_for_search(text):
        tok = _PUNCT.sub("", tok).lower()
        if not tok or tok in STOPWORDS:
            continue
        if tok not in out:
            out.append(tok)
    return out


def query_terms(q: str) -> dict[str, int]:
    """The tokens of a query after dropping its words of intent → their boost: what the person typed counts
    twice, the catalogue's synonyms of it once."""
    q = q.strip()
    typed = tokens(_INTENT.sub("", q) or q)
    # A single-character query ("证") is all the person gave; otherwise single characters are noise.
    typed = [t for t in typed if len(t) > 1] or typed
    terms = dict.fromkeys(typed, 2)
    for t in typed:
        for syn in SYNONYMS.get(t, ()):
            for x in tokens(syn):
                if len(x) > 1:
                    terms.setdefault(x, 1)
    return terms


def index_terms(item: ItemContent, department_name: str | None = None) -> dict[tuple[str, str], int]:
    """(token, field) → weight for one published item."""
    out: dict[tuple[str, str], int] = {}

    def add(field: str, texts: Iterable[str]) -> None:
        for text in texts:
            for tok in tokens(text):
                key = (tok[:64], field)
                out[key] = max(out.get(key, 0), WEIGHTS[field])

    add("name", [item.name])
    add("keyword", item.keywords)
    add("life_event", item.life_events)
    add("theme", [THEMES.get(t, t) for t in item.themes])
    if department_name:
        add("department", [department_name])
    return out


_NOT_WORDS = re.compile(r"[0-9a-z]")


def miss_key(terms: dict[str, int]) -> str | None:
    """What a search that found nothing is remembered by: the words the person typed (not the synonyms), sorted,
    without any token holding a digit or a Latin letter, so an ID or phone number typed by mistake is never
    kept. None when nothing is left."""
    words = sorted(t for t, boost in terms.items() if boost >= 2 and not _NOT_WORDS.search(t))
    return " ".join(words)[:200] or None


@dataclass(frozen=True)
class ItemFilters:
    """What a list or a search of published items is narrowed to (each one facet of the published version)."""

    audience: str | None = None
    theme: str | None = None
    department: str | None = None
    service_point: str | None = None
    channel: str | None = None
    zero_visit: bool | None = None
    life_event: str | None = None
    kind: str | None = None
