"""Issue 13 (Trust), datashare's part, against the real services: intake, workflow, datashare and efficacy each
started with its database and the bus, talking real HTTP to each other (intake asks datashare for materials,
datashare asks intake about the application) and real events (workflow's tasks reach datashare's projection,
datashare's anomalies reach efficacy's supervision queue).

- purpose-bound reads: a registry record is read by staff or a department system only for a live application
  in which its department holds an open task (or which its window is accepting), only the fields the item's
  materials need; admins and supervisors need a written reason, are limited, and the person sees it;
- verification without an oracle: a holder is confirmed only with the certificate's own verification code,
  wrong codes are limited per certificate, clients per minute, serials do not follow one another;
- least exposure: phone and ID numbers masked for every staff role but the window clerk serving the case;
- the watch (安全监控): refused bursts, reads outside cases, night reads and failed verifications open a
  supervision case for the data office with the access-log entries as evidence."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest_asyncio
from sqlalchemy import text

from services.datashare.app import create_app as create_datashare
from services.datashare.config import DatashareConfig
from services.datashare.domain.identifiers import identifier_is_valid
from services.datashare.tests.factories import credit_code, id_number
from services.efficacy.app import create_app as create_efficacy
from services.intake.app import create_app as create_intake
from services.intake.tests import factories as f
from services.workflow.app import create_app as create_workflow
from shared.testing import eventually, running_app
from tests.security.conftest import serve

DS, IN, WF, EF = "/datashare/v1", "/intake/v1", "/workflow/v1", "/efficacy/v1"
PHONE = "13912345678"
BUSINESS_LICENCE = "11441781MB0000001A001"
NOW_HOUR = datetime.now(ZoneInfo("Asia/Shanghai")).hour

#: Low thresholds so each rule is reached in a few requests; "night" is the current two hours, so the night rule
#: can be seen without waiting for 22:00.
CONFIG = DatashareConfig(
    reasoned_lookups_per_hour=4, verifications_per_client_per_minute=1000,
    failed_verifications_per_certificate_per_hour=3, watch_outside_case_holders=3, watch_refused_reads=4,
    watch_failed_verifications=5, watch_night_reads=6, night_starts_hour=NOW_HOUR,
    night_ends_hour=(NOW_HOUR + 2) % 24,
)


def trust_item() -> dict[str, Any]:
    """食品经营许可 whose legal representative's identity comes from the population registry (name and gender
    only) and whose form carries a phone number."""
    p = f.food_permit_item()
    p["materials"] = [dict(m, fields=["name", "gender"]) if m["code"] == "M02" else m
                      for m in p["materials"] if m["code"] in ("M02", "M03")]
    p["form_fields"] = [*p["form_fields"][:2], {"name": "phone", "label": "联系电话", "type": "phone", "required": True}]
    return p


class Platform:
    def __init__(self, intake: Any, workflow: Any, datashare: Any, efficacy: Any, tokens: Any) -> None:
        self.intake, self.workflow, self.datashare, self.efficacy, self.tokens = (
            intake, workflow, datashare, efficacy, tokens)
        self.item = trust_item()

    def staff(self, role: str, dept: str | None = None, point: str | None = None, **claims: Any) -> dict[str, str]:
        extra = {k: v for k, v in (("dept", dept), ("point", point)) if v}
        return self.tokens.headers(f"{role}-{uuid.uuid4().hex[:6]}", kind="staff", roles=[role], **extra, **claims)

    def system(self, dept: str) -> dict[str, str]:
        return self.tokens.headers(f"system-{dept}-{uuid.uuid4().hex[:4]}", kind="department_system",
                                   roles=["department_system"], dept=dept)

    def person(self, hid: str, level: int = 2) -> dict[str, str]:
        # The account id is not the ID number (identity's ids are opaque), so a leak of one is not hidden in the other.
        sub = "person-" + hashlib.sha256(hid.encode()).hexdigest()[:12]
        return self.tokens.headers(sub, kind="person", roles=["citizen"],
                                   hid=hid, name="陈明", level=level)

    async def import_people(self, *people: tuple[str, str]) -> None:
        gaj = self.staff("department_reviewer", "LD-GAJ")
        rows = [{"id_number": hid, "name": name, "gender": "男", "birth_date": f"{hid[6:10]}-{hid[10:12]}-{hid[12:14]}",
                 "address": "罗定市罗城街道兴华路1号", "phone": PHONE} for hid, name in people]
        r = await self.datashare.client.post(f"{DS}/registries/population/imports", headers=gaj, json=rows)
        assert r.status_code == 200, r.text

    async def submitted_application(self, applicant: str) -> dict[str, Any]:
        """A citizen's application at LD-CENTRE, handed in: the registry material was fetched by the system."""
        headers = self.person(applicant)
        r = await self.intake.client.post(f"{IN}/applications", headers=headers, json={
            "item_code": self.item["code"], "channel": "online", "service_point": "LD-CENTRE",
            "form": {"shop_name": "罗城小厨", "address": "罗定市罗城街道兴华路1号", "phone": PHONE}})
        assert r.status_code == 201, r.text
        app = r.json()
        r = await self.intake.client.post(f"{IN}/applications/{app['id']}/materials", headers=headers,
                                          data={"material_code": "M03"},
                                          files={"file": ("plan.pdf", f.PDF, "application/pdf")})
        assert r.status_code == 201, r.text
        r = await self.intake.client.post(f"{IN}/applications/{app['id']}/submit", headers=headers)
        assert r.status_code in (200, 201), r.text
        assert r.json()["status"] == "submitted"
        return r.json()

    async def accepted_with_tasks(self, applicant: str) -> tuple[dict[str, Any], dict[str, str]]:
        """Accepted at the window; workflow opened the parallel stage: task id per department."""
        app = await self.submitted_application(applicant)
        clerk = self.staff("window_clerk", "LD-ZSJ", "LD-CENTRE")
        r = await self.intake.client.post(f"{IN}/applications/{app['id']}/accept", headers=clerk)
        assert r.status_code == 200, r.text

        async def tasks() -> dict[str, str] | None:
            admin = self.staff("admin")
            r = await self.workflow.client.get(f"{WF}/cases/{app['id']}", headers=admin)
            if r.status_code != 200:
                return None
            found = {t["department"]: t["id"] for s in r.json()["stages"] for t in s["tasks"]
                     if t["state"] == "open"}
            return found if len(found) >= 4 else None

        return app, await eventually(tasks, timeout=30)

    async def registry_read(self, headers: dict[str, str], hid: str, **params: Any) -> Any:
        return await self.datashare.client.get(f"{DS}/registries/population/{hid}", headers=headers, params=params)

    async def known_to_datashare(self, application_id: str, department: str, state: str = "open") -> None:
        async def projected() -> bool:
            async with self.datashare.app.state.db.transaction() as s:
                row = await s.execute(text("SELECT state FROM workflow_task WHERE application_id = :a "
                                           "AND department = :d"), {"a": application_id, "d": department})
                return row.scalar() == state

        await eventually(projected, timeout=20)


