"""Electronic certificates (电子证照): the type directory, field validation, canonical content, signature,
status. Pure: keys come in as bytes, nothing here touches the database."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from shared.errors import FieldError

#: Department code → credit code, as docs/CONTRACTS.md lists them (the issuer segment of an identifier).
DEPARTMENT_CREDIT_CODES: dict[str, str] = {
    "LD-ZSJ": "11441781MB0000008X",
    "LD-SCJGJ": "11441781MB0000001A",
    "LD-WJJ": "11441781MB0000002D",
    "LD-XFJ": "11441781MB0000003G",
    "LD-STHJJ": "11441781MB0000004K",
    "LD-GAJ": "11441781MB0000005N",
    "LD-MZJ": "11441781MB0000006R",
    "LD-RSJ": "11441781MB0000007W",
    "LD-ZJJ": "11441781MB0000009Y",
    "LD-JYJ": "11441781MB0000010L",
    "LD-YBJ": "11441781MB0000011Q",
}


def _schema(required: list[str], **props: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"type": kind} for name, kind in props.items()},
        "required": required,
    }


@dataclass(frozen=True)
class SeedType:
    code: str
    name: str
    department: str
    field_schema: dict[str, Any]
    validity_years: int | None


#: The demo directory (docs/CONTRACTS.md), seeded when the directory is empty.
SEED_TYPES: list[SeedType] = [
    SeedType("11441781MB0000001A001", "营业执照", "LD-SCJGJ",
             _schema(["name"], name="string", legal_representative="string", registered_capital="number",
                     address="string", business_scope="string", entity_type="string"), None),
    SeedType("11441781MB0000001A002", "食品经营许可证", "LD-SCJGJ",
             _schema(["name"], name="string", operator="string", legal_representative="string",
                     address="string", business_premises="string", main_business="string",
                     business_items="array"), 5),
    SeedType("11441781MB0000002D001", "公共场所卫生许可证", "LD-WJJ",
             _schema(["name"], name="string", address="string", premises_type="string", area_m2="number"), 4),
    SeedType("11441781MB0000002D002", "出生医学证明", "LD-WJJ",
             _schema(["name", "birth_date"], name="string", gender="string", birth_date="string",
                     birth_place="string", mother_name="string", father_name="string"), None),
    SeedType("11441781MB0000003G001", "公众聚集场所投入使用营业前消防安全检查合格证", "LD-XFJ",
             _schema(["name"], name="string", address="string", area_m2="number", use="string"), None),
    SeedType("11441781MB0000005N001", "居民户口簿", "LD-GAJ",
             _schema(["name"], name="string", household_head="string", address="string",
                     relationship="string", household_kind="string"), None),
    SeedType("11441781MB0000006R001", "结婚证", "LD-MZJ",
             _schema(["name", "spouse_name"], name="string", spouse_name="string", spouse_id_number="string",
                     registered_on="string"), None),
]

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def schema_problems(schema: Any, field: str = "body.field_schema") -> list[FieldError]:
    """A type's field schema must be the subset of JSON Schema this service checks: an object with typed
    properties and a list of required names among them."""
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        return [FieldError(field=field, rule="schema", message="An object schema: {type: object, properties}.")]
    props = schema.get("properties", {})
    if not isinstance(props, dict):
        return [FieldError(field=f"{field}.properties", rule="schema", message="An object of field names.")]
    errors = []
    for name, spec in props.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in _JSON_TYPES:
            errors.append(FieldError(field=f"{field}.properties.{name}.type", rule="schema",
                                     message=f"One of {', '.join(_JSON_TYPES)}."))
    required = schema.get("required", [])
    if not isinstance(required, list) or any(r not in props for r in required):
        errors.append(FieldError(field=f"{field}.required", rule="schema",
                                 message="A list of names that appear in properties."))
    return errors


def field_problems(schema: dict[str, Any], fields: dict[str, Any], *, prefix: str = "body.fields",
                   partial: bool = False) -> list[FieldError]:
    """Check certificate fields against the type's schema: required names, declared types, no unknown
    names. `partial` (automatic issue from a decision) tolerates missing required fields."""
    props: dict[str, Any] = schema.get("properties", {})
    errors = []
    if not partial:
        for name in schema.get("required", []):
            if fields.get(name) in (None, ""):
                errors.append(FieldError(field=f"{prefix}.{name}", rule="required", message="This field is required."))
    for name, value in fields.items():
        spec = props.get(name)
        if spec is None:
            errors.append(FieldError(field=f"{prefix}.{name}", rule="unknown_field",
                                     message="The certificate type does not define this field."))
            continue
        kind = spec.get("type", "string")
        ok = isinstance(value, _JSON_TYPES.get(kind, (object,))) and not (
            kind in ("number", "integer") and isinstance(value, bool)
        )
        if value is not None and not ok:
            errors.append(FieldError(field=f"{prefix}.{name}", rule="type", message=f"Must be of type {kind}."))
    return errors


def fields_from_form(schema: dict[str, Any], form: dict[str, Any], holder_name: str | None) -> dict[str, Any]:
    """The fields an automatically issued certificate can take from the application: form values whose
    names the type defines and whose types fit, and the holder's name."""
    props: dict[str, Any] = schema.get("properties", {})
    out = {k: v for k, v in form.items() if k in props}
    if holder_name and "name" in props and not out.get("name"):
        out["name"] = holder_name
    return {k: v for k, v in out.items() if not field_problems(schema, {k: v}, partial=True)}


