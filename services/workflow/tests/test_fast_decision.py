"""A department's decision over REST has a fast path (`fast_decide`, shared/fastpath.py): it is most of workflow's
requests. What it takes is answered as the route answers; every refusal is left to the route, which answers its
own problem+json, and nothing of a refused decision is acted on."""

from __future__ import annotations

import uuid

import httpx

from services.workflow.tests.helpers import (
    case,
    define_item,
    parallel_step,
    reviewer,
    start_case,
    system,
    tasks_of,
)

REJECT_BARE = {"outcome": "reject", "reasons": ["x"]}


async def decide(client: httpx.AsyncClient, headers: dict[str, str], task_id: str, body: object = None,
                 raw: tuple[bytes, str] | None = None) -> httpx.Response:
    """`raw`: a body as bytes with its content type instead of `body` as JSON."""
    url = f"/workflow/v1/tasks/{task_id}/decision"
    if raw is not None:
        return await client.post(url, content=raw[0], headers={**headers, "content-type": raw[1]})
    return await client.post(url, json=body or {"outcome": "approve"}, headers=headers)


def same_problem(quick: httpx.Response, routed: httpx.Response) -> None:
    assert quick.status_code == routed.status_code
    assert quick.headers["content-type"] == routed.headers["content-type"] == "application/problem+json"
    volatile = {"instance", "request_id", "trace_id"}
    assert {k: v for k, v in quick.json().items() if k not in volatile} == \
        {k: v for k, v in routed.json().items() if k not in volatile}


async def test_a_decision_is_answered_without_the_router_as_the_route_answers_it(client, tokens):
    fast = client.app.state.fast_paths
    code = "ITEM-" + uuid.uuid4().hex[:8]
    await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ", "LD-GAJ"])])
    c = await start_case(client, tokens, code)
    tasks = tasks_of(c)

    before = fast.answered
    quick = await decide(client, reviewer(tokens, "LD-WJJ"), tasks["LD-WJJ"]["id"])
    assert quick.status_code == 200 and fast.answered == before + 1, quick.text
    # The body is the task as the route renders it (here: as the task's own GET renders it, after the commit).
    shown = await client.get(f"/workflow/v1/tasks/{tasks['LD-WJJ']['id']}", headers=reviewer(tokens, "LD-WJJ"))
    assert quick.content == shown.content
    assert quick.json()["state"] == "decided" and quick.json()["decided_by"]["kind"] == "staff"
    fast.enabled = False
    try:
        routed = await decide(client, system(tokens, "LD-XFJ"), tasks["LD-XFJ"]["id"])
    finally:
        fast.enabled = True
    assert routed.status_code == 200 and fast.answered == before + 1
    assert set(routed.json()) == set(quick.json())
    assert [k for k in routed.headers if k != "content-length"] == [k for k in quick.headers if k != "content-length"]
    assert quick.headers["content-type"] == "application/json" and quick.headers["x-request-id"]

    # The stage's last decision moves the case on in the same transaction, by the fast path too.
    last = await decide(client, system(tokens, "LD-GAJ"), tasks["LD-GAJ"]["id"])
    assert last.status_code == 200 and fast.answered == before + 2
    assert (await case(client, tokens, c["application_id"]))["state"] == "approved"


async def test_every_refusal_is_the_routes_own_problem_and_changes_nothing(client, tokens):
    fast = client.app.state.fast_paths
    code = "ITEM-" + uuid.uuid4().hex[:8]
    await define_item(client, tokens, code, 1, [parallel_step(["LD-WJJ", "LD-XFJ"])])
    c = await start_case(client, tokens, code)
    task = tasks_of(c)["LD-WJJ"]["id"]
    own = reviewer(tokens, "LD-WJJ")
    refusals = [
        (reviewer(tokens, "LD-XFJ"), task, None, None),  # another department: 403
        (tokens.headers("person-1"), task, None, None),  # a citizen: 403
        ({}, task, None, None),  # no token: 401
        ({"Authorization": "Bearer not-a-token"}, task, None, None),  # a bad token: 401
        (own, task, REJECT_BARE, None),  # a rejection without legal basis: 422
        (own, task, {"outcome": "maybe"}, None),  # 422
        (own, task, {"outcome": "approve", "x": 1}, None),  # an unknown field: 422
        (own, task, None, (b"{not json", "application/json")),  # 422
        (own, task, None, (b'{"outcome": "approve"}', "text/plain")),  # not JSON by its type: 422
        (own, "no-such-task", None, None),  # 404
        (own, "T" * 65, None, None),  # longer than a task id: 422
    ]
    for headers, task_id, body, raw in refusals:
        before = fast.answered
        quick = await decide(client, headers, task_id, body, raw)
        assert fast.answered == before, (task_id, body, quick.text)
        fast.enabled = False
        try:
            routed = await decide(client, headers, task_id, body, raw)
        finally:
            fast.enabled = True
        same_problem(quick, routed)
        assert quick.status_code in (401, 403, 404, 415, 422), quick.text
    assert tasks_of(await case(client, tokens, c["application_id"]))["LD-WJJ"]["state"] == "open"

    assert (await decide(client, own, task)).status_code == 200
    before = fast.answered
    twice = await decide(client, own, task)
    assert twice.status_code == 409 and fast.answered == before