@pytest_asyncio.fixture(scope="module")
async def platform(settings_for, tokens, bus_prefix):
    # One bus for the four services (a sub-prefix of this run's, so the run's clean-up removes its stream).
    bus = f"{bus_prefix}trust"
    ds_settings = settings_for("datashare", prefix=bus)
    async with serve(create_datashare, ds_settings, tokens=tokens, config=CONFIG) as datashare:
        in_settings = settings_for("intake", prefix=bus, service_urls={"datashare": datashare.url})
        async with serve(create_intake, in_settings, tokens=tokens) as intake:
            # Datashare reads the intake URL per request: point it at the intake just started.
            datashare.app.state.settings.platform.service_urls["intake"] = intake.url
            async with running_app(create_workflow, settings_for("workflow", prefix=bus), tokens=tokens) as workflow, \
                    running_app(create_efficacy, settings_for("efficacy", prefix=bus), tokens=tokens) as efficacy:
                p = Platform(intake, type("W", (), {"client": workflow})(), datashare,
                             type("E", (), {"client": efficacy})(), tokens)
                await intake.app.state.bus.publish(f.published(p.item))

                async def everyone_knows_the_item() -> bool:
                    async with datashare.app.state.db.transaction() as s:
                        row = await s.execute(text("SELECT 1 FROM published_item WHERE code = :c"),
                                              {"c": p.item["code"]})
                        if row.first() is None:
                            return False
                    r = await intake.client.post(f"{IN}/applications", headers=p.person(id_number()), json={
                        "item_code": p.item["code"], "channel": "online", "service_point": "LD-CENTRE"})
                    return r.status_code == 201

                await eventually(everyone_knows_the_item, timeout=30)
                yield p


