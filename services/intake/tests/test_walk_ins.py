"""Walk-in filing (窗口代录, 帮办代办) through the running service, beside a real identity and datashare: a window
clerk files, completes, gets consent for, submits and accepts an application for the person at the counter, who
has no account; identity opens a level-3 account the person claims later with the code on the receipt slip, and
then sees the case online."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
from stdnum.cn import ric

from services.intake.app import create_app
from services.intake.tests import factories as f
from shared.testing import eventually, free_port, running_app
from tests.identity_stack import cheap_identity, combined_jwks, identity_with_datashare

BASE = "/intake/v1"
POINTS = [{"code": "LD-CENTRE", "name": "罗定市政务服务中心", "level": "city"},
          {"code": "LD-LC", "name": "罗城街道党群服务中心", "level": "town"}]
ADMIN = ("root", "root-walk-in-2026")


@dataclass
class Stack:
    intake: httpx.AsyncClient
    identity: httpx.AsyncClient
    admin: dict[str, str]
    events: list[dict[str, Any]]
    tokens: Any

    async def clerk(self, point: str = "LD-LC", roles: list[str] | None = None) -> dict[str, str]:
        body = {"username": f"clerk{uuid.uuid4().hex[:8]}", "name": "陈晓", "password": "counter-bamboo-2026",
                "roles": roles or ["window_clerk"], "department": "LD-ZSJ", "service_point": point}
        assert (await self.identity.post("/identity/v1/staff", headers=self.admin, json=body)).status_code == 201
        return await self.login(body["username"], body["password"])

    async def login(self, username: str, password: str) -> dict[str, str]:
        r = await self.identity.post("/identity/v1/token", data={"grant_type": "password", "username": username,
                                                                 "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def publish_item(self, **overrides: Any) -> dict[str, Any]:
        payload = f.simple_item(offered_at=POINTS, collect_at=POINTS, fully_online=False, min_assurance_level=3,
                                service_points=["LD-CENTRE", "LD-LC"], **overrides)
        await self.intake.app.state.bus.publish(f.published(payload))  # type: ignore[attr-defined]

        await eventually(lambda: self._has(payload["code"]))
        return payload

    async def _has(self, code: str) -> bool:
        from sqlalchemy import select

        from services.intake.store.tables import ItemVersion

        async with self.intake.app.state.db.transaction() as s:  # type: ignore[attr-defined]
            return (await s.execute(select(ItemVersion.id).where(ItemVersion.code == code))).first() is not None


@pytest_asyncio.fixture(scope="module")
async def stack(settings_for, tokens) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    async with identity_with_datashare(settings_for, tokens, identity=cheap_identity(*ADMIN)) as identity:
        holder = {"identity": identity}
        # Datashare is not asked here (the item's only material is an upload): a closed port stands for it.
        settings = settings_for("intake", service_urls={"identity": identity.url,  # type: ignore[attr-defined]
                                                        "datashare": f"http://127.0.0.1:{free_port()}"})
        async with running_app(create_app, settings, tokens=tokens, jwks_fetcher=combined_jwks(tokens, holder)) as c:
            bus = c.app.state.bus
            await eventually(lambda: bus.nc is not None and bus.nc.is_connected)
            events: list[dict[str, Any]] = []

            async def tap(msg: Any) -> None:
                import json

                events.append(json.loads(msg.data))

            sub = await bus.nc.subscribe(bus.names.subject("yimen.intake.>"), cb=tap)
            r = await identity.post("/identity/v1/token", data={"grant_type": "password", "username": ADMIN[0],
                                                                "password": ADMIN[1]})
            yield Stack(c, identity, {"Authorization": f"Bearer {r.json()['access_token']}"}, events, tokens)
            await sub.unsubscribe()


def new_number(birth: str = "19520304") -> str:
    body = f"445381{birth}{uuid.uuid4().int % 900 + 100:03d}"
    return body + ric.calc_check_digit(body + "0")


async def walk_in(st: Stack, clerk: dict[str, str], code: str, number: str, name: str = "黄伯", **extra: Any):
    return await st.intake.post(f"{BASE}/walk-ins", headers=clerk, json={
        "person": {"id_number": number, "name": name, "phone": "13712345678"}, "item_code": code,
        "form": {"shop_name": "黄伯糖水铺"}, **extra})


def rules(r: httpx.Response) -> set[tuple[str, str]]:
    return {(e["field"], e["rule"]) for e in r.json().get("errors", [])}


async def test_a_clerk_files_for_a_person_without_an_account_who_claims_it_later_and_sees_the_case(stack):
    item = await stack.publish_item()
    clerk = await stack.clerk("LD-LC")
    number = new_number()
    r = await walk_in(stack, clerk, item["code"], number, delivery={"method": "pickup", "service_point": "LD-LC"})
    assert r.status_code == 201, r.text
    body = r.json()
    app, person = body["application"], body["person"]
    assert person["account_created"] is True and person["assurance_level"] == 3 and person["claim_code"]
    assert app["applicant"]["id"] == person["id"] and app["applicant"]["holder_id"] == number
    assert app["channel"] == "window" and app["service_point"] == "LD-LC" and app["status"] == "draft"
    assert app["walk_in"]["clerk_name"] == "陈晓" and app["walk_in"]["account_created"] is True
    filed = next(t for t in app["timeline"] if t["step"] == "窗口代录")
    assert filed["staff_name"] == "陈晓" and filed["unit"] == "LD-LC"
    visit = await eventually(lambda: [e for e in stack.events if e["type"] == "yimen.intake.visit.recorded"
                                      and e["subject"] == app["id"]])
    assert visit[0]["data"]["service_point"] == "LD-LC" and visit[0]["data"]["purpose"] == "窗口代录"
    url = f"{BASE}/applications/{app['id']}"
    # The clerk completes it: a material, then submission — refused until the person's consent is on record.
    up = await stack.intake.post(f"{url}/materials", headers=clerk, data={"material_code": "M03"},
                                 files={"file": ("plan.pdf", f.PDF[:900], "application/pdf")})
    assert up.status_code == 201, up.text
    early = await stack.intake.post(f"{url}/submit", headers=clerk)
    assert early.status_code == 422 and ("consent", "required") in rules(early)
    signed = await stack.intake.post(f"{url}/consent", headers=clerk,
                                     files={"file": ("签字确认书.png", f.PNG, "image/png")})
    assert signed.status_code == 201, signed.text
    assert signed.json()["kind"] == "signed_slip" and signed.json()["sha256"] == f.sha(f.PNG)
    # The item needs level 3: the person's, from identity, counts — not the clerk's token (which has none).
    sub = await stack.intake.post(f"{url}/submit", headers=clerk)
    assert sub.status_code == 200, sub.text
    assert sub.json()["status"] == "submitted" and sub.json()["receipt_number"]
    accepted = await stack.intake.post(f"{url}/accept", headers=clerk)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text
    slip = await stack.intake.get(f"{url}/receipt-slip", headers=clerk)
    assert slip.status_code == 200 and person["claim_code"] in slip.text and "窗口代录" in slip.text
    assert sub.json()["receipt_number"] in slip.text and "承诺办结日期" in slip.text
    pdf = await stack.intake.get(f"{url}/receipt-slip", headers={**clerk, "Accept": "application/pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    kept = await stack.intake.get(f"{url}/consent/file", headers=clerk)
    assert kept.status_code == 200 and kept.content == f.PNG and kept.headers["content-type"] == "image/png"
    # Later, at home: the person claims the account with the slip's code and sees the case under their login.
    claim = await stack.identity.post("/identity/v1/people/claims", json={
        "id_number": number, "name": "黄伯", "claim_code": person["claim_code"], "password": "harbour-lantern-73"})
    assert claim.status_code == 200, claim.text
    me = await stack.login(number, "harbour-lantern-73")
    mine = await stack.intake.get(url, headers=me)
    assert mine.status_code == 200 and mine.json()["status"] == "accepted"
    assert mine.json()["verification_code"] and mine.json()["walk_in"]["consent"]["kind"] == "signed_slip"
    listed = await stack.intake.get(f"{BASE}/me/applications", headers=me)
    assert app["id"] in {a["id"] for a in listed.json()["items"]}


async def test_someone_with_an_account_is_filed_for_without_a_new_one(stack):
    item = await stack.publish_item()
    clerk = await stack.clerk("LD-CENTRE")
    number = new_number("19800101")
    first = await walk_in(stack, clerk, item["code"], number, name="梁姨")
    again = await walk_in(stack, clerk, item["code"], number, name="梁姨")
    assert first.status_code == again.status_code == 201
    assert again.json()["person"]["id"] == first.json()["person"]["id"]
    # Still unclaimed: a new slip, a new code.
    assert again.json()["person"]["account_created"] is False and again.json()["person"]["claim_code"]


async def test_a_signature_capture_is_consent_too_and_a_bad_signed_slip_is_refused(stack):
    item = await stack.publish_item()
    clerk = await stack.clerk("LD-CENTRE")
    app = (await walk_in(stack, clerk, item["code"], new_number("19700707"), name="甘叔")).json()["application"]
    url = f"{BASE}/applications/{app['id']}/consent"
    fake = await stack.intake.post(url, headers=clerk, files={"file": ("slip.pdf", b"MZ\x90\x00not a pdf", "application/pdf")})
    assert fake.status_code == 422 and ("file", "file_type") in rules(fake)
    empty = await stack.intake.post(url, headers=clerk, json={"kind": "signature_capture", "reference": ""})
    assert empty.status_code == 422 and empty.headers["content-type"] == "application/problem+json"
    text = await stack.intake.post(url, headers={**clerk, "content-type": "text/plain"}, content=b"signed")
    assert text.status_code == 415
    ok = await stack.intake.post(url, headers=clerk, json={"kind": "signature_capture",
                                                           "reference": "SIGPAD-LD-CENTRE-03/0042"})
    assert ok.status_code == 201 and ok.json()["reference"] == "SIGPAD-LD-CENTRE-03/0042"
    read = await stack.intake.get(f"{BASE}/applications/{app['id']}", headers=clerk)
    assert read.json()["walk_in"]["consent"]["kind"] == "signature_capture"
    assert any(t["step"] == "申请人签字确认" for t in read.json()["timeline"])


async def test_the_point_is_the_clerks_own_and_only_its_window_clerks_act_for_the_person(stack):
    item = await stack.publish_item()
    clerk = await stack.clerk("LD-LC")
    named = await stack.intake.post(f"{BASE}/walk-ins", headers=clerk, json={
        "person": {"id_number": new_number(), "name": "黄伯", "phone": "13712345678"}, "item_code": item["code"],
        "service_point": "LD-CENTRE"})
    assert named.status_code == 422 and any(f == "service_point" or f.endswith(".service_point") for f, _ in rules(named))
    elsewhere = await stack.clerk("LD-SL")
    r = await walk_in(stack, elsewhere, item["code"], new_number())
    assert r.status_code == 422 and ("service_point", "service_point_not_offered") in rules(r)
    app = (await walk_in(stack, clerk, item["code"], new_number("19660606"), name="罗叔")).json()["application"]
    url = f"{BASE}/applications/{app['id']}"
    other = await stack.clerk("LD-CENTRE")
    assert (await stack.intake.post(f"{url}/consent", headers=other,
                                    json={"kind": "signature_capture", "reference": "x"})).status_code == 404
    assert (await stack.intake.post(f"{url}/submit", headers=other)).status_code == 404
    # A reviewer of the item's department reads the case but does not act for the person.
    reviewer = await stack.clerk("LD-CENTRE", roles=["department_reviewer"])
    assert (await stack.intake.post(f"{url}/submit", headers=reviewer)).status_code in (403, 404)


async def test_only_window_clerks_file_walk_ins_and_a_registry_mismatch_files_nothing(stack):
    item = await stack.publish_item()
    citizen = f.citizen(stack.tokens)
    assert (await walk_in(stack, citizen, item["code"], new_number())).status_code == 403
    assert (await walk_in(stack, {}, item["code"], new_number())).status_code == 401
    clerk = await stack.clerk("LD-CENTRE")
    bad = await walk_in(stack, clerk, item["code"], new_number()[:-1] + "Z")
    assert bad.status_code == 422 and ("body.person.id_number", "id_number") in rules(bad)
    number = new_number("19880808")
    r = await stack.identity.datashare.post(  # type: ignore[attr-defined]
        "/datashare/v1/registries/population/imports", headers=stack.identity.registry_keeper,  # type: ignore[attr-defined]
        json=[{"id_number": number, "name": "刘洋"}])
    assert r.status_code == 200, r.text
    mismatch = await walk_in(stack, clerk, item["code"], number, name="刘海")
    assert mismatch.status_code == 422 and ("body.person.name", "registry_mismatch") in rules(mismatch)


async def test_a_retried_walk_in_with_one_key_files_once(stack):
    item = await stack.publish_item()
    clerk = await stack.clerk("LD-CENTRE")
    number = new_number("19900909")
    body = {"person": {"id_number": number, "name": "区姐", "phone": "13712345678"}, "item_code": item["code"],
            "form": {"shop_name": "区姐士多"}}
    key = {**clerk, "Idempotency-Key": f"walk-{number}"}
    first = await stack.intake.post(f"{BASE}/walk-ins", headers=key, json=body)
    second = await stack.intake.post(f"{BASE}/walk-ins", headers=key, json=body)
    assert first.status_code == second.status_code == 201
    assert first.json()["application"]["id"] == second.json()["application"]["id"]
    assert second.headers.get("idempotent-replayed") == "true"
