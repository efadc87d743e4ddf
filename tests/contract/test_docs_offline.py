"""The docs work with the network cut off (issue 18): every service's Swagger UI and ReDoc page, fetched through
the gateway, references nothing outside the platform, and every script, style sheet and icon it references is
served by the platform itself. The gateway serves the AsyncAPI document and an index of all of them."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest
import yaml

from shared.settings import ROOT, SERVICES

pytestmark = pytest.mark.e2e

#: Every prefix the gateway serves with docs: the seven services, the simulator and the console.
DOCUMENTED = [*SERVICES, "simulator", "console"]
_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']|"""
                        r"""\bspec-url\s*=\s*["']([^"']+)["']""")


def references(html: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in _REFERENCE.finditer(html)]


@pytest.mark.parametrize("page", ["docs", "redoc"])
def test_every_docs_page_loads_only_from_the_platform(world, page):
    failures = []
    for service in DOCUMENTED:
        url = f"/{service}/{page}"
        r = world.http.get(url)
        if r.status_code != 200 or "text/html" not in r.headers.get("content-type", ""):
            failures.append(f"{url}: {r.status_code} {r.headers.get('content-type')}")
            continue
        outside = re.findall(r"""(?:https?:)?//[^\s"'<>)]+""", r.text)
        if outside:
            failures.append(f"{url}: references outside the platform: {outside}")
        refs = references(r.text)
        if not any(ref.endswith(".js") for ref in refs):
            failures.append(f"{url}: loads no script of the platform's own: {refs}")
        for ref in refs:
            target = urljoin(world.base + url, ref)
            if urlsplit(target).netloc != urlsplit(world.base).netloc:
                failures.append(f"{url}: {ref} is not on the platform")
                continue
            asset = world.http.get(target)
            if asset.status_code != 200 or not asset.content:
                failures.append(f"{url}: {ref} answers {asset.status_code}")
    assert not failures, "\n".join(failures)


def test_the_gateway_serves_the_asyncapi_document_and_an_index_of_every_document(world):
    r = world.http.get("/docs/asyncapi.yaml")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(r.text) == yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    index = world.http.get("/docs/")
    assert index.status_code == 200
    links = set(references(index.text))
    for service in DOCUMENTED:
        assert {f"/{service}/docs", f"/{service}/redoc", f"/{service}/openapi.json"} <= links, service
    assert "/docs/asyncapi.yaml" in links
    for link in links:
        assert world.http.get(link).status_code == 200, link


def test_the_gateways_own_errors_speak_the_requested_language_too(world):
    zh = world.http.get("/no-such-service/v1/x")
    assert zh.status_code == 404 and zh.headers["content-language"] == "zh-CN"
    assert zh.json()["title"] == "未找到" and "/docs/" in zh.json()["detail"]
    en = world.http.get("/no-such-service/v1/x", headers={"Accept-Language": "en-US,en;q=0.8,zh;q=0.5"})
    assert en.headers["content-language"] == "en" and en.json()["title"] == "Not found"
    # And a service's: a framework 404 behind the gateway, in both languages.
    zh = world.http.get("/catalog/v1/no-such-route")
    assert zh.status_code == 404 and zh.headers["content-language"] == "zh-CN" and zh.json()["title"] == "未找到"
    en = world.http.get("/catalog/v1/no-such-route", headers={"Accept-Language": "en"})
    assert en.headers["content-language"] == "en" and en.json()["detail"].startswith("There is nothing")