# --- purpose-bound reads ----------------------------------------------------------------------------------------

async def test_a_department_reads_a_population_record_only_for_a_case_where_it_holds_an_open_task(platform):
    p = platform
    applicant, stranger = id_number("19800202"), id_number("19810303")
    await p.import_people((applicant, "陈明"), (stranger, "路人甲"))
    app, tasks = await p.accepted_with_tasks(applicant)
    await p.known_to_datashare(app["id"], "LD-WJJ")

    wjj = p.staff("department_reviewer", "LD-WJJ")
    # Without an application, and for an application where the department holds no task (citing another
    # department's case), the record is refused — before, both answered the full record.
    for headers, params in [
        (wjj, {}),
        (p.system("LD-WJJ"), {}),
        (p.staff("department_reviewer", "LD-MZJ"), {"application_id": app["id"]}),
        (p.staff("department_reviewer", "LD-GAJ"), {"application_id": app["id"]}),
        (p.staff("window_clerk", "LD-ZSJ", "LD-CENTRE"), {"application_id": app["id"]}),  # accepted already
    ]:
        r = await p.registry_read(headers, applicant, **params)
        assert r.status_code == 403, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json" and PHONE not in r.text

    # With its open task: only what the item's material needs (name, gender), no phone, address or birth date.
    r = await p.registry_read(wjj, applicant, application_id=app["id"])
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "陈明", "gender": "男"}
    r = await p.registry_read(p.system("LD-WJJ"), applicant, application_id=app["id"], material_code="M02")
    assert r.status_code == 200 and set(r.json()) == {"name", "gender"}
    # Its case is no key to anyone else's record.
    r = await p.registry_read(wjj, stranger, application_id=app["id"])
    assert r.status_code == 403 and r.json()["type"].endswith("holder-not-in-application")

    # Once the department has decided, the purpose is gone.
    r = await p.workflow.client.post(f"{WF}/tasks/{tasks['LD-WJJ']}/decision", headers=wjj,
                                     json={"outcome": "approve"})
    assert r.status_code == 200, r.text
    await p.known_to_datashare(app["id"], "LD-WJJ", "closed")
    r = await p.registry_read(wjj, applicant, application_id=app["id"])
    assert r.status_code == 403 and r.json()["type"].endswith("no-open-task")

    # The person sees every read, refused ones too, each with its purpose.
    log = (await p.datashare.client.get(f"{DS}/me/access-log", headers=p.person(applicant))).json()["items"]
    lookups = [e for e in log if e["action"] == "registry_lookup"]
    assert [e["outcome"] for e in lookups].count("found") == 2
    assert [e["outcome"] for e in lookups].count("refused") >= 6
    for e in lookups:
        if e["outcome"] == "found":
            assert e["application_id"] == app["id"] and e["purpose"].startswith("department")
            assert e["fields"] == ["gender", "name"]


async def test_the_window_clerk_serving_the_case_reads_while_accepting_it(platform):
    p = platform
    applicant = id_number("19790404")
    await p.import_people((applicant, "何芳"))
    app = await p.submitted_application(applicant)
    here = p.staff("window_clerk", "LD-ZSJ", "LD-CENTRE")
    r = await p.registry_read(here, applicant, application_id=app["id"])
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "何芳", "gender": "男"}
    elsewhere = p.staff("window_clerk", "LD-ZSJ", "LD-LC")
    assert (await p.registry_read(elsewhere, applicant, application_id=app["id"])).status_code == 403


