"""Purpose-bound requests (按需共享): a holder's certificate or registry record for one material of one live
application, only the fields the material needs, every request (a refused one too) in the holder's access log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.datashare.domain import sharing
from services.datashare.domain.identifiers import HOLDER_KIND_ORGANISATION, normalise_holder_kind
from services.datashare.domain.purpose import Grant, release
from services.datashare.domain.registries import POPULATION
from services.datashare.service.common import (
    Context,
    check_holder_level,
    grant_for_application,
    log_access,
    refuse,
    today,
)
from services.datashare.store import certificates as cert_store
from services.datashare.store import items, registries
from shared.errors import Forbidden, Problem, invalid
from shared.principal import Principal


@dataclass
class Answer:
    status: str  # "found" | "no_match"
    material_code: str
    source: str
    certificate: dict[str, Any] | None = None
    record: dict[str, Any] | None = None


async def request_data(ctx: Context, session: AsyncSession, principal: Principal, *, application_id: str,
                       item_code: str, item_version: int, material_code: str, holder_id: str, holder_kind: str,
                       certificate_type: str | None, registry: str | None) -> Answer | Problem:
    kind = normalise_holder_kind(holder_kind)
    if kind is None:
        raise invalid("body.holder_kind", "enum", "person/111 or organisation/001.")
    content = await items.item_content(session, item_code, item_version)
    if content is None:
        raise invalid("body.item_version", "unknown_item", "No such published item version.")
    need = sharing.material_need(content, material_code)
    sharing.check_asked_source(need, certificate_type, registry)
    holder_id = holder_id.strip().upper()
    target = (f"registry:{'population' if need.registry == POPULATION else 'legal-persons'}" if need.registry
              else f"certificate-type:{need.certificate_type}")
    purpose_of = dict(application_id=application_id, item_code=item_code, material_code=material_code)
    grant: Grant | None = None
    try:
        if sharing.check_requester(principal, content, holder_id) == "holder":
            check_holder_level(principal)
            application = await ctx.intake.application(application_id)
            if reason := sharing.application_problem(application, item_code):
                raise Forbidden(f"Refused: {reason}.", slug="purpose-not-established")
        else:
            application = await ctx.intake.application(application_id)
            if application.get("item_code") not in (None, item_code) or (
                    application.get("item_version") not in (None, item_version)):
                raise Forbidden("The application is for another item or item version.",
                                slug="purpose-not-established")
            application.setdefault("item_version", item_version)
            grant = await grant_for_application(
                session, principal, application, holder_id=holder_id, registry=need.registry,
                certificate_type=need.certificate_type, material_code=material_code)
    except Forbidden as refusal:
        return await refuse(session, principal, refusal, action="purpose_request", target=target,
                            holder_id=holder_id, **purpose_of)

    def shown(values: dict[str, Any]) -> dict[str, Any]:
        projected = sharing.project(values, need.fields)
        return release(projected, grant) if grant is not None else projected

    answer = Answer(status="no_match", material_code=need.material_code, source=need.source)
    subject = holder_id
    if need.registry:
        key: str | None = holder_id
        if need.registry == POPULATION and kind == HOLDER_KIND_ORGANISATION:
            # A person's record asked for an organisation (法定代表人身份证明): the legal-persons registry names the
            # legal representative, whose record is the one read (and logged for them).
            key = await registries.legal_representative_id(session, holder_id)
            subject = key or holder_id
        values = await registries.lookup(session, need.registry, key) if key else None
        if values is not None:
            answer.status, answer.record = "found", shown(values)
    else:
        assert need.certificate_type is not None
        cert = await cert_store.current_certificate(session, holder_id, need.certificate_type, today())
        if cert is not None:
            answer.status = "found"
            answer.certificate = {
                "number": cert.number, "type_code": cert.type_code, "valid_until": cert.valid_until,
                **shown(cert.fields),
            }
    await log_access(
        session, principal, action="purpose_request", target=target, holder_id=subject, outcome=answer.status,
        fields=list(need.fields) if answer.status == "found" else [],
        purpose=f"{grant.basis if grant else 'holder'}: "
                + sharing.purpose_text(content, need.material_code, application, application_id),
        **purpose_of,
    )
    return answer
