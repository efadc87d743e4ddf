"""The supervisors' console and the window clerk's desk (#19) in a real browser: headless Chromium (Debian's
`chromium`) driven by Playwright, against the whole platform started by `make run`'s launcher. A supervisor
signs in, sees the red card the simulator's silent department earned on the league table, and opens the case;
a clerk accepts an application at the desk and files a walk-in (窗口代录) for a person with no account; a
department's reviewer sees their own department only.

Screenshots of each page go to a temporary folder, or to `docs/screenshots/` with `YIMEN_UPDATE_SCREENSHOTS=1`."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.demo import CENTRE, Actor, HappyPath, _filled, citizen_id, clerk, expect, hand_in, staff

pytestmark = pytest.mark.e2e

SILENT = "LD-STHJJ"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]


def chromium_executable() -> str:
    """Debian's Chromium; never a downloaded build. In CI a missing browser fails instead of skipping."""
    exe = os.environ.get("YIMEN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if Path(exe).exists():
        return exe
    if os.environ.get("CI") == "true":
        pytest.fail("Chromium is missing in CI (.ci/run installs Debian's chromium package)")
    pytest.skip("Chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    if os.environ.get("YIMEN_UPDATE_SCREENSHOTS") == "1":
        folder = ROOT / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory) -> Iterator[object]:
    exe = chromium_executable()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=exe, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900}, locale="zh-CN",
            timezone_id="Asia/Shanghai")
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def world(platform):
    """Demo data: the catalogue, people, a case the silent department never answers (its red card raised by an
    evaluation at a later instant, as `make demo` step 9 does), and an application waiting at the window."""
    path = HappyPath(platform.base, platform.admin["username"], platform.admin["password"], say=lambda _m: None,
                     seed=20191)
    path.admin_and_catalogue()
    path.people_and_company()
    expect(path.http.put(f"/simulator/v1/departments/{SILENT}/rule", json={"mode": "never"},
                         headers=path.admin_headers), 200)
    try:
        silent = path.cards(SILENT)
    finally:
        path.http.put(f"/simulator/v1/departments/{SILENT}/rule", json={"mode": "approve", "delay_seconds": 1},
                      headers=path.admin_headers)
    # The agent complains about the silent case (投诉): the console shows it on the case.
    expect(path.http.post("/efficacy/v1/complaints", headers=path.agent.headers, json={
        "about": {"kind": "case", "ref": silent["application"]["id"]}, "text": "超过承诺时限仍未办结，无人答复。"}), 201)
    items = expect(path.http.get("/catalog/v1/items", params={"limit": 200}), 200)["items"]
    code = next(i["code"] for i in items if i["name"] == "临时居民身份证申领")
    waiting = hand_in(path, path.owner, code)
    # Someone looks for a service the city does not offer: a search that finds nothing (卡点分析).
    assert expect(path.http.get("/catalog/v1/search", params={"q": "量子潜水艇"}), 200)["items"] == []
    assert waiting["status"] == "submitted", waiting["status"]
    return {"path": path, "silent": silent, "waiting": waiting,
            "supervisor": staff(path, "supervisor"), "clerk": clerk(path, waiting["service_point"]),
            "reviewer": staff(path, "department_reviewer", department="LD-WJJ")}


STATUS_SHOWN = {"accepted": "已受理", "in_review": "审查中", "decided": "已办结", "awaiting_payment": "待缴费",
                "awaiting_pickup": "待领取", "delivered": "已送达"}


