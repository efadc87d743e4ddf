"""Issue 17 through the real platform: a factory project registered by a company's agent runs all four stages,
each accepted once by the centre and dispatched to the departments and service enterprises the simulator plays,
each gating the next. In the last stage (竣工验收) the departments inspect together (联合验收): one department fails a
point, the owner gets one notice and corrects, the re-inspection covers that point only and passes, the stage and
the project complete. The project page shows who held what; the project clock counts the government's working
days with the owner's correction time apart."""

from __future__ import annotations

import pytest

from deploy.demo import HappyPath, expect, factory_project

pytestmark = pytest.mark.e2e

STAGES = ["approval_land", "construction_permit", "construction", "completion"]
FAILING, POINT = "LD-XFJ", "消防车通道"


def test_a_factory_project_runs_all_four_stages_with_a_joint_acceptance(platform):
    path = HappyPath(platform.base, platform.admin["username"], platform.admin["password"], say=lambda _m: None,
                     seed=17)
    path.admin_and_catalogue()
    path.people_and_company()
    path.wait_for("the project type at intake", lambda: expect(
        path.http.get("/catalog/v1/project-types/enterprise_investment"), 200))
    page = factory_project(path, failing=(FAILING, POINT))
    agent = path.agent

    # Stage gating: the second stage was refused while the first had not completed.
    gate = path.facts["project_gate"]
    assert gate["status"] == 409 and "previous-stage-not-completed" in gate["type"], gate

    # The project page: every stage completed, every item decided, who held each, within its own limit.
    assert page["status"] == "completed" and page["completed_at"]
    assert [s["key"] for s in page["stages"]] == STAGES
    assert all(s["status"] == "completed" and s["completed_at"] for s in page["stages"])
    for s in page["stages"]:
        assert s["applications"] and len(s["applications"]) == len(s["items"]), s
        for a in s["applications"]:
            assert a["outcome"] == "approved" and a["limit_days"] <= s["total_limit_days"], a
            # Who holds it now (the last step), and who held it along the way: the deciding department last.
            assert a["held_by"] and a["held_by"]["unit"], a
            assert a["handled_by"] and a["handled_by"][-1]["unit"] == a["department"], a
            assert all(h["staff_name"] for h in a["handled_by"]), a
    by_stage = {s["key"]: {a["item_name"]: a for a in s["applications"]} for s in page["stages"]}
    assert "施工图联合审查" in by_stage["construction_permit"]
    assert {a["department"] for a in by_stage["construction"].values()} >= {"LD-ZJJ", "QY-GS", "QY-GD", "QY-RQ",
                                                                          "QY-DX"}
    acceptance = by_stage["completion"]["竣工联合验收"]
    assert acceptance["department"] == "LD-ZJJ"
    mine = expect(path.http.get("/intake/v1/me/projects", headers=agent.headers), 200)
    assert page["id"] in [p["id"] for p in mine]

    # The joint acceptance: one notice naming the failed point; the re-inspection covered that point only.
    joint = path.facts["project_joint"]
    assert joint["application_id"] == acceptance["application_id"]
    assert joint["notice"] and all(POINT in str(n.get("message")) for n in joint["notice"]), joint["notice"]
    review = joint["review"]
    assert review["state"] == "passed" and review["result"] == "passed" and len(review["rounds"]) == 2
    first, second = review["rounds"]
    assert first["result"] == "correction_required" and sorted(first["participants"]) == sorted(review["departments"])
    assert [(o["department"], [p["point"] for p in o["failed_points"]]) for o in first["opinions"]
            if o["verdict"] == "fail"] == [(FAILING, [POINT])]
    assert second["reinspection"] and second["participants"] == [FAILING] == second["eligible"]
    assert [p["point"] for p in second["points"]] == [POINT]
    assert [(o["department"], o["verdict"]) for o in second["opinions"]] == [(FAILING, "pass")]

    # The owner was told once (one correction notice in the agent's inbox for the acceptance, naming the point).
    def told():  # type: ignore[no-untyped-def]
        items = expect(path.http.get("/notify/v1/me/notifications", headers=agent.headers, params={"limit": 100}),
                       200)["items"]
        mine = [i for i in items if i["application_id"] == acceptance["application_id"]]
        return mine if any(i["kind"] == "application_delivered" for i in mine) else None

    inbox = path.wait_for("the owner's messages about the acceptance", told, timeout=30)
    assert [i["kind"] for i in inbox].count("correction_requested") == 1, inbox

    # The owner's correction paused the acceptance's own clock once (补正), closed when the owner answered.
    clocks = expect(path.http.get(f"/efficacy/v1/clocks/{acceptance['application_id']}", headers=agent.headers), 200)
    pauses = clocks["application"]["pauses"]
    assert [p["reason"] for p in pauses] == ["correction"] and pauses[0]["end"], pauses

    # The project clock: working days from the first acceptance to completion; the government's days are what
    # counts, the owner's correction time is recorded apart.
    clock = path.facts["project_clock"]
    assert clock["state"] == "completed" and clock["started_at"] and clock["completed_at"]
    assert [s["stage_key"] for s in clock["stages"]] == STAGES
    assert all(s["state"] == "completed" and not s["over_limit"] for s in clock["stages"])
    assert clock["total_limit_days"] == sum(s["total_limit_days"] for s in page["stages"])
    assert clock["elapsed_days"] == clock["government_days"] + clock["outside"]["total"]
    assert clock["outside"]["total"] >= clock["outside"]["owner_correction"] >= 0
    assert clock["remaining_days"] == clock["total_limit_days"] - clock["government_days"]
    assert clock["card"] is None
    for s in clock["stages"]:
        apps = {a["application_id"] for a in next(p for p in page["stages"] if p["key"] == s["stage_key"])
                ["applications"]}
        assert {d["application_id"] for d in s["departments"]} == apps
        assert all(d["state"] == "decided" and d["used_days"] <= d["limit_days"] for d in s["departments"])
    # A person not acting for the owning organisation does not see the project's clock.
    expect(path.http.get(f"/efficacy/v1/projects/{page['id']}/clock", headers=path.owner.headers), 404)
