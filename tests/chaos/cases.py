"""Driving many cases through the public API at once, the way applicants do: the setup (admin, catalogue,
one company and its agent) is the demo's own (`deploy.demo.HappyPath`); each case is then a draft, its
materials and a submission with an Idempotency-Key, retried through crashes by a `Patient` client."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import date, timedelta
from typing import Any

from deploy.demo import FOOD_PERMIT_TYPE, PDF, HappyPath, expect
from tests.chaos.harness import Patient

FINAL = ("delivered", "closed")


def prepared(base: str, admin: dict[str, str], seed: int) -> HappyPath:
    path = HappyPath(base, admin["username"], admin["password"], say=lambda _m: None, seed=seed)
    path.admin_and_catalogue()
    path.people_and_company()
    return path


def form(path: HappyPath, i: int) -> dict[str, Any]:
    return {"item_code": path.facts["permit"]["code"], "channel": "online", "service_point": "LD-CENTRE",
            "form": {"business_name": path.company_name, "business_address": f"罗定市罗城街道兴华路{i}号",
                     "business_scope": "热食类食品制售", "phone": "13800138000"}}


async def draft(p: Patient, path: HappyPath, tag: str, i: int) -> str:
    """A complete draft (materials uploaded and a commitment), not yet submitted."""
    h = path.agent.headers
    r = await p.call("POST", "/intake/v1/applications", json=form(path, i),
                     headers={**h, "Idempotency-Key": f"{tag}-create-{i}"}, ok=(201,),
                     retry_on=(409, 500, 502, 503, 504))  # 409: our own earlier attempt still in flight
    app_id = r.json()["id"]
    for code in ("floor_plan", "legal_rep_id"):
        await p.call("POST", f"/intake/v1/applications/{app_id}/materials", headers=h, ok=(201,),
                     data={"material_code": code}, files={"file": (f"{code}.pdf", PDF, "application/pdf")})
    await p.call("POST", f"/intake/v1/applications/{app_id}/materials", headers=h, ok=(201,), json={
        "material_code": "food_safety_commitment", "kind": "commitment", "statement": "本单位承诺已完成食品安全自查。"})
    return app_id


async def submit(p: Patient, path: HappyPath, app_id: str, key: str) -> dict[str, Any]:
    # 409 idempotency-in-flight: a first attempt died after claiming the key (it is taken over after two
    # minutes, shared/idempotency.py STALE_AFTER, hence the budget); 422: datashare was down while the business
    # licence was fetched. Both are tried again.
    r = await p.call("POST", f"/intake/v1/applications/{app_id}/submit",
                     headers={**path.agent.headers, "Idempotency-Key": key}, ok=(200, 201),
                     retry_on=(409, 422, 500, 502, 503, 504), budget=150)
    return r.json()


async def wait_final(p: Patient, path: HappyPath, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Poll until every application is delivered; returns the last view of each."""
    deadline = time.monotonic() + timeout
    last: dict[str, dict[str, Any]] = {}
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        for app_id in list(pending):
            r = await p.call("GET", f"/intake/v1/applications/{app_id}", headers=path.agent.headers, ok=(200,))
            last[app_id] = r.json()
            if last[app_id]["status"] in FINAL:
                pending.remove(app_id)
        if pending:
            await asyncio.sleep(1)
    return last


async def exactly_once(p: Patient, path: HappyPath, ids: list[str], tally: Counter[str] | None = None) -> list[str]:
    """Everything that happened more (or less) than once per case; empty when all is well. `tally`, when given,
    counts what was looked at (certificates, tasks, timeline steps, clocks), for the test's figures."""
    seen: Counter[str] = Counter() if tally is None else tally
    h = path.agent.headers
    problems: list[str] = []
    wanted = set(ids)
    certs: Counter[str] = Counter()
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await p.call("GET", "/datashare/v1/me/certificates", headers=h, params=params, ok=(200,))).json()
        certs.update(c["application_id"] for c in page["items"] if c["type_code"] == FOOD_PERMIT_TYPE)
        cursor = page.get("next_cursor")
        if not cursor:
            break
    seen["cases"] += len(ids)
    seen["food_permits"] += sum(certs[a] for a in ids)
    for app_id in ids:
        if certs[app_id] != 1:
            problems.append(f"{app_id}: {certs[app_id]} certificates")
    for app_id in ids:
        case = (await p.call("GET", f"/workflow/v1/cases/{app_id}", headers=h, ok=(200,))).json()
        if case.get("outcome") != "approved":
            problems.append(f"{app_id}: workflow outcome {case.get('outcome')!r}")
        for stage in case["stages"]:
            depts = Counter(t["department"] for t in stage["tasks"])
            dupes = {d: n for d, n in depts.items() if n > 1}
            if dupes:
                problems.append(f"{app_id}: stage {stage.get('key')} has duplicate tasks {dupes}")
            if any(t.get("outcome") is None for t in stage["tasks"]):
                problems.append(f"{app_id}: stage {stage.get('key')} has an undecided task")
        app = (await p.call("GET", f"/intake/v1/applications/{app_id}", headers=h, ok=(200,))).json()
        steps = Counter(t["step"] for t in app["timeline"])
        once = {"decision": steps["审批通过"] + steps["审批不予许可"],
                "certificate issued": sum(n for s, n in steps.items() if s.startswith("电子证照已签发")),
                "delivery": steps["电子证照送达"]}
        for what, n in once.items():
            if n != 1:
                problems.append(f"{app_id}: {n} × {what} in the timeline {dict(steps)}")
        tasks = sum(len(stage["tasks"]) for stage in case["stages"])
        seen["tasks"] += tasks
        seen["tasks_decided"] += sum(t.get("outcome") is not None for stage in case["stages"] for t in stage["tasks"])
        seen["department_approvals_in_timeline"] += steps["部门审查通过"]
        seen["decisions_in_timeline"] += once["decision"]
        seen["certificates_issued_in_timeline"] += once["certificate issued"]
        seen["deliveries_in_timeline"] += once["delivery"]
        if steps["部门审查通过"] != tasks:
            problems.append(f"{app_id}: {steps['部门审查通过']} department approvals in the timeline for {tasks} tasks")
        clock = (await p.call("GET", f"/efficacy/v1/clocks/{app_id}", headers=h, ok=(200,))).json()
        if clock["application"]["state"] != "stopped":
            problems.append(f"{app_id}: clock {clock['application']['state']}")
        seen["clocks_stopped"] += clock["application"]["state"] == "stopped"
        task_clocks = Counter((t.get("department"), t.get("task_id")) for t in clock.get("tasks", []))
        seen["task_clocks"] += len(task_clocks)
        if any(n > 1 for n in task_clocks.values()):
            problems.append(f"{app_id}: duplicate task clocks {task_clocks}")
    # A finished case carries no card, today or long after its deadline, however often events were redelivered.
    admin = path.admin_headers
    for day in (date.today(), date.today() + timedelta(days=90)):
        cards = (await p.call("GET", "/efficacy/v1/cards", headers=admin, params={"as_of": day.isoformat()},
                              ok=(200,))).json()["items"]
        mine = [c for c in cards if c["application_id"] in wanted]
        seen["cards_on_finished_cases"] += len(mine)
        if mine:
            problems.append(f"cards on finished cases as of {day}: {mine[:3]}")
    return problems


__all__ = ["FINAL", "draft", "exactly_once", "expect", "form", "prepared", "submit", "wait_final"]
