"""Where people get stuck, as rules without a server."""

from __future__ import annotations

from services.efficacy.domain.insights import (
    RETURNED,
    TASK_DECIDED,
    corrected_materials,
    correction_counts,
    step_use,
)


def test_returns_and_correction_requests_name_their_materials_and_nothing_else_counts():
    assert corrected_materials(RETURNED, {"missing": [{"field": "materials.lease"}, {"field": "form.phone"}]}) == [
        "lease", "form.phone"]
    assert corrected_materials(TASK_DECIDED, {"outcome": "request_correction",
                                              "missing": [{"material_code": "plan"}, {"field": "x"}, "junk"]}) == [
        "plan", "x"]
    assert corrected_materials(TASK_DECIDED, {"outcome": "approve", "missing": [{"material_code": "plan"}]}) == []
    assert corrected_materials("yimen.intake.application.accepted", {"missing": [{"field": "a"}]}) == []
    counts = correction_counts([("I1", RETURNED, {"missing": [{"field": "materials.a"}]}),
                                ("I1", TASK_DECIDED, {"outcome": "request_correction", "missing": [{"material_code": "a"}]}),
                                ("I2", RETURNED, {"missing": []})])
    assert dict(counts["I1"]) == {"a": 2} and "I2" not in counts


def test_steps_are_ranked_by_the_share_of_their_limit_they_use():
    steps = step_use([("I1", "fire", "LD-XFJ", 5, 5), ("I1", "fire", "LD-XFJ", 7, 5), ("I1", "health", "LD-WJJ", 1, 4),
                      ("I1", "none", "LD-X", 3, 0)])
    fire, health = steps["I1"]
    assert (fire.step_key, fire.tasks, fire.average_share, fire.max_share, fire.over_limit) == ("fire", 2, 1.2, 1.4, 1)
    assert (health.step_key, health.average_share) == ("health", 0.25)
    assert len(steps["I1"]) == 2  # a step without a limit has no share to rank