async def test_an_admin_looks_up_only_with_a_written_reason_within_a_limit_and_the_person_sees_it(platform):
    p = platform
    person = id_number("19700505")
    await p.import_people((person, "林杰"))
    admin = p.staff("admin")
    r = await p.registry_read(admin, person)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.reason"
    r = await p.registry_read(admin, person, reason="户籍信息核查（信访件2026-118）")
    assert r.status_code == 200, r.text
    record = r.json()
    assert record["name"] == "林杰" and record["phone"] == "139****5678" and person not in r.text
    # Supervisors too; reviewers cannot use a reason instead of a case.
    reviewer = p.staff("department_reviewer", "LD-WJJ")
    assert (await p.registry_read(reviewer, person, reason="随便看看看看")).status_code == 403
    for _ in range(3):
        await p.registry_read(admin, person, reason="户籍信息核查（信访件2026-118）")
    r = await p.registry_read(admin, person, reason="户籍信息核查（信访件2026-118）")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0

    mine = (await p.datashare.client.get(f"{DS}/me/lookups", headers=p.person(person))).json()["items"]
    found = [e for e in mine if e["outcome"] == "found"]
    assert len(found) == 4 and all(e["purpose"] == "户籍信息核查（信访件2026-118）" for e in found)
    assert any(e["outcome"] == "refused" and e["accessor_department"] == "LD-WJJ" for e in mine)


async def test_a_holders_data_is_released_only_to_assurance_level_two(platform):
    p = platform
    applicant = id_number("19880808")
    await p.import_people((applicant, "吴敏"))
    app = await p.submitted_application(applicant)
    body = {"application_id": app["id"], "item_code": p.item["code"], "item_version": 1, "material_code": "M02",
            "holder_id": applicant, "holder_kind": "person"}
    r = await p.datashare.client.post(f"{DS}/requests", headers=p.person(applicant, level=1), json=body)
    assert r.status_code == 403 and r.json()["type"].endswith("assurance-level-too-low")
    r = await p.datashare.client.post(f"{DS}/requests", headers=p.person(applicant, level=2), json=body)
    assert r.status_code == 200 and r.json()["record"] == {"name": "吴敏", "gender": "男"}


# --- verification without an oracle -----------------------------------------------------------------------------

async def issue(p: Platform, holder: str, kind: str = "001") -> dict[str, Any]:
    scjgj = p.staff("department_reviewer", "LD-SCJGJ")
    r = await p.datashare.client.post(f"{DS}/certificates", headers=scjgj, json={
        "type_code": BUSINESS_LICENCE, "holder_id": holder, "holder_kind": kind, "holder_name": "好味餐饮店",
        "fields": {"name": "好味餐饮店", "legal_representative": "陈明"}})
    assert r.status_code == 201, r.text
    return r.json()


async def test_verification_never_confirms_a_guessed_holder_without_the_certificates_code(platform):
    p = platform
    holder = id_number("19900101")
    cert = await issue(p, holder, "111")
    url = f"{DS}/certificates/{cert['number']}/verification"
    # Before: ?holder= answered holder_matches for any guess, and the masked holder gave away the rest.
    r = await p.datashare.client.get(url, params={"holder": holder})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.code"
    plain = (await p.datashare.client.get(url)).json()
    assert plain["status"] == "valid" and plain["holder"] is None and plain["holder_matches"] is None
    assert holder[-4:] not in str(plain)
    wrong = (await p.datashare.client.get(url, params={"holder": holder, "code": "0000000000"})).json()
    assert wrong["code_valid"] is False and wrong["holder_matches"] is None and wrong["holder"] is None
    right = (await p.datashare.client.get(url, params={"holder": holder, "code": cert["verification_code"]})).json()
    assert right["code_valid"] is True and right["holder_matches"] is True and right["holder"] != holder
    # Wrong codes are limited per certificate: after the third, even the right code waits.
    for _ in range(2):
        await p.datashare.client.get(url, params={"code": "ZZZZZZZZZZ"})
    r = await p.datashare.client.get(url, params={"code": cert["verification_code"]})
    assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["Retry-After"]) > 0
    # The holder sees the attempts.
    org_log = (await p.datashare.client.get(f"{DS}/me/access-log", headers=p.person(holder))).json()["items"]
    assert sum(e["outcome"] == "code_mismatch" for e in org_log) == 3


