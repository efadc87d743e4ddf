"""Matching what earlier applications collected to what a new item asks for (no certificate asked twice)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.intake.domain.completeness import materials_of


@dataclass
class Earlier:
    """An earlier application, newest first in lists: its form, its item version and its attachments."""

    application_id: str
    form: Mapping[str, Any]
    item: Mapping[str, Any]
    attachments: Sequence[Any]  # objects with material_code, kind, reference, id


def prefill_form(item: Mapping[str, Any], earlier: Sequence[Earlier]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in item.get("form_fields") or []:
        for e in earlier:
            value = e.form.get(f["name"])
            if value not in (None, "", [], {}):
                out[f["name"]] = value
                break
    return out


def _match(target: Mapping[str, Any], source: Mapping[str, Any] | None, source_code: str) -> str | None:
    if source is not None and target.get("certificate_type") and target.get("certificate_type") == source.get("certificate_type"):
        return "certificate_type"
    if target.get("code") == source_code:
        return "code"
    if source is not None and target.get("name") and target.get("name") == source.get("name"):
        return "name"
    return None


def match_materials(item: Mapping[str, Any], earlier: Sequence[Earlier]) -> list[dict[str, Any]]:
    """For every material of `item`, the newest earlier attachment that is the same thing. Commitments are
    promises for one application and are never carried over."""
    out = []
    for target in materials_of(item):
        found = None
        for e in earlier:
            defs = {m["code"]: m for m in materials_of(e.item)}
            for a in e.attachments:
                if a.kind == "commitment":
                    continue
                how = _match(target, defs.get(a.material_code), a.material_code)
                if how:
                    found = {"material_code": target["code"], "from_application_id": e.application_id,
                             "from_material_code": a.material_code, "kind": a.kind, "reference": a.reference,
                             "attachment_id": a.id, "matched_by": how}
                    break
            if found:
                break
        if found:
            out.append(found)
    return out
