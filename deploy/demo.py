"""`make demo`: the happy path the platform exists for, step by step, against a running `make run`.

The same steps are the end-to-end test (`tests/e2e/test_happy_path.py`), which asserts on what each step
returns; here they print what happens in plain words. Everything goes through the public REST API on the
gateway; the departments are played by the simulator."""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from stdnum.cn import ric, uscc

RESTAURANT = "开办餐饮店"
FOOD_PERMIT_TYPE = "11441781MB0000001A002"
BUSINESS_LICENCE_TYPE = "11441781MB0000001A001"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def citizen_id(birth: str, rng: random.Random) -> str:
    """A valid citizen ID number of Luoding (445381) for a birth date (GB 11643, MOD 11-2 check)."""
    body = f"445381{birth}{rng.randint(100, 999)}"
    return body + ric.calc_check_digit(body + "0")


def credit_code(rng: random.Random) -> str:
    """A valid unified social credit code of a Luoding company (GB 32100)."""
    body = "91445381MA5" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(6))
    return body + uscc.calc_check_digit(body)


class StepFailed(AssertionError):
    pass


def expect(r: httpx.Response, *codes: int) -> Any:
    if r.status_code not in codes:
        raise StepFailed(f"{r.request.method} {r.request.url.path} → {r.status_code}: {r.text[:600]}")
    return r.json() if r.content and r.headers.get("content-type", "").endswith("json") else r.text