def sign_in(page, base: str, who) -> None:
    page.goto(f"{base}/console/login")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    # By keyboard: the user name field has the focus, Tab reaches the password, Enter submits.
    page.keyboard.type(who.id_number)
    page.keyboard.press("Tab")
    page.keyboard.type(who.password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/console/login" not in page.url, page.locator("main").inner_text()


def test_the_supervisor_sees_the_silent_department_red_on_the_league_table(platform, world, browser_context, shots):
    page = browser_context.new_page()
    sign_in(page, platform.base, world["supervisor"])
    assert page.url.rstrip("/").endswith("/console")
    row = page.locator(f'tr[data-department="{SILENT}"]')
    assert row.get_attribute("class") == "red"
    assert int(row.locator("td.red-card").inner_text()) >= 1
    # The five figures, each drawn by day and by month against its target.
    assert page.locator("section.card svg.chart").count() == 10
    assert page.locator("svg line.target").count() >= 10
    page.screenshot(path=str(shots / "console-league.png"), full_page=True)
    csv = browser_context.request.get(f"{platform.base}/console/?format=csv")
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text().lstrip("\ufeff").splitlines()
    assert lines[0].startswith("department,name,open_red_cards")
    assert any(line.startswith(SILENT + ",") for line in lines[1:])
    page.close()


def test_the_supervisor_opens_the_silent_case_from_the_supervision_queue(platform, world, browser_context, shots):
    app_id = world["silent"]["application"]["id"]
    page = browser_context.new_page()
    page.goto(f"{platform.base}/console/supervision")
    if "/login" in page.url:
        sign_in(page, platform.base, world["supervisor"])
        page.goto(f"{platform.base}/console/supervision")
    page.select_option("#kind", "red_card")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/console/supervision?**kind=red_card**")
    page.screenshot(path=str(shots / "console-supervision.png"), full_page=True)
    page.locator(f'a[href="/console/cases/{app_id}"]').first.click()
    page.wait_for_url(f"**/console/cases/{app_id}")
    holders = page.locator("dd.holders").inner_text()
    assert "生态环境" in holders or SILENT in holders
    assert page.locator("ul.cards li.red").count() >= 1
    assert page.locator("table.clocks tbody tr").count() >= 2  # the case and its tasks
    assert page.locator("ol.timeline li").count() >= 2
    assert "超过承诺时限仍未办结" in page.locator("ul.complaints").inner_text()
    page.screenshot(path=str(shots / "console-case.png"), full_page=True)
    csv = browser_context.request.get(f"{platform.base}/console/cases/{app_id}?format=csv")
    assert csv.status == 200 and "card," in csv.text() and "timeline," in csv.text()
    page.goto(f"{platform.base}/console/ratings")
    assert page.locator("h1").inner_text() == "好差评"
    page.screenshot(path=str(shots / "console-ratings.png"), full_page=True)
    page.get_by_role("link", name="卡点分析").click()
    page.wait_for_url("**/console/stuck")
    assert "潜水艇" in page.locator("main").inner_text()
    page.screenshot(path=str(shots / "console-stuck.png"), full_page=True)
    page.close()


def test_a_form_posted_without_its_csrf_token_is_refused(platform, world, browser_context):
    r = browser_context.request.post(f"{platform.base}/console/supervision/1/answer", form={"answer": "伪造的答复"})
    assert r.status == 403
    assert "表单" in r.text()


def test_the_clerk_accepts_an_application_at_the_desk(platform, world, browser_context, shots):
    waiting = world["waiting"]
    browser_context.clear_cookies()
    page = browser_context.new_page()
    sign_in(page, platform.base, world["clerk"])
    assert page.url.endswith("/console/desk")
    row = page.locator("table.queue tr", has_text=waiting["receipt_number"])
    assert "个工作日" in row.inner_text()
    page.screenshot(path=str(shots / "desk-queue.png"), full_page=True)
    # Readable on a tablet held upright: nothing runs off the side of the screen.
    page.set_viewport_size({"width": 768, "height": 1024})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(shots / "desk-queue-tablet.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    row.get_by_role("link", name="审查").click()
    page.wait_for_url(f"**/console/desk/applications/{waiting['id']}")
    # The one-time notice is there, prefilled, for a return instead.
    assert page.locator("#reasons").input_value()
    page.screenshot(path=str(shots / "desk-application.png"), full_page=True)
    page.get_by_role("button", name="受理", exact=True).click()
    page.wait_for_url("**/console/desk?done=accepted**")
    assert waiting["receipt_number"] in page.locator("p.ok").inner_text()
    path = world["path"]
    app = path.application(path.owner, waiting["id"])
    assert app["status"] not in ("submitted", "draft") and app["accepted_at"]
    # The receipt number finds it again, now accepted.
    page.fill("#receipt", waiting["receipt_number"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/desk?receipt=**")
    assert waiting["receipt_number"] in page.locator("section[aria-label=查询结果]").inner_text()
    page.close()


def test_a_department_reviewer_sees_their_own_department_only(platform, world, browser_context):
    browser_context.clear_cookies()
    page = browser_context.new_page()
    sign_in(page, platform.base, world["reviewer"])
    departments = {r.get_attribute("data-department") for r in page.locator("table.league tbody tr[data-department]").all()}
    assert departments <= {"LD-WJJ"}
    assert SILENT not in departments
    page.goto(f"{platform.base}/console/desk")
    assert page.locator("h1").inner_text() == "无法完成"
    page.close()


def test_the_clerk_files_a_walk_in_for_a_person_with_no_account(platform, world, browser_context, shots):
    """窗口代录: a person with no account hands the clerk an ID card. A name the population registry does not hold
    for that number is refused beside the name input, in Chinese; with the right name the desk files, records the
    signature capture, submits and accepts, and the receipt slip (HTML and PDF) carries the claim code."""
    path = world["path"]
    suffix = uuid.uuid4().hex[:4]
    visitor = Actor(f"黄伯{suffix}", citizen_id("19520304", path.rng), "unused-" + suffix)
    expect(path.http.post("/datashare/v1/registries/population/imports", headers=path.admin_headers, json=[
        {"id_number": visitor.id_number, "name": visitor.name, "address": "罗定市罗城街道河堤路3号"}]), 200)
    items = expect(path.http.get("/catalog/v1/items", params={"limit": 200}), 200)["items"]
    code = next(i["code"] for i in items if i["name"] == "临时居民身份证申领")
    item = expect(path.http.get(f"/catalog/v1/items/{code}"), 200)
    centre = clerk(path, CENTRE)
    browser_context.clear_cookies()
    page = browser_context.new_page()
    sign_in(page, platform.base, centre)
    page.get_by_role("link", name=re.compile("窗口代录")).click()
    page.wait_for_url("**/console/desk/walk-in")
    assert page.locator("h1").inner_text().startswith("窗口代录")
    page.select_option("#item", label="临时居民身份证申领")
    page.get_by_role("button", name="选择事项").click()
    page.wait_for_url(f"**/console/desk/walk-in?item={code}")

    def fill(name: str) -> None:
        page.fill("#name", name)
        page.fill("#id_number", visitor.id_number)
        page.fill("#phone", "13712345678")
        for f in item.get("form_fields") or []:
            value = _filled(f, visitor)
            if f.get("type") == "boolean":
                page.check(f"#f-{f['name']}")
            elif f.get("type") == "select":
                page.select_option(f"#f-{f['name']}", label=str(value))
            else:
                page.fill(f"#f-{f['name']}", str(value))
        page.check("#d-pickup")
        page.fill("#consent", f"SIGPAD-{CENTRE}-03/{suffix}")

    # Another name than the registry's for this number: refused beside the name, nothing filed.
    fill("王五" + suffix)
    page.get_by_role("button", name="代录、提交并受理").click()
    page.wait_for_load_state()
    error = page.locator("#err-person-name")
    assert "人口库" in error.inner_text(), page.locator("main").inner_text()
    assert "registry" not in error.inner_text()  # the Chinese half of a bilingual message
    assert page.locator("#name").get_attribute("aria-invalid") == "true"
    assert page.locator("#id_number").input_value() == visitor.id_number  # what was typed stays
    page.screenshot(path=str(shots / "desk-walk-in.png"), full_page=True)

    fill(visitor.name)
    sent = page.evaluate("Object.fromEntries(new FormData(document.querySelector('form.walk-in')))")
    page.get_by_role("button", name="代录、提交并受理").click()
    page.wait_for_selector("section.walk-in-result")
    result = page.locator("section.walk-in-result")
    receipt = result.locator("dd.receipt-number").inner_text().strip()
    assert receipt.startswith(code), result.inner_text()
    claim = result.locator("dd.claim-code b").inner_text().strip()
    assert claim and "新开账户" in result.inner_text()
    page.screenshot(path=str(shots / "desk-walk-in-accepted.png"), full_page=True)
    found = expect(path.http.get("/intake/v1/queue", headers=centre.headers, params={"receipt_number": receipt}), 200)
    app = expect(path.http.get(f"/intake/v1/applications/{found['items'][0]['id']}", headers=centre.headers), 200)
    assert app["status"] not in ("draft", "submitted") and app["accepted_at"]
    assert app["channel"] == "window" and app["applicant"]["name"] == visitor.name
    assert app["walk_in"]["consent"], app["walk_in"]
    assert STATUS_SHOWN[app["status"]] in result.locator("dd.status").inner_text()
    assert result.locator("h2").inner_text().startswith("已受理")

    page.get_by_role("link", name="打印（网页）").click()
    page.wait_for_url(f"**/console/desk/applications/{app['id']}/receipt-slip")
    slip = page.locator("body").inner_text()
    assert receipt in slip and claim in slip
    pdf = browser_context.request.get(f"{platform.base}/console/desk/applications/{app['id']}/receipt-slip?format=pdf")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    # The same form sent again (a refresh, a double click) files nothing new: it shows the first filing.
    again = browser_context.request.post(f"{platform.base}/console/desk/walk-in", form=sent)
    assert again.status == 200 and receipt in again.text()
    # The code on the slip claims the account the window opened, whose one application is this one.
    visitor.password = "harbour-lantern-" + suffix
    expect(path.http.post("/identity/v1/people/claims", json={
        "id_number": visitor.id_number, "name": visitor.name, "claim_code": claim, "password": visitor.password}), 200)
    visitor.token = path.login(visitor.id_number, visitor.password)
    mine = expect(path.http.get("/intake/v1/me/applications", headers=visitor.headers), 200)["items"]
    assert [a["id"] for a in mine] == [app["id"]]
    page.close()
