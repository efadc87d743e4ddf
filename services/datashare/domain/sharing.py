"""Purpose-bound sharing (信息跑腿): a request is allowed only for a live application whose published
item names this source for this material, by the holder themself or by the item's department, and the
answer carries only the fields the material needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.errors import Forbidden, invalid
from shared.principal import WINDOW_CLERK, Principal

SHARED_SOURCES = ("certificate", "own_certificate", "registry")

#: Intake statuses after which an application is no longer a purpose for reading anyone's data.
CLOSED_STATUSES = frozenset({
    "withdrawn", "not_accepted", "rejected", "approved", "decided", "delivered", "completed", "closed",
    "cancelled", "archived",
})


@dataclass(frozen=True)
class SourceNeed:
    """What a material lets the requester read."""

    material_code: str
    source: str  # "certificate" | "own_certificate" | "registry"
    certificate_type: str | None
    registry: str | None
    fields: tuple[str, ...]


def material_need(item: dict[str, Any], material_code: str) -> SourceNeed:
    """Find the material in the published item and check it is one datashare supplies."""
    for m in item.get("materials", []):
        if m.get("code") != material_code:
            continue
        source = m.get("source")
        if source not in SHARED_SOURCES:
            raise Forbidden(
                f"Material {material_code} is supplied by the applicant, not by a shared source.",
                slug="source-not-named",
            )
        if source == "registry" and m.get("registry") not in ("population", "legal_persons"):
            raise Forbidden(f"Material {material_code} names no registry.", slug="source-not-named")
        if source != "registry" and not m.get("certificate_type"):
            raise Forbidden(f"Material {material_code} names no certificate type.", slug="source-not-named")
        return SourceNeed(
            material_code=material_code,
            source=source,
            certificate_type=m.get("certificate_type") if source != "registry" else None,
            registry=m.get("registry") if source == "registry" else None,
            fields=tuple(m.get("fields") or ()),
        )
    raise invalid("body.material_code", "unknown_material", "The published item has no material with this code.")


def check_asked_source(need: SourceNeed, certificate_type: str | None, registry: str | None) -> None:
    """A requester who names a source must name the one the material names."""
    if certificate_type and certificate_type != need.certificate_type:
        raise Forbidden(
            f"The item's material {need.material_code} does not name certificate type {certificate_type}.",
            slug="source-not-named",
        )
    if registry and registry.replace("-", "_") != need.registry:
        raise Forbidden(
            f"The item's material {need.material_code} does not name the {registry} registry.",
            slug="source-not-named",
        )


def item_departments(item: dict[str, Any]) -> set[str]:
    depts = {item.get("department")}
    for step in (item.get("process") or {}).get("steps", []):
        depts.update(step.get("departments") or [])
        depts.add(step.get("lead_department"))
    return {d for d in depts if d}


def check_requester(principal: Principal, item: dict[str, Any], holder_id: str) -> str:
    """Who may ask: the holder (person, organisation agent, delegate), staff/systems of a department that
    handles the item, or a window clerk (one window accepts every department's items, 通办; intake still has
    to confirm the application to the clerk). Returns how the requester is entitled."""
    if principal.kind in ("staff", "department_system"):
        if principal.department and principal.department in item_departments(item):
            return "department"
        if principal.kind == "staff" and principal.has(WINDOW_CLERK):
            return "window"
        raise Forbidden("Only a department that handles this item may request data for its applications.")
    own = {principal.holder_id, principal.organisation}
    if principal.acting_for:
        own.add(principal.acting_for.holder_id)
    if holder_id in {o for o in own if o}:
        return "holder"
    raise Forbidden("The holder is neither the token's own holder nor its principal.", slug="not-holder")


def application_problem(application: dict[str, Any], item_code: str) -> str | None:
    """Why an application intake returned is not a live purpose, or None."""
    status = str(application.get("status", "")).lower()
    if not status or status in CLOSED_STATUSES:
        return f"the application is not live (status {status or 'unknown'})"
    app_item = application.get("item_code")
    if app_item and app_item != item_code:
        return "the application is for another item"
    return None


def project(values: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Only what the material needs; a material that names no fields gets none of the content."""
    return {f: values[f] for f in fields if f in values}


def purpose_text(item: dict[str, Any], material_code: str, application: dict[str, Any], application_id: str) -> str:
    """Why the data was read, in words the data subject understands (用数事由): the item, the application and
    the material it stood in for."""
    material: dict[str, Any] = next((m for m in item.get("materials", []) if m.get("code") == material_code), {})
    case = application.get("receipt_number") or application_id
    text = f"办理“{item.get('name') or application.get('item_name') or ''}”（申请 {case}）所需材料“{material.get('name') or material_code}”"
    return text[:200]