@dataclass
class Actor:
    name: str
    id_number: str
    password: str
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class LiveStream:
    """What a front end does to show progress live: it follows its user's Server-Sent Events stream through the
    gateway (with `fetch` in a browser; here in a thread) and records each step as it arrives."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.events: list[dict[str, Any]] = []
        self.status: int | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="yimen-live-stream", daemon=True)

    def start(self, timeout: float = 30) -> LiveStream:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while self.status is None and self.error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.status != 200:
            raise StepFailed(f"the live stream did not open: {self.status or self.error}")
        return self

    def stop(self) -> None:
        self._stop.set()

    def steps(self) -> list[str]:
        return [e["event"] for e in self.events]

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        try:
            with httpx.Client(base_url=self.base, timeout=httpx.Timeout(10, read=60)) as c, \
                    c.stream("GET", "/notify/v1/me/stream", headers=headers) as r:
                self.status = r.status_code
                event: dict[str, Any] = {}
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if line == "":
                        if "data" in event:
                            event["data"] = json.loads(event["data"])
                            event["received_at"] = time.monotonic()
                            self.events.append(event)
                        event = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        event[name] = value.lstrip(" ")
        except httpx.HTTPError as exc:
            self.error = repr(exc)


@dataclass
class HappyPath:
    base: str
    admin_username: str
    admin_password: str
    say: Callable[[str], None] = print
    seed: int | None = None
    http: httpx.Client = field(init=False)
    rng: random.Random = field(init=False)
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base, timeout=30)
        self.rng = random.Random(self.seed)

    # ---- helpers -------------------------------------------------------------------------------------------
    def login(self, username: str, password: str, **extra: str) -> str:
        data = {"grant_type": "password", "username": username, "password": password, **extra}
        return expect(self.http.post("/identity/v1/token", data=data), 200)["access_token"]

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise StepFailed(f"timed out waiting for {what}")
            time.sleep(0.25)

    def application(self, actor: Actor, app_id: str) -> dict[str, Any]:
        return expect(self.http.get(f"/intake/v1/applications/{app_id}", headers=actor.headers), 200)

    # ---- 1. admin and catalogue ---------------------------------------------------------------------------
    def admin_and_catalogue(self) -> dict[str, Any]:
        self.admin = self.login(self.admin_username, self.admin_password)
        self.admin_headers = {"Authorization": f"Bearer {self.admin}"}
        events = self.wait_for("the demo catalogue", lambda: expect(self.http.get("/catalog/v1/life-events"), 200))
        life = next(e for e in events if e["name"] == RESTAURANT)
        permit_code = next(i["code"] for i in life["items"] if i["name"] == "食品经营许可")
        item = expect(self.http.get(f"/catalog/v1/items/{permit_code}"), 200)
        parallel = next(s for s in item["process"]["steps"] if s["kind"] == "parallel")
        items = expect(self.http.get("/catalog/v1/items", params={"limit": 200}), 200)["items"]
        change = next(i["code"] for i in items if i["name"] == "食品经营许可变更")
        self.facts.update(permit=item, parallel=parallel, change_item=change)
        self.say(f"1. Admin signed in. The catalogue has {len(items)} published items; the life event {RESTAURANT} "
                 f"groups {len(life['items'])} of them. 食品经营许可 ({permit_code}) is approved in parallel by "
                 f"{', '.join(parallel['departments'])} (lead {parallel['lead_department']}).")
        return item

    # ---- 2. people and a company --------------------------------------------------------------------------
    def people_and_company(self) -> None:
        suffix = uuid.uuid4().hex[:4]
        self.agent = Actor(f"陈小明{suffix}", citizen_id("19900101", self.rng), "correct-horse-" + suffix)
        self.owner = Actor(f"李老板{suffix}", citizen_id("19850505", self.rng), "battery-staple-" + suffix)
        self.company = credit_code(self.rng)
        self.company_name = f"罗定市好味道餐饮有限公司{suffix}"
        # The public-security bureau and the market regulator keep the base registries; their imports are played
        # here by the admin. Registration is matched against them (实名核验).
        expect(self.http.post("/datashare/v1/registries/population/imports", headers=self.admin_headers, json=[
            {"id_number": who.id_number, "name": who.name, "address": "罗定市罗城街道兴华路1号"}
            for who in (self.agent, self.owner)]), 200)
        expect(self.http.post("/datashare/v1/registries/legal-persons/imports", headers=self.admin_headers, json=[{
            "credit_code": self.company, "name": self.company_name, "legal_representative": self.owner.name,
            "legal_representative_id": self.owner.id_number, "entity_type": "有限责任公司", "status": "存续"}]), 200)
        levels = []
        for who, phone in ((self.agent, "13800138000"), (self.owner, "13900139000")):
            levels.append(expect(self.http.post("/identity/v1/people", json={
                "name": who.name, "id_number": who.id_number, "phone": phone, "password": who.password}), 201)[
                "assurance_level"])
        self.facts["assurance_levels"] = levels
        self.owner.token = self.login(self.owner.id_number, self.owner.password)
        expect(self.http.post("/identity/v1/organisations", headers=self.owner.headers, json={
            "name": self.company_name, "credit_code": self.company,
            "legal_representative_id_number": self.owner.id_number}), 201)
        expect(self.http.post(f"/identity/v1/organisations/{self.company}/agents", headers=self.owner.headers,
                              json={"id_number": self.agent.id_number}), 201)
        self.agent.token = self.login(self.agent.id_number, self.agent.password, organisation=self.company)
        # The market regulator registered the company earlier: its business licence is an e-certificate.
        expect(self.http.post("/datashare/v1/certificates", headers=self.admin_headers, json={
            "type_code": BUSINESS_LICENCE_TYPE, "holder_id": self.company, "holder_kind": "organisation",
            "holder_name": self.company_name,
            "fields": {"name": self.company_name, "legal_representative": self.owner.name}}), 201)
        self.say(f"2. {self.agent.name} and {self.owner.name} registered; the population registry matched both "
                 f"(实名核验 level {min(levels)}). {self.owner.name}, whom the legal-person registry names as legal "
                 f"representative, registered the company {self.company} and appointed {self.agent.name} as its agent "
                 "(经办人). The company's business licence is held as an e-certificate.")

    # ---- 2b. a self-registered account may draft but not submit ---------------------------------------------
    def unverified_is_refused(self) -> dict[str, Any]:
        suffix = uuid.uuid4().hex[:4]
        walker = Actor(f"王自助{suffix}", citizen_id("19950606", self.rng), "quiet-river-bend-" + suffix)
        # Not in the population registry (say, a number assigned elsewhere and not yet shared): level 1.
        person = expect(self.http.post("/identity/v1/people", json={
            "name": walker.name, "id_number": walker.id_number, "phone": "13700137000", "password": walker.password}),
            201)
        walker.token = self.login(walker.id_number, walker.password)
        items = expect(self.http.get("/catalog/v1/items", params={"limit": 200}), 200)["items"]
        permit = next(i["code"] for i in items if i["name"] == "居住证申领")
        app = expect(self.http.post("/intake/v1/applications", headers=walker.headers, json={
            "item_code": permit, "channel": "online", "service_point": "LD-CENTRE",
            "form": {"applicant_name": walker.name, "phone": "13700137000"}}), 201)
        refusal = expect(self.http.post(f"/intake/v1/applications/{app['id']}/submit", headers=walker.headers), 403)
        self.say(f"2b. {walker.name} registered with a number the population registry does not hold: level "
                 f"{person['assurance_level']} ({person['assurance_note']}). The draft is kept, but submitting is "
                 f"refused: {refusal['detail']}")
        return {"person": person, "application": app, "refusal": refusal}

    # ---- 3. what is needed --------------------------------------------------------------------------------
    def draft_and_check(self) -> dict[str, Any]:
        item = self.facts["permit"]
        app = expect(self.http.post("/intake/v1/applications", headers=self.agent.headers, json={
            "item_code": item["code"], "channel": "online", "service_point": "LD-CENTRE",
            "form": {"business_name": self.company_name, "business_address": "罗定市罗城街道兴华路1号",
                     "business_scope": "热食类食品制售", "phone": "13800138000"}}), 201)
        self.app_id = app["id"]
        notice = expect(self.http.post(f"/intake/v1/applications/{self.app_id}/check", headers=self.agent.headers), 200)
        fetched = [m["name"] for m in notice["materials"] if m.get("provided") == "fetched"]
        self.facts["fetched_codes"] = [m["code"] for m in notice["materials"] if m.get("provided") == "fetched"]
        self.say(f"3. One answer lists everything still needed ({len(notice['problems'])} items): "
                 + "; ".join(p["message"] for p in notice["problems"])
                 + f". Fetched by the system, not asked: {', '.join(fetched)}.")
        return notice

    # ---- 4. submit ----------------------------------------------------------------------------------------
    def complete_and_submit(self) -> tuple[dict[str, Any], dict[str, Any]]:
        # Only what the system could not fetch is uploaded.
        for code in [c for c in ("floor_plan", "legal_rep_id") if c not in self.facts.get("fetched_codes", [])]:
            expect(self.http.post(
                f"/intake/v1/applications/{self.app_id}/materials", headers=self.agent.headers,
                data={"material_code": code, "sha256": hashlib.sha256(PDF).hexdigest()},
                files={"file": (f"{code}.pdf", PDF, "application/pdf")}), 201)
        expect(self.http.post(f"/intake/v1/applications/{self.app_id}/materials", headers=self.agent.headers, json={
            "material_code": "food_safety_commitment", "kind": "commitment",
            "statement": "本单位承诺已按要求完成食品安全自查，如有不实愿承担相应责任。"}), 201)
        key = {"Idempotency-Key": f"submit-{self.app_id}"}
        first = expect(self.http.post(f"/intake/v1/applications/{self.app_id}/submit",
                                      headers={**self.agent.headers, **key}), 200, 201)
        second = expect(self.http.post(f"/intake/v1/applications/{self.app_id}/submit",
                                       headers={**self.agent.headers, **key}), 200, 201)
        self.receipt, self.code = first["receipt_number"], first["verification_code"]
        self.say(f"4. Submitted twice with one Idempotency-Key: one application, receipt number {self.receipt} "
                 f"(status {first['status']}).")
        return first, second

    # ---- 5. parallel approval with a correction -----------------------------------------------------------
    def parallel_approval(self) -> dict[str, Any]:
        def awaiting() -> Any:
            a = self.application(self.agent, self.app_id)
            return a if a["status"] == "awaiting_correction" else None

        app = self.wait_for("the correction request", awaiting)
        self.say(f"5a. {self.facts['correcting_department']} asked for a correction (补正); the clock pauses: "
                 + "; ".join(str(n.get("message", n)) for n in app.get("notice", [])))
        def paused() -> Any:
            r = self.http.get(f"/efficacy/v1/clocks/{self.app_id}", headers=self.agent.headers)
            # The application's clock is null until efficacy has applied the acceptance (it follows the events).
            state = (r.json().get("application") or {}).get("state") if r.status_code == 200 else None
            return state if state == "paused" else None

        # Efficacy hears of the correction on its own; give it the moment the event takes.
        self.facts["clock_paused"] = self.wait_for("the clock to pause", paused, timeout=20)
        expect(self.http.post(
            f"/intake/v1/applications/{self.app_id}/materials", headers=self.agent.headers,
            data={"material_code": "floor_plan"},
            files={"file": ("floor_plan_v2.pdf", PDF + b"% corrected\n", "application/pdf")}), 201)
        expect(self.http.post(f"/intake/v1/applications/{self.app_id}/corrections", headers=self.agent.headers,
                              json={}), 200, 201, 202)
        self.say("5b. The agent answered the correction; the task reopened and the clock resumed.")

        def delivered() -> Any:
            a = self.application(self.agent, self.app_id)
            return a if a["status"] in ("delivered", "closed") else None

        app = self.wait_for("approval, the e-certificate and delivery", delivered, timeout=90)
        case = expect(self.http.get(f"/workflow/v1/cases/{self.app_id}", headers=self.agent.headers), 200)
        self.facts["case"] = case
        cert = app["result"]["certificate_number"]
        self.say(f"5c. All {len(self.facts['parallel']['departments'])} departments approved; the stage completed "
                 f"once; the decision is {case['outcome']}; e-certificate {cert} was issued and delivered "
                 "electronically.")
        return app

    # ---- live progress and messages (notify) --------------------------------------------------------------
    def follow_live(self) -> LiveStream:
        """The agent's app opens the live stream before anything happens; the agent chose no quiet hours, so
        the demo shows the SMS at any hour (by default 22:00–08:00 hold them till morning)."""
        expect(self.http.put("/notify/v1/me/preferences", headers=self.agent.headers, json={"quiet_hours": None}),
               200)
        self.live = LiveStream(self.base, self.agent.token).start()
        return self.live

    def notifications(self) -> dict[str, Any]:
        """The SMS the applicant received at acceptance, at the correction request and at delivery (read back
        from the simulator's sandbox gateway), and the steps the live stream received as they happened."""
        wanted = ("application_accepted", "correction_requested", "application_delivered")

        def told() -> Any:
            items = expect(self.http.get("/notify/v1/me/notifications", headers=self.agent.headers,
                                         params={"limit": 100}), 200)["items"]
            mine = {i["kind"]: i for i in items if i["application_id"] == self.app_id}
            sms = {k: next((c for c in mine[k]["channels"] if c["channel"] == "sms"), None)
                   for k in wanted if k in mine}
            return sms if len(sms) == 3 and all(c and c["status"] == "delivered" for c in sms.values()) else None

        sms = self.wait_for("the SMS at acceptance, correction and delivery", told, timeout=60)
        received = {}
        for kind, channel in sms.items():
            got = expect(self.http.get("/simulator/v1/sms", params={"reference": channel["message_id"]}), 200)
            received[kind] = got["items"][0]
        self.wait_for("the delivered step on the live stream", lambda: "delivered" in self.live.steps())
        self.live.stop()
        steps = self.live.steps()
        shown = " → ".join(f"{s}×{n}" if n > 1 else s for s, n in _runs(steps))
        self.say(f"5d. Told without asking (通知推送): the SMS gateway delivered to {received[wanted[0]]['to']} "
                 + "; ".join(f"at {label}: {received[k]['content']}" for k, label in zip(
                     wanted, ("acceptance", "the correction request", "delivery"), strict=True))
                 + f". The agent's app followed the case live (SSE through the gateway): {len(steps)} steps, "
                 f"{shown}.")
        return {"sms": received, "steps": steps, "events": self.live.events}

    # ---- 6. transparency ----------------------------------------------------------------------------------
    def transparency(self) -> dict[str, Any]:
        app = self.application(self.agent, self.app_id)
        public = expect(self.http.get(f"/intake/v1/status/{self.receipt}", params={"code": self.code}), 200)
        log = expect(self.http.get("/datashare/v1/me/access-log", headers=self.agent.headers), 200)["items"]
        self.say(f"6. The timeline has {len(app['timeline'])} steps in time order, each with its code and unit by name; "
                 "the public status by "
                 f"receipt number shows '{public['status']}' and no personal data; the access log lists "
                 f"{len(log)} reads of the company's data, each with its purpose (application {self.app_id[:8]}…). "
                 "Who held it (谁在办): " + ("; ".join(who_holds(app["timeline"])) or "no named handler") + ".")
        return {"application": app, "public": public, "access_log": log}

    # ---- 7. rating, figures, clock ------------------------------------------------------------------------
    def rating_and_figures(self) -> dict[str, Any]:
        rating = expect(self.http.post("/efficacy/v1/ratings", headers=self.agent.headers, json={
            "application_id": self.app_id, "level": "very_satisfied", "comment": "全程网办，很方便"}), 201)
        # Efficacy counts its figures by China's day, which starts eight hours before UTC's.
        today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()

        def caught_up() -> Any:
            """Today's figures and the case's clock once efficacy has applied the decision and the delivery (it
            follows the events a moment behind the case's own view): the clock stopped, the case completed online."""
            clock = expect(self.http.get(f"/efficacy/v1/clocks/{self.app_id}", headers=self.agent.headers), 200)
            if (clock.get("application") or {}).get("state") != "stopped":
                return None
            kpis = expect(self.http.get("/efficacy/v1/kpis", params={"from": today, "to": today}), 200)
            done = {f["key"]: f for f in kpis.get("figures", [])}.get("online_completion_rate", {})
            return (kpis, clock) if (done.get("numerator") or 0) >= 1 else None

        kpis, clock = self.wait_for("the decision and the delivery in efficacy", caught_up)
        figures = "; ".join(
            f"{f['name']} {f['value']:.0%} (target {f['target']:.0%})"
            for f in kpis.get("figures", []) if f.get("value") is not None and f.get("target") is not None
        )
        self.say(f"7. Rated very satisfied. The clock stopped after {clock['application']['elapsed_workdays']} "
                 f"working days. Today's figures: {figures}.")
        return {"rating": rating, "kpis": kpis, "clock": clock}

    # ---- 8. reuse -----------------------------------------------------------------------------------------
    def reuse(self) -> dict[str, Any]:
        change = self.facts["change_item"]
        prefill = expect(self.http.get("/intake/v1/me/prefill", params={"item_code": change},
                                       headers=self.agent.headers), 200)
        app = expect(self.http.post("/intake/v1/applications", headers=self.agent.headers, json={
            "item_code": change, "channel": "online", "service_point": "LD-CENTRE",
            "form": prefill.get("form", {})}), 201)
        notice = expect(self.http.post(f"/intake/v1/applications/{app['id']}/check", headers=self.agent.headers), 200)
        fetched = [m for m in notice["materials"] if m.get("provided") == "fetched"]
        self.say(f"8. A second application (食品经营许可变更) starts prefilled; the new food business permit is "
                 f"fetched as an e-certificate ({len(fetched)} material(s) fetched, none uploaded).")
        return {"prefill": prefill, "notice": notice}

    # ---- 9. yellow and red cards --------------------------------------------------------------------------
    def cards(self, silent_department: str) -> dict[str, Any]:
        item = self.facts["permit"]
        app = expect(self.http.post("/intake/v1/applications", headers=self.agent.headers, json={
            "item_code": item["code"], "channel": "online", "service_point": "LD-CENTRE",
            "form": {"business_name": self.company_name, "business_address": "罗定市素龙街道2号",
                     "business_scope": "饮品制售", "phone": "13800138000"}}), 201)
        for code in ("floor_plan", "legal_rep_id"):
            expect(self.http.post(f"/intake/v1/applications/{app['id']}/materials", headers=self.agent.headers,
                                  data={"material_code": code}, files={"file": (f"{code}.pdf", PDF, "application/pdf")}),
                   201)
        expect(self.http.post(f"/intake/v1/applications/{app['id']}/materials", headers=self.agent.headers, json={
            "material_code": "food_safety_commitment", "kind": "commitment", "statement": "承诺"}), 201)
        expect(self.http.post(f"/intake/v1/applications/{app['id']}/submit", headers=self.agent.headers), 200, 201)

        def clock() -> Any:
            """The case's clocks once efficacy has applied the others' decisions too (it follows workflow's events,
            a moment behind workflow's own view): their task clocks stopped, the silent one's still running."""
            r = self.http.get(f"/efficacy/v1/clocks/{app['id']}", headers=self.agent.headers)
            if r.status_code != 200:
                return None
            tasks = r.json()["tasks"]
            others = [t for t in tasks if t["department"] != silent_department]
            ready = r.json()["application"] is not None and others and all(t["state"] == "stopped" for t in others)
            return r.json() if ready else None

        def others_decided() -> bool:
            r = self.http.get(f"/workflow/v1/cases/{app['id']}", headers=self.agent.headers)
            if r.status_code != 200:
                return False
            tasks = [t for st in r.json()["stages"] for t in st["tasks"]]
            return bool(tasks) and all(t["outcome"] for t in tasks if t["department"] != silent_department)

        self.wait_for("the other departments' decisions", others_decided)
        c = self.wait_for("the clock of the silent case", clock)
        deadline = date.fromisoformat(c["application"]["deadline_on"])
        yellow_day, red_day = deadline - timedelta(days=1), deadline + timedelta(days=3)
        cards = {}
        for colour, day in (("yellow", yellow_day), ("red", red_day)):
            forecast = expect(self.http.get("/efficacy/v1/cards", headers=self.admin_headers,
                                            params={"as_of": day.isoformat()}), 200)
            cards[colour] = [x for x in forecast["items"] if x["application_id"] == app["id"]]
        expect(self.http.post("/efficacy/v1/cards/evaluation", headers=self.admin_headers,
                              params={"as_of": red_day.isoformat()}), 200)
        supervision = expect(self.http.get("/efficacy/v1/supervision", headers=self.admin_headers), 200)
        def colours(found: list[dict[str, Any]]) -> str:
            return ", ".join(f"{x['colour']} ({'task ' + x['department'] if x.get('task_id') else 'case'})"
                             for x in found)

        self.say(f"9. {silent_department} never answers. Forecast for {yellow_day}: {colours(cards['yellow'])}; "
                 f"for {red_day}: {colours(cards['red'])}; supervision (督办) items open: {len(supervision['items'])}.")
        return {"application": app, "clock": c, "cards": cards, "supervision": supervision}


# ---- 10. at the counter and after (#15): receipt slip, fee, a result collected in a town ----------------------
CENTRE, TOWN = "LD-CENTRE", "LD-LC"


def _filled(field: dict[str, Any], person: Actor) -> Any:
    """A plausible value for a form field of any type (the demo fills forms it has never seen)."""
    kind = field.get("type", "text")
    return {"number": 1, "integer": 1, "boolean": True, "date": date.today().isoformat(), "phone": "13900139000",
            "id_number": person.id_number, "address": "罗定市罗城街道城中路8号",
            "select": (field.get("options") or ["其他"])[0]}.get(kind, person.name)


def clerk(path: HappyPath, point: str, *, name: str | None = None, office_phone: str | None = None,
          unit: str | None = None) -> Actor:
    """A window clerk (综合窗口) at `point`, created by the admin; their point comes from this staff record, and
    the office phone and unit, when given, are what applicants see beside their name (谁在办)."""
    suffix = uuid.uuid4().hex[:6]
    who = Actor(name or f"窗口{point}{suffix}", f"clerk.{point.lower()}.{suffix}", "window-pass-" + suffix)
    extra = {k: v for k, v in (("office_phone", office_phone), ("unit", unit)) if v}
    expect(path.http.post("/identity/v1/staff", headers=path.admin_headers, json={
        "username": who.id_number, "name": who.name, "password": who.password, "roles": ["window_clerk"],
        "department": "LD-ZSJ", "service_point": point, **extra}), 201)
    who.token = path.login(who.id_number, who.password)
    return who


def staff(path: HappyPath, role: str, department: str | None = None, point: str | None = None) -> Actor:
    """A staff member with one role (a supervisor, a department reviewer …), created by the admin."""
    suffix = uuid.uuid4().hex[:6]
    title = {"supervisor": "监察员", "department_reviewer": "审批员", "window_clerk": "窗口"}.get(role, role)
    who = Actor(f"{title}{suffix[:4]}", f"{role.replace('_', '.')}.{suffix}", "staff-pass-" + suffix)
    expect(path.http.post("/identity/v1/staff", headers=path.admin_headers, json={
        "username": who.id_number, "name": who.name, "password": who.password, "roles": [role],
        **({"department": department} if department else {}), **({"service_point": point} if point else {})}), 201)
    who.token = path.login(who.id_number, who.password)
    return who


def apply_and_hand_in(path: HappyPath, person: Actor, item_code: str, *, delivery: dict[str, Any] | None = None,
                      by: Actor | None = None) -> dict[str, Any]:
    """Draft, fill, give what the one-time notice asks for, submit; a clerk accepts where the item is not
    accepted online."""
    app = hand_in(path, person, item_code, delivery=delivery)
    if app["status"] == "submitted":
        app = expect(path.http.post(f"/intake/v1/applications/{app['id']}/accept",
                                    headers=(by or clerk(path, app["service_point"])).headers), 200)
    return app


def hand_in(path: HappyPath, person: Actor, item_code: str, *, delivery: dict[str, Any] | None = None) -> dict[str, Any]:
    """Draft, fill, give what the one-time notice asks for, submit: an item not accepted online then waits in
    the window clerks' queue (`submitted`)."""
    guide = expect(path.http.get(f"/catalog/v1/items/{item_code}/guide"), 200)
    point = CENTRE if CENTRE in guide["offered_at"] else guide["offered_at"][0]
    channel = "online" if guide["fully_online"] else "window"
    item = expect(path.http.get(f"/catalog/v1/items/{item_code}"), 200)
    form = {f["name"]: _filled(f, person) for f in item.get("form_fields") or []}
    app = expect(path.http.post("/intake/v1/applications", headers=person.headers, json={
        "item_code": item_code, "channel": channel, "service_point": point, "form": form,
        **({"delivery": delivery} if delivery else {})}), 201)
    notice = expect(path.http.post(f"/intake/v1/applications/{app['id']}/check", headers=person.headers), 200)
    allowed = {m["code"]: m for m in item.get("materials") or []}
    for problem in notice["problems"]:
        code = problem["field"].removeprefix("materials.")
        if code not in allowed:
            continue
        if allowed[code].get("commitment_allowed"):
            expect(path.http.post(f"/intake/v1/applications/{app['id']}/materials", headers=person.headers,
                                  json={"material_code": code, "kind": "commitment"}), 201)
        else:
            expect(path.http.post(f"/intake/v1/applications/{app['id']}/materials", headers=person.headers,
                                  data={"material_code": code}, files={"file": (f"{code}.pdf", PDF, "application/pdf")}), 201)
    return expect(path.http.post(f"/intake/v1/applications/{app['id']}/submit", headers=person.headers), 200)


def pay(path: HappyPath, person: Actor, app_id: str) -> dict[str, Any]:
    """The applicant pays the payment notice (缴款通知) on the payment platform (the simulator)."""
    app = path.wait_for("the payment notice", lambda: (a := path.application(person, app_id))["payment"] and a)
    notice = app["payment"]
    return expect(path.http.post("/simulator/v1/payments", json={
        "payment_code": notice["payment_code"], "amount": notice["amount"]}), 201)


def at_the_counter(path: HappyPath) -> dict[str, Any]:
    """An immediate item with a fee (临时居民身份证), handed in at the city centre and collected in a town
    (异地领取): receipt slip, payment notice, signed confirmation, the town's collection queue."""
    person = path.owner
    items = expect(path.http.get("/catalog/v1/items", params={"limit": 200}), 200)["items"]
    code = next(i["code"] for i in items if i["name"] == "临时居民身份证申领")
    centre, town = clerk(path, CENTRE), clerk(path, TOWN)
    app = apply_and_hand_in(path, person, code, delivery={"method": "pickup", "service_point": TOWN}, by=centre)
    slip = path.http.get(f"/intake/v1/applications/{app['id']}/receipt-slip", headers=centre.headers)
    pdf = path.http.get(f"/intake/v1/applications/{app['id']}/receipt-slip",
                        headers={**centre.headers, "Accept": "application/pdf"})
    unpaid = expect(path.http.get("/intake/v1/payments/unpaid", headers=centre.headers), 200)["items"]
    paid = pay(path, person, app["id"])
    retried = expect(path.http.post(f"/simulator/v1/payments/{paid['transaction_id']}/notify-again"), 200)

    def waiting() -> Any:
        queue = expect(path.http.get(f"/intake/v1/points/{TOWN}/collections", headers=town.headers), 200)["items"]
        return [c for c in queue if c["application_id"] == app["id"]]

    queued = path.wait_for("the result in the town's collection queue", waiting)
    done = expect(path.http.post(f"/intake/v1/applications/{app['id']}/deliver", headers=town.headers,
                                 json={"method": "pickup"}), 200)
    path.say(f"10. At the counter: {app['item_name']} (即办件) accepted at {CENTRE}, decided on the spot; receipt slip "
             f"{app['receipt_number']} printed as HTML ({len(slip.text)} chars) and PDF ({len(pdf.content)} bytes). "
             f"Payment notice {paid['payment_code']} for {paid['amount']} 元 (the clerk's unpaid list had "
             f"{len(unpaid)}); paid on the platform, confirmed by a signed notification ({paid['intake_answer']['status']}; "
             f"the platform's retry: {retried['intake_answer']['status']}). The result waited in the collection queue "
             f"of the town point {queued[0]['service_point']} (异地领取) and its clerk handed it over: {done['status']}.")
    return {"application": app, "slip": slip, "pdf": pdf, "unpaid": unpaid, "paid": paid, "retried": retried,
            "queued": queued, "delivered": done, "centre": centre, "town": town}


# ---- 11. walk-in filing (#15): a clerk files for a person with no account, who claims it later -----------------


def who_holds(timeline: list[dict[str, Any]]) -> list[str]:
    """The timeline's 谁在办 entries as an applicant reads them: step, unit by name, handler, office phone."""
    out = []
    for t in timeline:
        if not t.get("staff_name"):
            continue
        unit = t.get("unit_name") or t["unit"]
        # A department system is named after its department: the unit is not repeated.
        who = t["staff_name"] if unit in t["staff_name"] else f"{t['staff_name']}（{unit}）"
        out.append(f"{t['step']}: {who} {t.get('staff_contact') or ''}".rstrip())
    return out


def walk_in_at_the_counter(path: HappyPath) -> dict[str, Any]:
    """窗口代录: an elderly person without an account comes to the city centre with their ID card for a temporary
    ID card (即办件, 10 元). The clerk files, completes, records consent (a signature capture), submits and accepts
    for them, and prints the slip with the account's claim code. At home the person claims the account, sees the
    case, pays on the payment platform; the result waits at the town point, whose clerk hands it over."""
    suffix = uuid.uuid4().hex[:4]
    visitor = Actor(f"黄伯{suffix}", citizen_id("19520304", path.rng), "harbour-lantern-" + suffix)
    expect(path.http.post("/datashare/v1/registries/population/imports", headers=path.admin_headers, json=[
        {"id_number": visitor.id_number, "name": visitor.name, "address": "罗定市罗城街道河堤路3号"}]), 200)
    items = expect(path.http.get("/catalog/v1/items", params={"limit": 200}), 200)["items"]
    code = next(i["code"] for i in items if i["name"] == "临时居民身份证申领")
    item = expect(path.http.get(f"/catalog/v1/items/{code}"), 200)
    centre = clerk(path, CENTRE, name=f"周敏{suffix}", office_phone="0766-3822101", unit="综合受理窗口")
    town = clerk(path, TOWN, name=f"梁志{suffix}", office_phone="0766-3822201", unit="罗城街道便民服务窗口")
    form = {f["name"]: _filled(f, visitor) for f in item.get("form_fields") or []}
    filed = expect(path.http.post("/intake/v1/walk-ins", headers={**centre.headers, "Idempotency-Key": f"walk-{suffix}"},
                                  json={"person": {"id_number": visitor.id_number, "name": visitor.name,
                                                   "phone": "13712345678"},
                                        "item_code": code, "form": form,
                                        "delivery": {"method": "pickup", "service_point": TOWN}}), 201)
    app, person = filed["application"], filed["person"]
    url = f"/intake/v1/applications/{app['id']}"
    # What the registries hold is fetched for the person, as it would be for them online; the rest is scanned.
    notice = expect(path.http.post(f"{url}/check", headers=centre.headers), 200)
    fetched = [m["name"] for m in notice["materials"] if m.get("provided") == "fetched"]
    allowed = {m["code"]: m for m in item.get("materials") or []}
    for problem in notice["problems"]:
        material = problem["field"].removeprefix("materials.")
        if material in allowed:
            expect(path.http.post(f"{url}/materials", headers=centre.headers, data={"material_code": material},
                                  files={"file": (f"{material}.pdf", PDF, "application/pdf")}), 201)
    refused = expect(path.http.post(f"{url}/submit", headers=centre.headers), 422)
    expect(path.http.post(f"{url}/consent", headers=centre.headers, json={
        "kind": "signature_capture", "reference": f"SIGPAD-{CENTRE}-03/{suffix}"}), 201)
    expect(path.http.post(f"{url}/submit", headers=centre.headers), 200)
    accepted = expect(path.http.post(f"{url}/accept", headers=centre.headers), 200)
    slip = path.http.get(f"{url}/receipt-slip", headers=centre.headers)
    pdf = path.http.get(f"{url}/receipt-slip", headers={**centre.headers, "Accept": "application/pdf"})
    # At home: the code on the slip, the name and the ID number claim the account the window opened.
    claimed = expect(path.http.post("/identity/v1/people/claims", json={
        "id_number": visitor.id_number, "name": visitor.name, "claim_code": person["claim_code"],
        "password": visitor.password}), 200)
    visitor.token = path.login(visitor.id_number, visitor.password)
    seen = path.application(visitor, app["id"])
    paid = pay(path, visitor, app["id"])

    def waiting() -> Any:
        queue = expect(path.http.get(f"/intake/v1/points/{TOWN}/collections", headers=town.headers), 200)["items"]
        return [c for c in queue if c["application_id"] == app["id"]]

    queued = path.wait_for("the walk-in's result at the town point", waiting)
    expect(path.http.post(f"{url}/deliver", headers=town.headers, json={"method": "pickup"}), 200)
    done = path.application(visitor, app["id"])
    holders = who_holds(done["timeline"])
    path.say(f"11. Walk-in (窗口代录): {visitor.name}, no account, hands {centre.name} at {CENTRE} an ID card; identity "
             f"opened an account (level {person['assurance_level']}, no password) and the clerk filed "
             f"{app['item_name']} for them (fetched, not asked: {', '.join(fetched) or 'nothing'}), completed it, "
             "was refused without consent "
             f"({refused['errors'][0]['field']}: {refused['errors'][0]['rule']}), recorded a signature capture, "
             f"submitted and accepted it ({accepted['status']}, receipt {accepted['receipt_number']}); the slip "
             f"({len(slip.text)} chars HTML, {len(pdf.content)} bytes PDF) carries the claim code. At home "
             f"{claimed['name']} claimed the account with it and sees the case ({seen['status']}); paid "
             f"{paid['amount']} 元 ({paid['intake_answer']['status']}); the result waited at {queued[0]['service_point']} "
             f"and {town.name} handed it over: {done['status']}. Who held the case (谁在办): " + "; ".join(holders) + ".")
    return {"filed": filed, "notice": notice, "refused": refused, "accepted": accepted, "slip": slip, "pdf": pdf, "claimed": claimed,
            "seen": seen, "paid": paid, "queued": queued, "delivered": done, "visitor": visitor, "centre": centre,
            "town": town, "holders": holders}


def _runs(steps: list[str]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for s in steps:
        if out and out[-1][0] == s:
            out[-1] = (s, out[-1][1] + 1)
        else:
            out.append((s, 1))
    return out


def factory_project(path: HappyPath, *, failing: tuple[str, str] = ("LD-XFJ", "消防车通道")) -> dict[str, Any]:
    """Issue 17: the company's agent registers a small factory (an enterprise investment project), then files one
    application per stage (一表申请); the centre accepts it once and dispatches it to every department's and service
    enterprise's item, each with its own limit; the simulator decides them; each stage gates the next. In the last
    stage (竣工验收) the departments inspect the site together (联合验收): `failing` = (department, point) fails its
    point once, the owner gets one notice, corrects, and the re-inspection covers that point only."""
    agent = path.agent
    project = expect(path.http.post("/intake/v1/projects", headers=agent.headers, json={
        "type_key": "enterprise_investment", "name": f"{path.company_name}年产 2 万吨淀粉制品生产线",
        "site": "罗定市双东街道环保工业园 A-12 地块", "land_area_m2": "26800", "total_investment_wan": "12000",
        "industry_code": "C1391"}), 201)
    pid = project["id"]
    path.say(f"P1. {agent.name} registered the project {project['project_code']} for {path.company_name}; the "
             f"negative list attached the conditions {[c['code'] for c in project['conditions']]}.")
    form = {"project_name": project["name"], "project_code": project["project_code"],
            "construction_site": project["site"], "applicant_name": agent.name, "phone": "13800138000"}
    materials = [
        {"code": "filing_commitment", "kind": "commitment", "statement": "本单位承诺项目信息真实、合法。"},
        {"code": "land_contract", "kind": "reference", "reference": "罗定国土出让〔2026〕18 号"},
        {"code": "design_scheme", "kind": "reference", "reference": "窗口收件 SJ-2026-0301"},
        {"code": "construction_drawings", "kind": "reference", "reference": "窗口收件 SGT-2026-0388"},
        {"code": "land_proof", "kind": "reference", "reference": "罗定国土出让〔2026〕18 号"},
        {"code": "drawings_review", "kind": "reference", "reference": "施工图审查合格书 SC-2026-0412"},
        {"code": "connection_commitment", "kind": "commitment", "statement": "本单位承诺按报装要求配合施工。"},
        {"code": "completion_report", "kind": "reference", "reference": "窗口收件 JG-2026-0907"},
    ]
    keys = [s["key"] for s in sorted(project["stages"], key=lambda s: s["order"])]

    def file(key: str, *codes: int) -> Any:
        return expect(path.http.post(f"/intake/v1/projects/{pid}/stages/{key}/applications", headers=agent.headers,
                                     json={"form": form, "materials": materials}), *codes)

    # 按阶段推进: no stage may be filed before the one before it has completed.
    gated = file(keys[1], 409)
    path.facts["project_gate"] = gated
    path.say(f"P1b. Filing {keys[1]} before {keys[0]} completed was refused (409 {gated['type'].rsplit('/', 1)[-1]}): "
             f"{gated['detail']}")
    dept, point = failing
    page: dict[str, Any] = project
    joint: dict[str, Any] = {}
    for key in keys:
        last = key == keys[-1]
        if last:  # the joint acceptance: one department will fail one point, once
            expect(path.http.put(f"/simulator/v1/departments/{dept}/rule", headers=path.admin_headers,
                                 json={"mode": "fail_point_once", "point": point, "delay_seconds": 0.3}), 200)
        try:
            page = file(key, 201)
            stage = next(s for s in page["stages"] if s["key"] == key)
            path.say(f"P2. Stage {stage['name']} accepted once and dispatched: "
                     + "; ".join(f"{a['department_name'] or a['department']} {a['item_name']} ({a['limit_days']} 工作日)"
                                 for a in stage["applications"]))
            if last:
                joint = _joint_acceptance(path, stage, dept, point)

            def completed(key: str = key) -> dict[str, Any] | None:
                now = expect(path.http.get(f"/intake/v1/projects/{pid}", headers=agent.headers), 200)
                return now if next(s for s in now["stages"] if s["key"] == key)["status"] == "completed" else None

            page = path.wait_for(f"stage {key} completed", completed, timeout=120)
        finally:
            if last:
                path.http.put(f"/simulator/v1/departments/{dept}/rule", headers=path.admin_headers,
                              json={"mode": "approve", "delay_seconds": 1})
        path.say(f"P3. Stage {stage['name']} completed: every department decided within its own limit.")
    page = path.wait_for("the project completed", lambda: (lambda p: p if p["status"] == "completed" else None)(
        expect(path.http.get(f"/intake/v1/projects/{pid}", headers=agent.headers), 200)), timeout=30)
    path.say(f"P5. The project page (GET /intake/v1/projects/{{id}}): {page['name']} {page['project_code']} "
             f"{page['status']}.")
    for s in page["stages"]:
        path.say(f"    {s['order']}. {s['name']} {s['status']} (总时限 {s['total_limit_days']} 工作日): "
                 + "; ".join(f"{a['item_name']} — {a['department_name'] or a['department']} "
                             f"{a['limit_days']} 日, {a['outcome']}, 经办 "
                             f"{(a['handled_by'] or [{}])[-1].get('staff_name') or '—'}" for a in s["applications"]))

    def clocked() -> dict[str, Any] | None:
        """The project clock once efficacy has applied both the project's completion and every department's
        decision: two consumers of its own (projects' events, cases' events), each a moment behind the other."""
        c = expect(path.http.get(f"/efficacy/v1/projects/{pid}/clock", headers=agent.headers), 200)
        decided = all(d["state"] == "decided" for s in c["stages"] for d in s["departments"])
        return c if c["state"] == "completed" and decided else None

    clock = path.wait_for("the project clock completed", clocked, timeout=30)
    path.say(f"P6. The project clock (GET /efficacy/v1/projects/{{id}}/clock): {clock['elapsed_days']} working days "
             f"from first acceptance to completion, {clock['government_days']} in the government's hands, "
             f"{clock['outside']['total']} outside them (owner's corrections {clock['outside']['owner_correction']}, "
             f"intermediaries {clock['outside']['intermediary']}), against {clock['total_limit_days']} allowed; "
             f"card {clock['card'] or 'none'}. Per stage: "
             + "; ".join(f"{s['stage_name']} {s['used_days']}/{s['limit_days']}" for s in clock["stages"]) + ".")
    path.facts.update(project=page, project_clock=clock, project_joint=joint)
    return page


def _joint_acceptance(path: HappyPath, stage: dict[str, Any], dept: str, point: str) -> dict[str, Any]:
    """竣工联合验收 inside the project's last stage: the lead schedules, every department inspects, `dept` fails
    `point`; one notice to the owner, who corrects; the re-inspection covers only that point and passes."""
    agent = path.agent
    app_id = next(a["application_id"] for a in stage["applications"] if a["item_name"] == "竣工联合验收")

    def awaiting() -> Any:
        a = path.application(agent, app_id)
        return a if a["status"] == "awaiting_correction" else None

    waiting = path.wait_for("the joint acceptance's deficiency notice", awaiting, timeout=90)
    review = expect(path.http.get("/workflow/v1/joint-reviews", params={"application_id": app_id},
                                  headers=agent.headers), 200)[0]
    first = review["rounds"][0]
    failed = [(o["department"], p["point"]) for o in first["opinions"] for p in o.get("failed_points") or []]
    path.say(f"P4a. 竣工联合验收: the lead {review['lead_department']} scheduled one on-site inspection "
             f"({first['mode']}, {', '.join(first['participants'])}); {dept} failed {failed}; the owner got one "
             f"notice: " + "; ".join(str(n.get("message")) for n in waiting["notice"]))
    body = PDF + b"% corrected\n"
    expect(path.http.post(f"/intake/v1/applications/{app_id}/materials", headers=agent.headers,
                          data={"material_code": "completion_report", "sha256": hashlib.sha256(body).hexdigest()},
                          files={"file": ("completion_report_v2.pdf", body, "application/pdf")}), 201)
    expect(path.http.post(f"/intake/v1/applications/{app_id}/corrections", headers=agent.headers, json={}),
           200, 201, 202)

    def passed() -> Any:
        r = expect(path.http.get(f"/workflow/v1/joint-reviews/{review['id']}", headers=agent.headers), 200)
        return r if r["state"] == "passed" else None

    review = path.wait_for("the re-inspection", passed, timeout=90)
    second = review["rounds"][-1]
    path.say(f"P4b. The owner corrected the report once; the re-inspection (round {second['number']}) covered only "
             f"{[p['point'] for p in second['points']]} with {second['participants']}: "
             f"{[(o['department'], o['verdict']) for o in second['opinions']]}; result {review['result']}.")
    return {"application_id": app_id, "notice": waiting["notice"], "review": review}


def main() -> None:
    base = os.environ.get("YIMEN_URL", f"http://127.0.0.1:{os.environ.get('YIMEN_PORT', '8000')}")
    var = Path(os.environ.get("YIMEN_VAR_DIR", "var"))
    creds = json.loads((var / "admin.json").read_text()) if (var / "admin.json").exists() else {
        "username": os.environ.get("YIMEN_ADMIN_USERNAME", "admin"), "password": os.environ["YIMEN_ADMIN_PASSWORD"]}
    path = HappyPath(base, creds["username"], creds["password"])
    http = path.http
    path.admin_and_catalogue()
    path.people_and_company()
    path.unverified_is_refused()
    correcting = "LD-WJJ"
    http.put(f"/simulator/v1/departments/{correcting}/rule", json={"mode": "correct_once", "delay_seconds": 1},
             headers=path.admin_headers)
    path.facts["correcting_department"] = correcting
    path.follow_live()
    path.draft_and_check()
    path.complete_and_submit()
    path.parallel_approval()
    http.put(f"/simulator/v1/departments/{correcting}/rule", json={"mode": "approve", "delay_seconds": 1},
             headers=path.admin_headers)
    path.notifications()
    path.transparency()
    path.rating_and_figures()
    path.reuse()
    silent = "LD-STHJJ"
    http.put(f"/simulator/v1/departments/{silent}/rule", json={"mode": "never"}, headers=path.admin_headers)
    try:
        path.cards(silent)
    finally:
        http.put(f"/simulator/v1/departments/{silent}/rule", json={"mode": "approve", "delay_seconds": 1},
             headers=path.admin_headers)
    at_the_counter(path)
    walk_in_at_the_counter(path)
    factory_project(path)
    print("Done: the whole path ran through the real services.")


if __name__ == "__main__":
    main()
