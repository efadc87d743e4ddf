"""Base registries (基础库): population (人口库) and legal persons (法人库), validated row by row on import."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from stdnum.cn import ric

from services.datashare.domain.identifiers import credit_code_problem, id_number_problem

POPULATION = "population"
LEGAL_PERSONS = "legal_persons"

#: Which department keeps which registry.
REGISTRY_KEEPERS = {POPULATION: "LD-GAJ", LEGAL_PERSONS: "LD-SCJGJ"}

#: Columns per registry: (name, required). The first is the key.
COLUMNS: dict[str, list[tuple[str, bool]]] = {
    POPULATION: [
        ("id_number", True), ("name", True), ("gender", False), ("birth_date", False), ("ethnicity", False),
        ("address", False), ("household_number", False), ("phone", False),
    ],
    LEGAL_PERSONS: [
        ("credit_code", True), ("name", True), ("legal_representative", False),
        ("legal_representative_id", False), ("entity_type", False), ("registered_capital", False),
        ("address", False), ("established_on", False), ("business_scope", False), ("status", False),
    ],
}
GENDERS = {"男": "男", "女": "女", "M": "男", "F": "女", "male": "男", "female": "女"}


@dataclass
class RejectedRow:
    line: int
    field: str
    rule: str
    reason: str


@dataclass
class ParsedImport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    total: int = 0


def key_column(registry: str) -> str:
    return COLUMNS[registry][0][0]


def read_records(body: bytes, content_type: str) -> list[tuple[int, dict[str, Any]]]:
    """(line, record) pairs. CSV: the line in the file (header = line 1). JSON: the record's position in
    the array, from 1 (or in `{"records": [...]}`). Raises ValueError for an unreadable body."""
    text = body.decode("utf-8-sig")
    if "json" in content_type:
        data = json.loads(text)
        if isinstance(data, dict):
            data = data.get("records")
        if not isinstance(data, list):
            raise ValueError("a JSON array of records, or {\"records\": [...]}")
        return [(i, r if isinstance(r, dict) else {"__not_object__": r}) for i, r in enumerate(data, 1)]
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise ValueError("a CSV with a header line")
    out = []
    for rec in reader:
        out.append((reader.line_num, {k.strip(): (v.strip() if isinstance(v, str) else v)
                                       for k, v in rec.items() if k is not None}))
    return out


def _date_problem(value: str) -> str | None:
    try:
        date.fromisoformat(value)
        return None
    except ValueError:
        return "Not a date in YYYY-MM-DD form."


def validate_record(registry: str, line: int, rec: dict[str, Any]) -> tuple[dict[str, Any] | None, RejectedRow | None]:
    if "__not_object__" in rec:
        return None, RejectedRow(line, "record", "type", "Each record must be an object.")
    cols = COLUMNS[registry]
    row: dict[str, Any] = {}
    for name, required in cols:
        value = rec.get(name)
        if isinstance(value, str):
            value = value.strip()
        if value in (None, ""):
            if required:
                return None, RejectedRow(line, name, "required", f"{name} is missing.")
            continue
        if not isinstance(value, (str, int, float)):
            return None, RejectedRow(line, name, "type", f"{name} must be text.")
        row[name] = str(value)
    unknown = sorted(set(rec) - {c for c, _ in cols})
    if unknown:
        return None, RejectedRow(line, unknown[0], "unknown_column", f"Unknown column {unknown[0]}.")
    if registry == POPULATION:
        row["id_number"] = row["id_number"].upper()
        if problem := id_number_problem(row["id_number"]):
            return None, RejectedRow(line, "id_number", *problem)
        born = ric.get_birth_date(row["id_number"]).isoformat()
        if "birth_date" in row and row["birth_date"] != born:
            return None, RejectedRow(line, "birth_date", "mismatch", "Differs from the birth date in the ID number.")
        row["birth_date"] = born
        if "gender" in row:
            if row["gender"] not in GENDERS:
                return None, RejectedRow(line, "gender", "enum", "男 or 女 (or M/F).")
            row["gender"] = GENDERS[row["gender"]]
        else:
            row["gender"] = "男" if int(row["id_number"][16]) % 2 else "女"
    else:
        row["credit_code"] = row["credit_code"].upper()
        if problem := credit_code_problem(row["credit_code"]):
            return None, RejectedRow(line, "credit_code", *problem)
        rep = row.get("legal_representative_id")
        if rep and (problem := id_number_problem(rep)):
            return None, RejectedRow(line, "legal_representative_id", *problem)
        if "established_on" in row and (msg := _date_problem(row["established_on"])):
            return None, RejectedRow(line, "established_on", "date", msg)
    return row, None


def parse_import(registry: str, records: list[tuple[int, dict[str, Any]]]) -> ParsedImport:
    """Validate every record; a key seen twice in one import is rejected the second time."""
    result = ParsedImport(total=len(records))
    seen: dict[str, int] = {}
    key = key_column(registry)
    for line, rec in records:
        row, rejected = validate_record(registry, line, rec)
        if rejected:
            result.rejected.append(rejected)
            continue
        assert row is not None
        if row[key] in seen:
            result.rejected.append(RejectedRow(line, key, "duplicate", f"Same {key} as line {seen[row[key]]}."))
            continue
        seen[row[key]] = line
        result.rows.append(row)
    return result
