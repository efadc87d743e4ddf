"""The public status projection: the route serves the view rendered in the transaction that changed it; a unit's
new name reaches every view that names it; the stored views can be rebuilt from the tables (the migration's
backfill); revalidation with `ETag`/`If-None-Match`. (Every test of intake also ends with the projection
compared with the per-request rendering: conftest.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import delete, select

from services.intake.events import contracts as ev
from services.intake.service import received
from services.intake.store import public_status
from services.intake.store.tables import Application, PublicStatusRow
from services.intake.tests import factories as f
from services.intake.tests.public_view import mismatches, rendered_per_request
from services.intake.tests.test_applications import BASE, _workflow, complete_draft, submit
from services.intake.tests.test_submit_statements import counted
from shared.events import new_event
from shared.testing import assert_same_answer, eventually, fast_and_routed


def _unit(code: str, name: str):
    return new_event("yimen.catalog.department.upserted", source="/yimen/catalog", subject=code,
                     data={"code": code, "name": name, "credit_code": None})


async def _status(intake, receipt, code, **headers):
    return await intake.client.get(f"{BASE}/status/{receipt}", params={"code": code}, headers=headers)


async def test_the_route_serves_exactly_the_per_request_rendering_with_a_validator(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"], channel="window")
    async with intake.client.app.state.db.engine.connect() as conn:  # a draft has no receipt: nothing public
        assert (await conn.execute(select(PublicStatusRow).where(
            PublicStatusRow.application_id == app["id"]))).first() is None
    submitted = (await submit(intake, me, app["id"])).json()
    receipt, code = submitted["receipt_number"], submitted["verification_code"]
    r = await _status(intake, receipt, code)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    async with intake.client.app.state.db.engine.connect() as conn:
        assert r.content == await rendered_per_request(conn, receipt)
    codes = [s["code"] for s in r.json()["timeline"]]
    assert codes[0] == "draft_created" and codes[-1] == "submitted"  # the draft's steps, rendered at submission
    etag = r.headers["etag"]
    assert r.headers["cache-control"] == "no-cache"
    again = await _status(intake, receipt, code, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert (await _status(intake, receipt, code, **{"If-None-Match": f'"other", W/{etag}'})).status_code == 304
    # The code is checked before the validator: a wrong code learns nothing, not even "unchanged".
    wrong = "000000" if code != "000000" else "111111"
    assert (await _status(intake, receipt, wrong, **{"If-None-Match": etag})).status_code == 404
    assert (await intake.client.post(f"{BASE}/applications/{app['id']}/accept", headers=f.clerk(tokens))).status_code == 200
    moved = await _status(intake, receipt, code, **{"If-None-Match": etag})
    assert moved.status_code == 200 and moved.json()["status"] == "accepted" and moved.headers["etag"] != etag


async def test_a_units_new_name_reaches_every_view_that_names_it(intake, tokens):
    item = await intake.publish_item(f.food_permit_item(fully_online=True))
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    r = await submit(intake, me, app["id"])
    receipt, code = r.json()["receipt_number"], r.json()["verification_code"]
    # A department intake has not heard of yet holds a task: shown by its code until its name is known.
    await intake.bus.publish(_workflow(
        "yimen.workflow.task.assigned", app["id"], task_id="t-new", receipt_number=receipt, department="LD-NEW",
        step_key="joint", step_name="并联审查", assigned_at=(datetime.now(UTC) + timedelta(minutes=1)).isoformat()))

    async def step_of(unit, name):
        steps = (await _status(intake, receipt, code)).json()["timeline"]
        return any(s["unit"] == unit and s["unit_name"] == name for s in steps)

    await eventually(lambda: step_of("LD-NEW", None))
    await intake.bus.publish(_unit("LD-NEW", "罗定市新设局"))
    await eventually(lambda: step_of("LD-NEW", "罗定市新设局"))
    # The handling department renamed: the view's own unit and its steps follow.
    await intake.bus.publish(_unit("LD-SCJGJ", "罗定市市场监督管理局（更名）"))

    async def renamed():
        body = (await _status(intake, receipt, code)).json()
        return body["handling_unit_name"] == "罗定市市场监督管理局（更名）" and await step_of(
            "LD-SCJGJ", "罗定市市场监督管理局（更名）")

    await eventually(renamed)
    assert await mismatches(intake.client.app.state.db) == []


async def test_the_views_are_rebuilt_from_the_tables_as_the_migration_backfills_them(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    for _ in range(2):
        app = await complete_draft(intake, me, item["code"])
        assert (await submit(intake, me, app["id"])).status_code == 200
    db = intake.client.app.state.db
    async with db.transaction() as s:
        ids = list((await s.execute(select(Application.id).where(Application.receipt_number.is_not(None)))).scalars())
        await s.execute(delete(PublicStatusRow))
    assert len(await mismatches(db)) == len(ids) >= 2
    async with db.engine.begin() as conn:
        assert await conn.run_sync(public_status.rebuild, ids) == len(ids)
    assert await mismatches(db) == []


async def _accepted(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"], channel="window")
    r = (await submit(intake, me, app["id"])).json()
    assert (await intake.client.post(f"{BASE}/applications/{app['id']}/accept",
                                     headers=f.clerk(tokens))).status_code == 200
    return app["id"], r["receipt_number"], r["verification_code"]


def _decided(app_id, department, at, outcome="approve"):
    return ev.TaskDecided(task_id=f"t-{department}", application_id=app_id, department=department, outcome=outcome,
                          decided_at=at, decided_by=ev.DecidedBy(name="周审查", unit="审批股"))


def _hooks(seen):
    """The statements of the commit hooks (the outbox's insert, the view's render)."""
    out, hooks = [], False
    for s in seen:
        if s in ("COMMITTING", "COMMIT"):
            hooks = s == "COMMITTING"
        elif hooks:
            out.append(" ".join(s.split()))
    return out


async def test_a_department_step_advances_the_stored_body_in_one_guarded_update(intake, tokens):
    app_id, receipt, code = await _accepted(intake, tokens)
    db = intake.client.app.state.db
    now = datetime.now(UTC)
    # A unit no view names yet: its name is read once, then taken from memory and checked by the update itself.
    for i, unit in enumerate(("LD-WJJ", "LD-XFJ", "LD-WJJ")):
        with counted(db.engine.sync_engine) as seen:
            async with db.transaction() as s:
                await received.task_decided(s, _decided(app_id, unit, now + timedelta(seconds=i)))
        hooks = _hooks(seen)
        assert not [h for h in hooks if "timeline" in h.lower()], hooks  # nothing rendered from the tables
        assert [h.split(" SET")[0] for h in hooks if "public_status" in h] == ["UPDATE public_status"]
        guarded = next(h for h in hooks if h.startswith("UPDATE public_status"))
        assert "public_status.body =" in guarded
    body = (await _status(intake, receipt, code)).json()
    assert [x["unit"] for x in body["timeline"][-3:]] == ["LD-WJJ", "LD-XFJ", "LD-WJJ"]
    assert await mismatches(db) == []
    # A step that happened before the ones stored goes to its place among them; one of the same instant as a stored
    # step (workflow decides the case in the transaction of its last task) after it, as the order of ids has it.
    for at in (now - timedelta(hours=1), now + timedelta(seconds=1)):
        with counted(db.engine.sync_engine) as seen:
            async with db.transaction() as s:
                await received.task_decided(s, _decided(app_id, "LD-ZJJ", at, outcome="deemed_approve"))
        assert not [h for h in _hooks(seen) if "timeline" in h.lower()]
        assert await mismatches(db) == []


async def test_concurrent_departments_steps_never_overwrite_each_other(intake, tokens):
    """The second department's transaction waits for the first one's lock of the application; on PostgreSQL the
    body it read with that lock is the one from before the first committed: the guarded update finds the row
    changed, and the view is rendered from the tables, with both steps."""
    app_id, receipt, code = await _accepted(intake, tokens)
    db = intake.client.app.state.db
    now = datetime.now(UTC)
    second_seen: list[str] = []

    async def second() -> None:
        with counted(db.engine.sync_engine) as seen:
            async with db.transaction() as s:
                await received.task_decided(s, _decided(app_id, "LD-XFJ", now + timedelta(seconds=2)))
        second_seen.extend(seen)

    async with db.transaction() as s:
        await received.task_decided(s, _decided(app_id, "LD-WJJ", now + timedelta(seconds=1)))
        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.5)  # the second one is waiting for the application's lock (or SQLite's writer lock)
        assert not waiting.done()
    await waiting
    steps = (await _status(intake, receipt, code)).json()["timeline"]
    assert [x["unit"] for x in steps[-2:]] == ["LD-WJJ", "LD-XFJ"]
    if db.engine.dialect.name == "postgresql":
        assert any("timeline" in h.lower() for h in _hooks(second_seen))  # rendered from the tables
    assert await mismatches(db) == []


async def test_requests_are_counted_by_route_template_never_by_receipt_number(intake, tokens):
    """The metrics label a request with the route it matched: a receipt number (or a scanner's guess) in the
    path would give every case a series of its own in every replica's metrics."""
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    submitted = (await submit(intake, me, app["id"])).json()
    receipt, code = submitted["receipt_number"], submitted["verification_code"]
    assert (await _status(intake, receipt, code)).status_code == 200
    assert (await _status(intake, "NOSUCHRECEIPT9", code)).status_code == 404
    assert (await intake.client.get("/intake/v1/no-such-route/R123456789")).status_code == 404
    text = (await intake.client.get("/intake/metrics")).text
    assert receipt not in text and "NOSUCHRECEIPT9" not in text and "R123456789" not in text
    status = 'http_requests_total{method="GET",route="/status/{receipt_number}",service="intake"'
    assert f'{status},status="200"}}' in text and f'{status},status="404"}}' in text
    assert 'route="(unmatched)",service="intake",status="404"' in text


async def test_the_status_read_without_the_router_answers_as_the_route_and_leaves_it_the_rest(intake, tokens):
    """The public status query's fast path (api/progress.py, shared/fastpath.py) gives the route's answer header
    for header, 200 and 304; a wrong code (counted), a malformed code or a further parameter is the route's."""
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    app = await complete_draft(intake, me, item["code"])
    submitted = (await submit(intake, me, app["id"])).json()
    receipt, code = submitted["receipt_number"], submitted["verification_code"]
    url = f"{BASE}/status/{receipt}"
    quick, routed = await fast_and_routed(intake.client, url, params={"code": code})
    assert quick.status_code == 200 and quick.json()["receipt_number"] == receipt
    assert_same_answer(quick, routed)
    quick, routed = await fast_and_routed(intake.client, url, params={"code": code},
                                          headers={"If-None-Match": quick.headers["etag"]})
    assert quick.status_code == 304
    assert_same_answer(quick, routed)
    fast = intake.client.app.state.fast_paths
    before = fast.answered
    wrong = "000000" if code != "000000" else "111111"
    for params, status in (({"code": wrong}, 404), ({"code": code[:5]}, 422), ({"code": "١٢٣٤٥٦"}, None),
                           ({"code": code, "extra": "1"}, 200), ({}, 422)):
        r = await intake.client.get(url, params=params)
        assert status is None or r.status_code == status, (params, r.status_code, r.text)
        assert r.status_code == 200 or r.headers["content-type"] == "application/problem+json"
    assert (await intake.client.get(f"{BASE}/status/{receipt}%0A", params={"code": code})).status_code == 422
    assert fast.answered == before, "each left to the route"
    # A wrong code is counted once (by the route), and an address over the limit is the route's to refuse.
    transport = httpx.ASGITransport(app=intake.client._transport.app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as guesser:
        for i in range(1, 11):
            r = await guesser.get(url, params={"code": f"{(int(code) + i) % 1_000_000:06d}"})
            assert r.status_code == 404, i
        r = await guesser.get(url, params={"code": code})
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
    assert fast.answered == before


async def test_a_new_draft_costs_no_render_and_its_view_appears_with_its_receipt(intake, tokens):
    """A draft has no public view, and no other transaction can give a draft created in this one a receipt number
    before it commits: its creation reads nothing for a view (it locked and read the tables at its commit before).
    Its submission renders the view, with every step."""
    item = await intake.publish_item(f.food_permit_item(fully_online=True))
    me = f.citizen(tokens)
    db = intake.client.app.state.db
    with counted(db.engine.sync_engine) as seen:
        r = await intake.client.post(f"{BASE}/applications", headers=me, json={
            "item_code": item["code"], "channel": "online", "service_point": "LD-CENTRE", "form": {}})
    assert r.status_code == 201, r.text
    assert not [s for s in seen if "public_status" in s or "FOR UPDATE" in s or "AS app_status" in s], seen
    app = await complete_draft(intake, me, item["code"])
    got = (await submit(intake, me, app["id"])).json()
    status = (await _status(intake, got["receipt_number"], got["verification_code"])).json()
    assert [x["step"] for x in status["timeline"]][:2] == ["创建申请草稿", "共享获取：营业执照"]
    assert await mismatches(db) == []


async def test_a_view_read_lately_is_answered_from_memory_until_a_commit_of_this_process_writes_views(intake, tokens):
    """`public_status.ViewCache`: a second read of a view costs no statement; a change committed here (a clerk's
    acceptance through the API, a department's step through a consumer's transaction) is served at once."""
    app_id, receipt, code = await _accepted(intake, tokens)
    db = intake.client.app.state.db
    assert (await _status(intake, receipt, code)).json()["status"] == "accepted"
    with counted(db.engine.sync_engine) as seen:
        again = await _status(intake, receipt, code)
    assert again.json()["status"] == "accepted" and seen == []
    async with db.transaction() as s:
        await received.task_decided(s, _decided(app_id, "LD-WJJ", datetime.now(UTC)))
    steps = (await _status(intake, receipt, code)).json()["timeline"]
    assert steps[-1]["unit"] == "LD-WJJ"
    async with db.engine.connect() as conn:
        assert (await _status(intake, receipt, code)).content == await rendered_per_request(conn, receipt)


async def test_a_view_written_by_another_process_shows_within_the_cache_ttl(intake, tokens):
    """Another replica's commit does not reach this process's memory: the view it wrote is served here at most
    `VIEW_TTL_SECONDS` later (the bound the cache promises), and a read that began before a commit of this
    process is not kept."""
    _app_id, receipt, code = await _accepted(intake, tokens)
    db = intake.client.app.state.db
    old = (await _status(intake, receipt, code)).content
    # As another process writes it: not through this process's sessions, so nothing here hears of it.
    async with db.engine.begin() as conn:
        await conn.execute(PublicStatusRow.__table__.update().where(PublicStatusRow.receipt_number == receipt)
                           .values(body=old.decode().replace('"accepted"', '"rejected"', 1)))
    assert (await _status(intake, receipt, code)).content == old
    await asyncio.sleep(public_status.VIEW_TTL_SECONDS + 0.05)
    assert (await _status(intake, receipt, code)).json()["status"] == "rejected"
    cache = public_status.view_cache(db)
    real_read = public_status.read

    async def read_across_a_commit(engine, receipt_number):  # type: ignore[no-untyped-def]
        found = await real_read(engine, receipt_number)
        cache.written.set()  # a commit of this process that wrote views, while the read was on its way
        return found

    cache._views.clear()
    public_status.read = read_across_a_commit  # type: ignore[assignment]
    try:
        assert (await _status(intake, receipt, code)).status_code == 200
    finally:
        public_status.read = real_read  # type: ignore[assignment]
    assert receipt not in cache._views
    assert (await _status(intake, receipt, code)).status_code == 200
    assert receipt in cache._views
    async with db.engine.begin() as conn:  # as it was (conftest compares every view with the tables)
        await conn.execute(PublicStatusRow.__table__.update().where(PublicStatusRow.receipt_number == receipt)
                           .values(body=old.decode()))
