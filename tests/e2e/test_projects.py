"""Issue 17 through the real platform: a factory project registered by a company's agent runs stages 1–3, each
accepted once by the centre and dispatched to the departments and service enterprises the simulator plays.
(Stage 4, the joint acceptance, is completed after the merge with the back half.)"""

from __future__ import annotations

import pytest

from deploy.demo import HappyPath, expect, factory_project

pytestmark = pytest.mark.e2e


def test_a_factory_project_runs_stages_one_to_three(platform):
    path = HappyPath(platform.base, platform.admin["username"], platform.admin["password"], say=lambda _m: None,
                     seed=17)
    path.admin_and_catalogue()
    path.people_and_company()
    path.wait_for("the project type at intake", lambda: expect(
        path.http.get("/catalog/v1/project-types/enterprise_investment"), 200))
    page = factory_project(path)
    statuses = {s["key"]: s["status"] for s in page["stages"]}
    assert statuses["approval_land"] == statuses["construction_permit"] == statuses["construction"] == "completed"
    construction = next(s for s in page["stages"] if s["key"] == "construction")
    depts = {a["department"] for a in construction["applications"]}
    assert {"LD-ZJJ", "QY-GS", "QY-GD", "QY-RQ", "QY-DX"} <= depts
    assert all(a["outcome"] == "approved" and a["limit_days"] <= construction["total_limit_days"]
               and a["held_by"] for a in construction["applications"])
    mine = expect(path.http.get("/intake/v1/me/projects", headers=path.agent.headers), 200)
    assert page["id"] in [p["id"] for p in mine]
    # The next stage gates on this one: the completion stage (if configured) is open, nothing later is.
    assert all(s["status"] in ("completed", "open") for s in page["stages"])
