"""No request may hold a worker (issue 13): every integer, date and instant a request carries is bounded.

Walks the OpenAPI of every service (and the simulator): each integer parameter and body field declares a minimum
and a maximum, each date and instant `formatMinimum`/`formatMaximum` (shared/bounds.py); then sends every such
query and path parameter a value past its bound — 2^63, the year 9999 — and expects a 422 problem+json naming
that parameter. Before, `?version=9223372036854775808` on the catalog's public item routes was a 500 (a driver
overflow), and `as_of=9999-12-31T00:00:00+08:00` on a clock took 25 s of one core."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from services.simulator.app import create_app as simulator_app
from tests.security.conftest import role_headers, serve
from tests.security.test_schemathesis import APPS

TOO_BIG = "9223372036854775808"
FAR_DATE = "9999-12-31"
FAR_INSTANT = "9999-12-31T00:00:00+08:00"
PLAIN = {"integer": "1", "date": "2026-11-30", "date-time": "2026-11-30T09:00:00+08:00"}


def kind_of(schema: dict[str, Any]) -> str | None:
    """`integer`, `date`, `date-time` or None, looking through `anyOf` (optional parameters)."""
    for s in [schema, *schema.get("anyOf", [])]:
        if s.get("type") == "integer":
            return "integer"
        if s.get("format") in ("date", "date-time"):
            return str(s["format"])
    return None


def bounded(schema: dict[str, Any]) -> bool:
    for s in [schema, *schema.get("anyOf", [])]:
        if s.get("type") in ("integer", "number") and not ({"minimum", "exclusiveMinimum"} & s.keys()
                                               and {"maximum", "exclusiveMaximum"} & s.keys()):
            return False
        if s.get("format") in ("date", "date-time") and not {"formatMinimum", "formatMaximum"} <= s.keys():
            return False
    return True


def unbounded_fields(schema: Any, components: dict[str, Any], path: str, seen: frozenset[str]) -> list[str]:
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return unbounded_fields(components.get(name, {}), components, path, seen | {name})
    out = [] if bounded(schema) or schema.get("type") == "object" else [path]
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            if sub.get("type") not in ("integer", "number", None) or "$ref" in sub or "properties" in sub:
                out += unbounded_fields(sub, components, path, seen)
    for name, sub in schema.get("properties", {}).items():
        out += unbounded_fields(sub, components, f"{path}.{name}", seen)
    if isinstance(schema.get("items"), dict):
        out += unbounded_fields(schema["items"], components, f"{path}[]", seen)
    return out


SERVICES = {**APPS, "simulator": (simulator_app, {})}


def simulator_settings(settings_for: Any) -> Any:
    from services.simulator.config import SimulatorSettings

    platform = settings_for("simulator").platform
    return SimulatorSettings(register_on_start=False, platform=platform, state_file=platform.var_dir / "sim-bounds.json")


@pytest.mark.parametrize("service", list(SERVICES))
async def test_every_integer_date_and_instant_parameter_is_bounded_and_refused_past_its_bound(
        service, settings_for, tokens):
    create_app, kwargs = SERVICES[service]
    settings = simulator_settings(settings_for) if service == "simulator" else settings_for(service)
    admin = role_headers(tokens)["admin"]
    unbounded: list[str] = []
    wrong: list[str] = []
    tried = 0
    async with serve(create_app, settings, tokens=tokens, **kwargs) as served:
        spec = (await served.client.get(f"/{service}/openapi.json")).json()
        components = spec.get("components", {}).get("schemas", {})
        for path, item in spec["paths"].items():
            for method, op in item.items():
                if not isinstance(op, dict):
                    continue
                params = op.get("parameters", [])
                for p in params:
                    if kind_of(p.get("schema", {})) and not bounded(p["schema"]):
                        unbounded.append(f"{method.upper()} {path} {p['in']}.{p['name']}")
                for ctype, content in op.get("requestBody", {}).get("content", {}).items():
                    for f in unbounded_fields(content.get("schema", {}), components, "body", frozenset()):
                        unbounded.append(f"{method.upper()} {path} ({ctype}) {f}")
                for p in params:
                    kind = kind_of(p.get("schema", {}))
                    if p["in"] not in ("query", "path") or kind is None:
                        continue
                    far = {"integer": TOO_BIG, "date": FAR_DATE, "date-time": FAR_INSTANT}[kind]
                    values = {q["name"]: PLAIN.get(kind_of(q.get("schema", {})) or "", "x1") for q in params
                              if q["in"] == "path" or (q["in"] == "query" and q.get("required"))}
                    values[p["name"]] = far
                    url = re.sub(r"{(\w+)}", lambda m, v=values: v[m.group(1)], path)
                    query = {q["name"]: values[q["name"]] for q in params if q["in"] == "query" and q["name"] in values}
                    r = await served.client.request(method.upper(), url, params=query, headers=admin)
                    tried += 1
                    fields = [e.get("field") for e in r.json().get("errors", [])] if r.status_code == 422 else []
                    if (r.status_code != 422 or r.headers["content-type"] != "application/problem+json"
                            or f"{p['in']}.{p['name']}" not in fields):
                        wrong.append(f"{method.upper()} {url}?{json.dumps(query)} → {r.status_code} {r.text[:160]}")
    assert not unbounded, f"{service}: parameters without bounds:\n" + "\n".join(unbounded)
    assert not wrong, f"{service}: values past their bound not refused with 422:\n" + "\n".join(wrong)
    if service in ("catalog", "efficacy", "intake"):
        assert tried >= 3, tried  # the walk did reach the parameters the issue names


async def test_a_clock_and_a_card_forecast_far_in_the_future_are_refused_at_once(settings_for, tokens):
    """The issue's reproductions: as a citizen on the efficacy clock, and the card forecast."""
    create_app, kwargs = APPS["efficacy"]
    roles = role_headers(tokens)
    async with serve(create_app, settings_for("efficacy"), tokens=tokens, **kwargs) as served:
        r = await served.client.get("/efficacy/v1/clocks/A-1", params={"as_of": FAR_INSTANT},
                                    headers={**roles["citizen"], "Accept-Language": "en"})
        assert r.status_code == 422 and r.json()["errors"][0] == {
            "field": "query.as_of", "rule": "date_range",
            "message": "Instants must lie in the supported years 2000–2100."}
        r = await served.client.get("/efficacy/v1/cards", params={"as_of": "6086-04-16"}, headers=roles["supervisor"])
        assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "date_range"
        r = await served.client.get("/efficacy/v1/cards", params={"as_of": "2100-12-31"}, headers=roles["supervisor"])
        assert r.status_code == 200, r.text
