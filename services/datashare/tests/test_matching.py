"""Registry matching for identity's registration (实名核验): only identity's service token asks, the answer is a
verdict without the record, and every match is in the holder's access log with its purpose."""

from __future__ import annotations

import pytest
import pytest_asyncio

from services.datashare.app import create_app
from services.datashare.domain.matching import normalise_name, organisation_verdict, person_verdict
from services.datashare.tests.factories import credit_code, id_number
from shared.testing import free_port, running_app

POPULATION = "/datashare/v1/registries/population"
LEGAL = "/datashare/v1/registries/legal-persons"


@pytest_asyncio.fixture(scope="module")
async def client(settings_for, tokens):
    settings = settings_for("datashare", service_urls={"intake": f"http://127.0.0.1:{free_port()}"})
    async with running_app(create_app, settings, tokens=tokens) as c:
        yield c


def identity_service(tokens) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return tokens.headers("identity", kind="service", roles=["service"], name="identity")


async def test_identity_gets_a_verdict_without_the_record_and_the_person_reads_the_check(client, tokens):
    number = id_number("19851212")
    keeper = tokens.headers("gaj", kind="staff", roles=["department_reviewer"], dept="LD-GAJ")
    r = await client.post(f"{POPULATION}/imports", headers=keeper, json=[
        {"id_number": number, "name": "买买提·艾力", "address": "罗定市罗城街道1号", "phone": "13800138000"}])
    assert r.status_code == 200, r.text
    me = identity_service(tokens)
    answers = {}
    for name in ("买买提•艾力", "买买提艾力"):
        r = await client.post(f"{POPULATION}/matches", headers=me, json={"id_number": number, "name": name})
        assert r.status_code == 200, r.text
        answers[name] = r.json()
    assert answers == {"买买提•艾力": {"result": "match"}, "买买提艾力": {"result": "name_mismatch"}}
    missing = await client.post(f"{POPULATION}/matches", headers=me, json={"id_number": id_number(), "name": "张三"})
    assert missing.json() == {"result": "not_found"}
    log = (await client.get("/datashare/v1/me/access-log", headers=tokens.headers("p1", hid=number))).json()["items"]
    assert [(e["action"], e["service"], e["purpose"], e["outcome"]) for e in log] == [
        ("registry_match", "identity", "实名核验 registration", "name_mismatch"),
        ("registry_match", "identity", "实名核验 registration", "match")]


@pytest.mark.parametrize("who", ["citizen", "staff", "other_service", "service_without_role"])
async def test_nobody_but_identitys_service_token_may_match(client, tokens, who):
    headers = {
        "citizen": tokens.headers("p1", hid=id_number()),
        "staff": tokens.headers("gaj", kind="staff", roles=["admin"], dept="LD-GAJ"),
        "other_service": tokens.headers("intake", kind="service", roles=["service"]),
        "service_without_role": tokens.headers("identity", kind="service", roles=[]),
    }[who]
    for path, body in ((f"{POPULATION}/matches", {"id_number": id_number(), "name": "张三"}),
                       (f"{LEGAL}/matches", {"credit_code": credit_code(), "name": "某公司",
                                             "legal_representative_id_number": id_number()})):
        r = await client.post(path, headers=headers, json=body)
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json", r.text


async def test_an_organisation_matches_only_under_its_name_status_and_legal_representative(client, tokens):
    code, rep, gone = credit_code(), id_number("19700101"), credit_code()
    keeper = tokens.headers("scj", kind="staff", roles=["department_reviewer"], dept="LD-SCJGJ")
    r = await client.post(f"{LEGAL}/imports", headers=keeper, json=[
        {"credit_code": code, "name": "罗定市好味餐饮店", "legal_representative": "陈明", "legal_representative_id": rep},
        {"credit_code": gone, "name": "已注销公司", "legal_representative_id": rep, "status": "注销"}])
    assert r.status_code == 200, r.text
    me = identity_service(tokens)

    async def verdict(**body: str) -> str:
        full = {"credit_code": code, "name": "罗定市好味餐饮店", "legal_representative_id_number": rep, **body}
        r = await client.post(f"{LEGAL}/matches", headers=me, json=full)
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"result"}, "nothing of the record is released"
        return r.json()["result"]

    assert await verdict() == "match"
    assert await verdict(name="别的公司") == "name_mismatch"
    assert await verdict(legal_representative_id_number=id_number()) == "not_legal_representative"
    assert await verdict(credit_code=credit_code()) == "not_found"
    assert await verdict(credit_code=gone, name="已注销公司") == "inactive"
    bad = await client.post(f"{LEGAL}/matches", headers=me, json={"credit_code": "123", "name": "x",
                                                                  "legal_representative_id_number": rep})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.credit_code"


def test_names_compare_without_spaces_full_width_forms_or_dot_variants():
    assert normalise_name(" 王 芳 ") == normalise_name("王芳")
    assert normalise_name("买买提・艾力") == normalise_name("买买提·艾力")
    assert person_verdict(None, "王芳") == "not_found"
    assert organisation_verdict({"name": "A", "legal_representative_id": "1"}, "A", "2") == "not_legal_representative"