async def test_certificate_serials_do_not_follow_one_another(platform):
    p = platform
    certs = [await issue(p, credit_code()) for _ in range(6)]
    serials = [int(c["number"][-6:]) for c in certs]
    assert len(set(serials)) == 6
    steps = {b - a for a, b in zip(serials, serials[1:], strict=False)}
    assert steps != {1} and len(steps) > 1, serials
    for c in certs:  # the identifier stays valid to GB/T 36904 (ISO 7064 MOD 37,36 over its characters)
        assert identifier_is_valid(c["identifier"]) and c["identifier"].split(".")[-3] == c["number"][-6:]


async def test_public_verification_is_limited_per_client(settings_for, tokens):
    config = DatashareConfig(verifications_per_client_per_minute=3)
    async with running_app(create_datashare, settings_for("datashare"), tokens=tokens, config=config) as ds:
        codes = [(await ds.get(f"{DS}/certificates/{BUSINESS_LICENCE}{n:06d}/verification")).status_code
                 for n in range(5)]
        assert codes[:3] == [404, 404, 404] and codes[3:] == [429, 429]
        r = await ds.post(f"{DS}/certificates/verify-document", json={"content": {}, "signature": "x", "key_id": "k"})
        assert r.status_code == 429 and "Retry-After" in r.headers


# --- least exposure ----------------------------------------------------------------------------------------------

async def test_phone_and_id_numbers_are_masked_for_every_staff_role_but_the_serving_clerk(platform):
    p = platform
    applicant = id_number("19750606")
    await p.import_people((applicant, "黄丽"))
    app = await p.submitted_application(applicant)
    url = f"{IN}/applications/{app['id']}"
    for who in (p.staff("department_reviewer", "LD-SCJGJ"), p.system("LD-SCJGJ"), p.staff("supervisor"),
                p.staff("admin"), p.staff("window_clerk", "LD-SCJGJ", "LD-LC")):
        r = await p.intake.client.get(url, headers=who)
        assert r.status_code == 200, r.text
        assert PHONE not in r.text and applicant not in r.text, r.text
        assert r.json()["form"]["phone"] == "139****5678"
    serving = await p.intake.client.get(url, headers=p.staff("window_clerk", "LD-ZSJ", "LD-CENTRE"))
    assert serving.json()["form"]["phone"] == PHONE and serving.json()["applicant"]["holder_id"] == applicant

    # Datashare: the issuing department reads its certificate with the holder's ID masked and no signed copy
    # (which carries it in full); the holder reads it all.
    cert = await issue(p, applicant, "111")
    r = await p.datashare.client.get(f"{DS}/certificates/{cert['number']}",
                                     headers=p.staff("department_reviewer", "LD-SCJGJ"))
    assert r.status_code == 200 and applicant not in r.text
    assert r.json()["document"] is None and r.json()["verification_code"] is None
    mine = await p.datashare.client.get(f"{DS}/certificates/{cert['number']}", headers=p.person(applicant))
    assert mine.json()["holder_id"] == applicant and mine.json()["document"]["content"]["holder_id"] == applicant

    # The archive: a window clerk's look-up comes masked.
    async def archived() -> Any:
        r = await p.datashare.client.get(f"{DS}/archive", params={"holder_id": applicant},
                                         headers=p.staff("window_clerk", "LD-ZSJ", "LD-CENTRE"))
        return r if r.status_code == 200 and r.json()["items"] else None

    clerk = p.staff("window_clerk", "LD-ZSJ", "LD-CENTRE")
    r = await p.intake.client.post(f"{url}/accept", headers=clerk)
    assert r.status_code == 200, r.text
    r = await eventually(archived, timeout=20)
    assert applicant not in r.text and PHONE not in r.text


