"""The completeness check behind the one-time notice (一次性告知): every missing or invalid material and form
field is found in one pass and told at once, each with the rule it breaks; never piecemeal."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.intake.domain.findings import Finding

#: Material sources the system obtains from datashare instead of asking the applicant.
FETCHED_SOURCES = frozenset({"certificate", "registry"})
#: Certificate reference numbers are accepted for certificates the government issued.
REFERENCE_SOURCES = frozenset({"own_certificate", "certificate"})


@dataclass(frozen=True)
class Provided:
    material_code: str
    kind: str  # upload | certificate_ref | commitment | fetched


def materials_of(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(item.get("materials") or [])


def material(item: Mapping[str, Any], code: str) -> dict[str, Any] | None:
    return next((m for m in materials_of(item) if m.get("code") == code), None)


def reviewing_departments(item: Mapping[str, Any]) -> frozenset[str]:
    """Every department the item's process names (parallel reviewers included)."""
    steps = (item.get("process") or {}).get("steps") or []
    return frozenset(d for s in steps for d in (s.get("departments") or []) if isinstance(d, str))


def needed_now(m: Mapping[str, Any]) -> bool:
    """Required materials are needed at submission; 容缺后补 (`may_follow`) ones may come later."""
    return bool(m.get("necessity", "required") == "required")


def to_fetch(item: Mapping[str, Any], provided: Iterable[Provided]) -> list[dict[str, Any]]:
    """Materials the system should request from datashare: obtainable there and not yet provided."""
    have = {p.material_code for p in provided}
    return [m for m in materials_of(item) if m.get("source") in FETCHED_SOURCES and m["code"] not in have]


def check_form(item: Mapping[str, Any], form: Mapping[str, Any]) -> list[Finding]:
    """Every form problem at once, by each field's type rule (domain/forms.py)."""
    from services.intake.domain.forms import check_values

    return check_values(item, form)


def check_materials(
    item: Mapping[str, Any], provided: Iterable[Provided], fetch_failures: Mapping[str, str] | None = None
) -> list[Finding]:
    """`fetch_failures` maps material code → `no_match`, `refused` or `unavailable` for materials datashare could
    not give."""
    fetch_failures = fetch_failures or {}
    by_code: dict[str, set[str]] = {}
    for p in provided:
        by_code.setdefault(p.material_code, set()).add(p.kind)
    out: list[Finding] = []
    for m in materials_of(item):
        code, name = m["code"], m.get("name") or m["code"]
        kinds = by_code.get(code, set())
        if "commitment" in kinds and not m.get("commitment_allowed"):
            out.append(Finding(f"materials.{code}", "commitment_not_allowed", f"“{name}”不适用告知承诺，请提交材料。"))
            continue
        if kinds or not needed_now(m):
            continue
        failure = fetch_failures.get(code)
        if failure == "no_match":
            out.append(Finding(
                f"materials.{code}", "not_found_in_datashare",
                f"系统未能在共享平台查到“{name}”，请上传该材料。",
            ))
        elif failure == "refused":
            out.append(Finding(
                f"materials.{code}", "datashare_refused",
                f"共享平台未能为本申请提供“{name}”，请上传该材料。",
            ))
        elif failure == "unavailable":
            out.append(Finding(
                f"materials.{code}", "datashare_unavailable",
                f"共享平台暂时无法提供“{name}”，请稍后再查或上传该材料。",
            ))
        elif m.get("commitment_allowed"):
            out.append(Finding(f"materials.{code}", "required", f"请提交“{name}”，或作出书面承诺（告知承诺）。"))
        else:
            out.append(Finding(f"materials.{code}", "required", f"请提交“{name}”。"))
    return out


def check(
    item: Mapping[str, Any],
    form: Mapping[str, Any],
    provided: Iterable[Provided],
    fetch_failures: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every problem of an application at once: the form's, then the materials'."""
    provided = list(provided)
    return check_form(item, form) + check_materials(item, provided, fetch_failures)


def check_channel_and_point(item: Mapping[str, Any], *, channel: str, service_point: str) -> list[Finding]:
    out = []
    channels = item.get("channels") or []
    if channel not in channels:
        out.append(Finding("channel", "channel_not_offered", f"This item is handled through {', '.join(channels) or 'no channel'}."))
    if (f := check_point(item, service_point)) is not None:
        out.append(f)
    return out


def offered(item: Mapping[str, Any], key: str = "offered_at") -> dict[str, dict[str, Any]] | None:
    """`offered_at` / `collect_at` as catalog resolved them through the service-point tree (a town's villages
    included unless excluded); None for versions published before catalog resolved points."""
    refs = item.get(key)
    if not isinstance(refs, list) or not item.get("offered_at"):
        return None
    return {r["code"]: r for r in refs if isinstance(r, dict) and r.get("code")}


def check_point(item: Mapping[str, Any], service_point: str) -> Finding | None:
    """Handed in only where the item is offered; a code the tree does not know is refused too."""
    points = offered(item)
    if points is not None:
        if service_point in points:
            return None
        return Finding("service_point", "service_point_not_offered",
                       f"服务点 {service_point} 不存在或不办理此事项。")
    listed = item.get("service_points") or []
    if "*" not in listed and service_point not in listed:
        return Finding("service_point", "service_point_not_offered", "This item is not handled at this service point.")
    return None


def check_audience(item: Mapping[str, Any], applicant_kind: str) -> Finding | None:
    audience = item.get("audience") or []
    wanted = "natural_person" if applicant_kind == "person" else "legal_person"
    if audience and wanted not in audience:
        return Finding("applicant", "audience", f"This item is for {' and '.join(audience)} applicants only.")
    return None