def _fit(kind: str, value: Any) -> Any:
    """A form value in the type the certificate field declares (an amount typed as text becomes a number)."""
    if kind in ("number", "integer") and isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return value
        return int(number) if kind == "integer" or number.is_integer() else number
    if kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def mapped_fields(schema: dict[str, Any], mapping: dict[str, str], *, form: dict[str, Any],
                  applicant: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    """A certificate's fields by the item's 证照字段映射 (`result.fields`): each field takes its value from the
    form (`form.<name>`), the applicant (`applicant.<attr>`) or the decision (`decision.<attr>`). Blank
    sources are left out; fields the type does not define are dropped."""
    props: dict[str, Any] = schema.get("properties", {})
    sources = {"form": form, "applicant": applicant, "decision": decision}
    out: dict[str, Any] = {}
    for target, source in mapping.items():
        if target not in props or "." not in source:
            continue
        where, _, attr = source.partition(".")
        value = (sources.get(where) or {}).get(attr)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        out[target] = _fit(str(props[target].get("type", "string")), value)
    return out


def missing_required(schema: dict[str, Any], fields: dict[str, Any]) -> list[str]:
    return [name for name in schema.get("required", []) if fields.get(name) in (None, "")]


def valid_until(issued_on: date, validity_years: int | None) -> date | None:
    if not validity_years:
        return None
    try:
        end = issued_on.replace(year=issued_on.year + validity_years)
    except ValueError:  # 29 February
        end = issued_on.replace(year=issued_on.year + validity_years, day=28)
    return date.fromordinal(end.toordinal() - 1)


def status_on(status: str, until: date | None, today: date) -> str:
    """`valid`, `revoked` or `expired` on a given day."""
    if status == "revoked":
        return "revoked"
    if until is not None and today > until:
        return "expired"
    return "valid"


def canonical_json(content: dict[str, Any]) -> bytes:
    """The bytes a signature covers: sorted keys, no spaces, UTF-8 (RFC 8785 for the values we use)."""
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_signing_key() -> tuple[str, str]:
    """(private, public) as base64url raw Ed25519 bytes."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _b64(private), _b64(public)


def sign(private_key: str, content: dict[str, Any]) -> str:
    return _b64(Ed25519PrivateKey.from_private_bytes(_unb64(private_key)).sign(canonical_json(content)))


def signature_is_valid(public_key: str, content: dict[str, Any], signature: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(_unb64(public_key)).verify(_unb64(signature), canonical_json(content))
        return True
    except (InvalidSignature, ValueError):
        return False


def public_jwk(kid: str, public_key: str) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": public_key, "kid": kid, "alg": "EdDSA", "use": "sig"}