# --- the watch --------------------------------------------------------------------------------------------------

async def supervision_items(p: Platform, reader: str, kind: str) -> list[dict[str, Any]]:
    supervisor = p.staff("supervisor")

    async def opened() -> list[dict[str, Any]] | None:
        r = await p.efficacy.client.get(f"{EF}/supervision", headers=supervisor,
                                        params={"kind": "data_access_anomaly"})
        found = [i for i in r.json()["items"] if reader in i["detail"] and kind in i["detail"]]
        return found or None

    return await eventually(opened, timeout=20)


async def test_a_burst_of_refused_reads_opens_a_supervision_case_for_the_data_office(platform):
    p = platform
    snoop_id = f"snoop-{uuid.uuid4().hex[:6]}"
    snoop = p.tokens.headers(snoop_id, kind="staff", roles=["department_reviewer"], dept="LD-JYJ")
    people = [id_number("19600101") for _ in range(4)]
    await p.import_people(*[(h, "某人") for h in people])
    for h in people:
        assert (await p.registry_read(snoop, h)).status_code == 403
    items = await supervision_items(p, snoop_id, "refused")
    item = items[0]
    assert item["department"] == "LD-ZSJ" and item["is_case"] is True and item["state"] == "open"
    assert "Access-log entries:" in item["detail"] and not any(h in item["detail"] for h in people)
    # The evidence names the very log entries; the supervisor finds them in the audit.
    anomalies = (await p.datashare.client.get(f"{DS}/access-anomalies", headers=p.staff("supervisor"))).json()
    mine = next(a for a in anomalies if a["reader"] == snoop_id and a["kind"] == "refused_reads")
    audit = (await p.datashare.client.get(f"{DS}/access-log", params={"accessor": snoop_id},
                                          headers=p.staff("supervisor"))).json()["items"]
    assert set(mine["entry_seqs"]) == {e["seq"] for e in audit}
    assert all(e["outcome"] == "refused" and e["holder"] not in people for e in audit)


async def test_look_ups_of_many_people_outside_cases_and_at_night_are_reported(platform):
    p = platform
    sup_id = f"sup-{uuid.uuid4().hex[:6]}"
    supervisor = p.tokens.headers(sup_id, kind="staff", roles=["supervisor"])
    people = [id_number("19650101") for _ in range(3)]
    await p.import_people(*[(h, "某人") for h in people])
    for h in people:
        assert (await p.registry_read(supervisor, h, reason="批量核对户籍信息")).status_code == 200
    await supervision_items(p, sup_id, "read the data of 3 people")
    # Night reads (the configured night is now): a department reading on its own case, again and again.
    applicant = id_number("19660101")
    await p.import_people((applicant, "夜读"))
    app = await p.submitted_application(applicant)
    clerk_id = f"clerk-{uuid.uuid4().hex[:6]}"
    clerk = p.tokens.headers(clerk_id, kind="staff", roles=["window_clerk"], dept="LD-ZSJ", point="LD-CENTRE")
    for _ in range(CONFIG.watch_night_reads):
        assert (await p.registry_read(clerk, applicant, application_id=app["id"])).status_code == 200
    await supervision_items(p, clerk_id, "at night")


async def test_a_client_failing_verifications_is_reported(platform):
    p = platform
    certs = [await issue(p, credit_code()) for _ in range(3)]
    for c in certs:
        for _ in range(2):
            r = await p.datashare.client.get(f"{DS}/certificates/{c['number']}/verification",
                                             params={"code": "AAAAAAAAAA"})
            assert r.status_code == 200 and r.json()["code_valid"] is False
    await supervision_items(p, "client:", "wrong certificate verification codes")
