"""Rules of a draft application and of what is given for it: how it may be started, changed, and completed, and
how a result is handed over. Pure: findings and problems, no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from services.intake.domain import completeness, delivery, fees, forms
from services.intake.domain.findings import Finding
from shared.errors import FieldError, PreconditionFailed, PreconditionRequired, ValidationProblem, invalid


def problems(findings: Iterable[Finding], detail: str | None = None) -> ValidationProblem:
    """The one problem+json that lists every finding (一次性告知)."""
    errors = [FieldError(**f.as_dict()) for f in findings]
    return ValidationProblem(errors, detail=detail) if detail else ValidationProblem(errors)


def start_findings(item: Mapping[str, Any], *, channel: str, service_point: str, applicant_kind: str,
                   form: Mapping[str, Any]) -> list[Finding]:
    """May this applicant apply for this item this way: channel and point offered, audience, the form's shape."""
    findings = completeness.check_channel_and_point(item, channel=channel, service_point=service_point)
    if (f := completeness.check_audience(item, applicant_kind)) is not None:
        findings.append(f)
    findings += forms.check_shape(item, form)
    return findings


def delivery_values(item: Mapping[str, Any], *, method: str, point: str | None, address: str | None,
                    handed_in_at: str) -> dict[str, Any]:
    """The delivery choice as the application keeps it; a pick-up point defaults to where it is handed in."""
    chosen = (point or handed_in_at) if method == "pickup" else None
    findings = delivery.check_choice(item, method=method, point=chosen, address=address)
    if findings:
        raise problems(findings, "The delivery choice is not possible for this item.")
    return {"delivery_method": method, "delivery_point": chosen,
            "delivery_address": address if method == "post" else None}


def exemption_values(item: Mapping[str, Any], code: str | None) -> dict[str, Any]:
    """A claimed fee exemption (减免) must be one the item lists."""
    if (f := fees.check_claim(item, code)) is not None:
        raise problems([f], "The fee exemption is not one this item lists.")
    return {"fee_exemption": code, "fee_exemption_state": "claimed" if code else None}


def merged_form(kept: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Fields given replace those kept; a null clears one (also how a key an older item version had is dropped)."""
    return {k: v for k, v in {**kept, **given}.items() if v is not None}


def requested_material(item: Mapping[str, Any], code: str) -> dict[str, Any]:
    material = completeness.material(item, code)
    if material is None:
        raise invalid("material_code", "unknown_material", "This item asks for no material with this code.")
    return material


def commitment_statement(material: Mapping[str, Any], statement: str | None) -> str:
    """告知承诺: only where the item allows it for this material; the default wording names the material."""
    name = material.get("name", material.get("code"))
    if not material.get("commitment_allowed"):
        raise invalid("kind", "commitment_not_allowed", f"“{name}”不适用告知承诺，请提交材料。")
    return statement or f"申请人承诺“{name}”所述情况真实，并愿承担不实承诺的法律责任。"


def certificate_reference(material: Mapping[str, Any], reference: str | None) -> str:
    """A certificate number stands for a material only when a government department issues it."""
    name = material.get("name", material.get("code"))
    if material.get("source") not in completeness.REFERENCE_SOURCES:
        raise invalid("kind", "certificate_ref_not_allowed", f"“{name}”不是政府部门核发的证照，不能只填证照编号。")
    if not reference or not reference.strip():
        raise invalid("reference", "required", "Give the certificate number.")
    return reference.strip()


def reusable(kind: str) -> None:
    if kind == "commitment":
        raise invalid("attachment_id", "commitment_not_reusable", "A commitment is made anew for each application.")


def hand_over_check(*, chosen: str | None, method: str, carrier: str | None, tracking_number: str | None) -> None:
    """The result goes the way the applicant chose; by post the carrier and tracking number are recorded."""
    if method != chosen:
        raise invalid("body.method", "not_chosen", f"The applicant chose `{chosen}`, not `{method}`.")
    if method == "post":
        missing = [FieldError(field=f"body.{n}", rule="required", message="Delivery by post records the carrier "
                              "and the tracking number.") for n, v in (("carrier", carrier),
                                                                       ("tracking_number", tracking_number)) if not v]
        if missing:
            raise ValidationProblem(missing)


def etag(application_id: str, updated_at: datetime) -> str:
    """Changes whenever the application does (every change sets `updated_at`)."""
    at = updated_at.replace(tzinfo=UTC) if updated_at.tzinfo is None else updated_at.astimezone(UTC)
    digest = hashlib.sha256(f"{application_id}:{at.isoformat()}".encode()).hexdigest()[:20]
    return f'"{digest}"'


def precondition(if_match: str | None, current: str) -> None:
    """A change to a draft names the ETag of the read it was made from, so no change is lost (428, 412)."""
    if if_match is None:
        raise PreconditionRequired("Send If-Match with the ETag of your last read, so no change is lost.")
    if if_match.strip() not in (current, "*"):
        raise PreconditionFailed("The application changed since you read it; read it again.")
