"""An item as CPSV-AP 3 JSON-LD (the EU Core Public Service Vocabulary), so open-data portals can read it."""

from __future__ import annotations

from typing import Any

from services.catalog.domain.model import KIND_NAMES, THEMES, ItemContent

CONTEXT: dict[str, Any] = {
    "cpsv": "http://purl.org/vocab/cpsv#",
    "cv": "http://data.europa.eu/m8g/",
    "dct": "http://purl.org/dc/terms/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "schema": "http://schema.org/",
    "PublicService": "cpsv:PublicService",
    "PublicOrganisation": "cv:PublicOrganisation",
    "Evidence": "cv:Evidence",
    "Output": "cv:Output",
    "Channel": "cv:Channel",
    "Cost": "cv:Cost",
    "Event": "cv:Event",
    "LegalResource": "cv:LegalResource",
    "identifier": "dct:identifier",
    "name": "dct:title",
    "description": "dct:description",
    "keyword": "cv:keyword",
    "language": "dct:language",
    "hasCompetentAuthority": {"@id": "cv:hasCompetentAuthority", "@type": "@id"},
    "hasInput": "cpsv:hasInput",
    "produces": "cpsv:produces",
    "hasChannel": "cv:hasChannel",
    "hasCost": "cv:hasCost",
    "hasLegalResource": "cv:hasLegalResource",
    "isGroupedBy": "cv:isGroupedBy",
    "thematicArea": "cv:thematicArea",
    "processingTime": "cv:processingTime",
    "sector": "cv:sector",
    "value": "cv:value",
    "currency": "cv:currency",
    "type": "dct:type",
}


def _duration(value: int, unit: str) -> str:
    return f"PT{value}H" if unit == "hours" else f"P{value}D"


def public_service(
    *, base: str, code: str, version: int, item: ItemContent, department: dict[str, str], published_at: str | None
) -> dict[str, Any]:
    iri = f"{base}/items/{code}"
    return {
        "@context": CONTEXT,
        "@id": f"{iri}?version={version}",
        "@type": "PublicService",
        "identifier": code,
        "name": {"@language": "zh-CN", "@value": item.name},
        "description": {"@language": "zh-CN", "@value": item.guide.summary or item.name},
        "keyword": item.keywords,
        "language": "zh-CN",
        "type": KIND_NAMES[item.kind],
        "dct:hasVersion": version,
        "dct:issued": published_at,
        "hasCompetentAuthority": {
            "@id": f"{base}/departments/{department['code']}",
            "@type": "PublicOrganisation",
            "name": department.get("name"),
            "identifier": department.get("credit_code"),
        },
        "thematicArea": [{"@type": "skos:Concept", "skos:notation": t, "skos:prefLabel": THEMES.get(t, t)}
                         for t in item.themes],
        "isGroupedBy": [{"@type": "Event", "name": e} for e in item.life_events],
        "hasInput": [
            {"@type": "Evidence", "identifier": m.code, "name": m.name, "description": m.notes or m.condition,
             "cv:evidenceTypeClassification": m.certificate_type or m.source}
            for m in item.materials
        ],
        "produces": [{"@type": "Output", "name": item.result.name, "type": item.result.type,
                      "identifier": item.result.certificate_type}],
        "hasChannel": [{"@type": "Channel", "type": ch} for ch in item.channels],
        "hasCost": [{"@type": "Cost", "description": f.name, "value": f.standard,
                     "currency": "CNY", "cv:isDefinedBy": f.basis} for f in item.fees.items],
        "hasLegalResource": [{"@type": "LegalResource", "name": basis} for basis in item.guide.legal_basis],
        "processingTime": _duration(item.promised_limit.value, item.promised_limit.unit),
    }
