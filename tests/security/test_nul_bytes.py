"""A NUL character cannot be stored in, or compared with, a PostgreSQL text column; a service must refuse it as
bad input (4xx), never fail with 500. schemathesis found two such 500s on PostgreSQL (README); this sweeps every
string query parameter and every path parameter of every GET operation of every service with a NUL, as an admin (who passes the role
checks and reaches the query), plus the JSON fields of the rating found by the fuzzer. On SQLite a NUL is
stored, so these pass there; on PostgreSQL they show each place the check is missing."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.security.conftest import role_headers, serve
from tests.security.test_schemathesis import APPS

NUL = "a\x00b"


def string_query_params(operation: dict[str, Any]) -> list[str]:
    names = []
    for p in operation.get("parameters", []):
        schema = p.get("schema", {})
        types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
        if p["in"] == "query" and "string" in types and not schema.get("enum") and not schema.get("format"):
            names.append(p["name"])
    return names


@pytest.mark.parametrize("service", list(APPS))
async def test_a_nul_in_any_string_query_parameter_is_refused_not_a_server_error(service, settings_for, tokens):
    create_app, kwargs = APPS[service]
    admin = role_headers(tokens)["admin"]
    errors = []
    async with serve(create_app, settings_for(service), tokens=tokens, **kwargs) as served:
        spec = (await served.client.get(f"/{service}/openapi.json")).json()
        for path, item in spec["paths"].items():
            get = item.get("get")
            if get is None:
                continue
            if "{" in path:  # a NUL in each path parameter (the others a plain value)
                for name in re.findall(r"{(\w+)}", path):
                    url = re.sub(r"{(\w+)}", lambda m, name=name: "a%00b" if m.group(1) == name else "x1", path)
                    r = await served.client.get(url, headers=admin)
                    if r.status_code >= 500:
                        errors.append(f"GET {url} → {r.status_code}")
                continue
            for name in string_query_params(get):
                r = await served.client.get(path, params={name: NUL}, headers=admin)
                if r.status_code >= 500:
                    errors.append(f"GET {path}?{name}=a%00b → {r.status_code}")
    assert not errors, f"{service}: a NUL in a query parameter is a server error:\n" + "\n".join(errors)


async def test_a_nul_in_a_rating_is_refused_not_a_server_error(settings_for, tokens):
    create_app, kwargs = APPS["efficacy"]
    citizen = role_headers(tokens)["citizen"]
    async with serve(create_app, settings_for("efficacy"), tokens=tokens, **kwargs) as served:
        for body in ({"application_id": NUL, "level": "satisfied"},
                     {"application_id": "A-1", "level": "satisfied", "comment": NUL}):
            r = await served.client.post("/efficacy/v1/ratings", json=body, headers=citizen)
            assert r.status_code < 500, (body, r.status_code, r.text[:200])


def _with_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value + "\x00"
    if isinstance(value, dict):
        return {k: _with_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_nul(v) for v in value]
    return value


def _example(spec: dict[str, Any], operation: dict[str, Any]) -> Any:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return None
    schema = content.get("schema", {})
    if "$ref" in schema:
        schema = spec["components"]["schemas"].get(schema["$ref"].rsplit("/", 1)[1], {})
    examples = schema.get("examples") or ([content["example"]] if "example" in content else [])
    return examples[0] if examples else None


@pytest.mark.parametrize("service", list(APPS))
async def test_a_nul_in_the_documented_example_bodies_is_refused_not_a_server_error(service, settings_for, tokens):
    """Every POST/PUT/PATCH whose schema has an example, sent with a NUL appended to every string, as an admin
    and as a citizen (path parameters get a plain value)."""
    create_app, kwargs = APPS[service]
    roles = role_headers(tokens)
    errors = []
    async with serve(create_app, settings_for(service), tokens=tokens, **kwargs) as served:
        spec = (await served.client.get(f"/{service}/openapi.json")).json()
        for path, item in spec["paths"].items():
            url = re.sub(r"{(\w+)}", "x1", path)
            for method in ("post", "put", "patch"):
                example = _example(spec, item.get(method, {}))
                if example is None:
                    continue
                for role in ("admin", "citizen"):
                    r = await served.client.request(method.upper(), url, json=_with_nul(example),
                                                    headers={**roles[role], "If-Match": "*"})
                    if r.status_code >= 500:
                        errors.append(f"{method.upper()} {url} as {role} → {r.status_code}")
    assert not errors, f"{service}: a NUL in a body is a server error:\n" + "\n".join(errors)
