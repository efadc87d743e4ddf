"""The timeline (事中告知): in time order whatever order the events arrive in, each step with a stable code and
its unit by name (departments and service points), reads of data with their purpose; the public view shows
units, never people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.intake.domain import timeline
from services.intake.tests import factories as f
from services.intake.tests.test_applications import BASE, _workflow, complete_draft, submit
from shared.events import new_event
from shared.testing import eventually


def test_every_known_step_text_has_a_stable_code_and_unknown_ones_are_other():
    assert timeline.code_for("受理") == "accepted"
    assert timeline.code_for("审查：决定") == "task_assigned"
    assert timeline.code_for("部门审查：deemed_approve") == "task_decided"
    assert timeline.code_for("电子证照已签发：食品经营许可证") == "certificate_issued"
    assert timeline.code_for("某个新步骤") == "other"
    assert len(set(timeline.EXACT.values())) == len(timeline.EXACT)


async def test_the_timeline_is_in_time_order_with_codes_unit_names_and_purposes(intake, tokens):
    await intake.bus.publish(new_event("yimen.catalog.service_point.upserted", source="/yimen/catalog",
                                       subject="LD-CENTRE", data={"code": "LD-CENTRE", "name": "罗定市政务服务中心",
                                                                  "level": "city", "parent_code": None}))
    await intake.bus.publish(new_event("yimen.catalog.department.upserted", source="/yimen/catalog",
                                       subject="LD-WJJ", data={"code": "LD-WJJ", "name": "罗定市卫生健康局",
                                                               "credit_code": None}))
    item = await intake.publish_item(f.food_permit_item(fully_online=True))
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    r = await submit(intake, me, app["id"])
    receipt, code = r.json()["receipt_number"], r.json()["verification_code"]
    base = datetime.now(UTC) + timedelta(minutes=5)
    # The decision step is assigned after the health department decided, but its event arrives first.
    await intake.bus.publish(_workflow(
        "yimen.workflow.task.assigned", app["id"], task_id="t-decision", receipt_number=receipt, department="LD-SCJGJ",
        step_key="decision", step_name="决定", assigned_at=(base + timedelta(minutes=2)).isoformat()))
    await intake.bus.publish(_workflow(
        "yimen.workflow.task.decided", app["id"], task_id="t-wjj", receipt_number=receipt, department="LD-WJJ",
        step_key="joint", outcome="approve", reasons=None, legal_basis=None, missing=[], deemed=False,
        decided_by={"kind": "staff", "id": "s-1", "name": "周卫健", "contact": "0766-3811111"},
        decided_at=(base + timedelta(minutes=1)).isoformat()))

    async def both():
        got = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=me)).json()
        codes = [t["code"] for t in got["timeline"]]
        return got if {"task_assigned", "task_approved"} <= set(codes) else None

    got = await eventually(both)
    steps = got["timeline"]
    assert [t["at"] for t in steps] == sorted(t["at"] for t in steps)
    codes = [t["code"] for t in steps]
    assert codes.index("task_approved") < codes.index("task_assigned")
    assert codes[0] == "draft_created" and "submitted" in codes and "accepted" in codes
    created = steps[0]
    assert (created["unit"], created["unit_name"]) == ("LD-CENTRE", "罗定市政务服务中心")
    approved = next(t for t in steps if t["code"] == "task_approved")
    assert (approved["unit_name"], approved["staff_name"], approved["staff_contact"]) == (
        "罗定市卫生健康局", "周卫健", "0766-3811111")
    fetched = [t for t in steps if t["code"] == "data_fetched"]
    assert fetched and all(t["purpose"] and "食品经营许可" in t["purpose"] for t in fetched)
    assert all(t["purpose"] is None for t in steps if t["code"] != "data_fetched")

    public = (await intake.client.get(f"{BASE}/status/{receipt}", params={"code": code})).json()
    assert [s["code"] for s in public["timeline"]] == codes
    assert public["timeline"][0]["unit_name"] == "罗定市政务服务中心"
    assert "周卫健" not in str(public) and "0766-3811111" not in str(public)


async def test_who_holds_each_departments_task_is_shown_from_assignment_to_the_applicant_not_the_public(intake, tokens):
    await intake.bus.publish(new_event("yimen.catalog.department.upserted", source="/yimen/catalog",
                                       subject="LD-XFJ", data={"code": "LD-XFJ", "name": "罗定市消防救援大队",
                                                               "credit_code": None, "phone": "0766-3119119"}))
    item = await intake.publish_item(f.food_permit_item(fully_online=True))
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    r = await submit(intake, me, app["id"])
    receipt, code = r.json()["receipt_number"], r.json()["verification_code"]
    t0 = datetime.now(UTC) + timedelta(minutes=5)
    for dept, task in (("LD-SCJGJ", "t-lead"), ("LD-XFJ", "t-fire")):  # a parallel stage: every department
        await intake.bus.publish(_workflow(
            "yimen.workflow.task.assigned", app["id"], task_id=task, receipt_number=receipt, department=dept,
            step_key="joint", step_name="并联审查", assigned_at=t0.isoformat()))
    await intake.bus.publish(_workflow(
        "yimen.workflow.task.handler_assigned", app["id"], task_id="t-fire", receipt_number=receipt,
        department="LD-XFJ", step_key="joint", step_name="并联审查",
        handler={"id": "s-9", "name": "钱消防", "office_phone": "0766-3833333", "unit": "防火监督科"},
        assigned_at=(t0 + timedelta(minutes=1)).isoformat()))
    await intake.bus.publish(_workflow(
        "yimen.workflow.task.decided", app["id"], task_id="t-fire", receipt_number=receipt, department="LD-XFJ",
        step_key="joint", outcome="approve", reasons=None, legal_basis=None, missing=[], deemed=False,
        decided_by={"kind": "staff", "id": "s-9", "name": "钱消防", "contact": "0766-3833333", "unit": "防火监督科"},
        decided_at=(t0 + timedelta(minutes=2)).isoformat()))

    async def all_there():
        got = (await intake.client.get(f"{BASE}/applications/{app['id']}", headers=me)).json()
        codes = [t["code"] for t in got["timeline"]]
        return got["timeline"] if codes.count("task_assigned") == 2 and "task_approved" in codes and \
            "handler_assigned" in codes else None

    steps = await eventually(all_there)
    assigned = {t["unit"]: t for t in steps if t["code"] == "task_assigned"}
    assert assigned["LD-SCJGJ"]["staff_contact"] == "0766-3888888"  # the item's own department: its phone at once
    assert assigned["LD-XFJ"]["staff_contact"] == "0766-3119119"  # a parallel department: its own phone
    held = next(t for t in steps if t["code"] == "handler_assigned")
    assert (held["unit"], held["staff_name"], held["staff_contact"]) == ("LD-XFJ", "钱消防（防火监督科）", "0766-3833333")
    done = next(t for t in steps if t["code"] == "task_approved")
    assert (done["staff_name"], done["staff_contact"]) == ("钱消防（防火监督科）", "0766-3833333")
    public = (await intake.client.get(f"{BASE}/status/{receipt}", params={"code": code})).json()
    assert {"LD-XFJ", "LD-SCJGJ"} <= {s["unit"] for s in public["timeline"]}
    assert "钱消防" not in str(public) and "0766-3833333" not in str(public)
