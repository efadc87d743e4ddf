"""Purpose-bound requests (按需共享): intake or a department asks for a holder's certificate or registry record
for one material of one live application."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from services.datashare import operations
from services.datashare.api.common import check_holder_level, fetch_application
from services.datashare.domain import sharing
from services.datashare.domain.identifiers import HOLDER_KIND_ORGANISATION, normalise_holder_kind
from services.datashare.domain.purpose import Grant, release
from services.datashare.domain.registries import POPULATION
from services.datashare.store import certificates as cert_store
from services.datashare.store import items, registries
from shared.auth import CurrentPrincipal
from shared.bounds import VersionInt
from shared.db import SessionDep
from shared.errors import Forbidden, invalid
from shared.http_errors import problem_responses

router = APIRouter(tags=["sharing"])


class DataRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "application_id": "app-0001", "item_code": "LD-SCJGJ-FOOD", "item_version": 1,
        "material_code": "M01", "holder_id": "91441781MA4W000001", "holder_kind": "organisation",
    }]})

    application_id: str = Field(min_length=1, max_length=64, description="The purpose: a live application.")
    item_code: str = Field(min_length=1, max_length=64)
    item_version: VersionInt
    material_code: str = Field(min_length=1, max_length=64)
    holder_id: str = Field(min_length=1, max_length=18)
    holder_kind: str = Field(description="person/111 or organisation/001")
    certificate_type: str | None = Field(default=None, description="Optional: must be the one the material names.")
    registry: str | None = Field(default=None, description="Optional: must be the one the material names.")


class DataAnswer(BaseModel):
    status: Literal["found", "no_match"]
    material_code: str
    source: str
    certificate: dict[str, Any] | None = None
    record: dict[str, Any] | None = None


@router.post(
    "/requests", summary="Fetch a holder's certificate or registry record for an application's material",
    description="""The published item version's material must name this source. Who may ask:

- the holder themself (`hid`, `org`, `act.hid`), with a token of assurance level 2 or more (claim `level`);
  the answer carries the fields the material needs;
- staff or a department system whose department holds an open task in the application (from workflow's task
  events), or the window clerk of the application's service point while it awaits acceptance; the holder must
  be the applicant or be named in the application. Only the fields the material needs are answered; phone and
  ID numbers in them are masked except for department systems and the window clerk serving the case.

Intake must confirm the application as live to the caller's own token. Nothing found is
`{"status": "no_match"}` (200). Every request, also a refused one, is recorded in the holder's access log
with its purpose (application, item, material).""",
    responses=problem_responses(401, 403, 422),
)
async def request_data(body: DataRequest, request: Request, session: SessionDep,
                       principal: CurrentPrincipal) -> DataAnswer:
    kind = normalise_holder_kind(body.holder_kind)
    if kind is None:
        raise invalid("body.holder_kind", "enum", "person/111 or organisation/001.")
    item = await items.get_item(session, body.item_code, body.item_version)
    if item is None:
        raise invalid("body.item_version", "unknown_item", "No such published item version.")
    need = sharing.material_need(item.content, body.material_code)
    sharing.check_asked_source(need, body.certificate_type, body.registry)
    holder_id = body.holder_id.strip().upper()
    target = (f"registry:{'population' if need.registry == POPULATION else 'legal-persons'}" if need.registry
              else f"certificate-type:{need.certificate_type}")
    purpose_of = dict(application_id=body.application_id, item_code=body.item_code, material_code=body.material_code)
    grant: Grant | None = None
    try:
        if sharing.check_requester(principal, item.content, holder_id) == "holder":
            check_holder_level(principal)
            application = await fetch_application(request, body.application_id)
            if reason := sharing.application_problem(application, body.item_code):
                raise Forbidden(f"Refused: {reason}.", slug="purpose-not-established")
        else:
            application = await fetch_application(request, body.application_id)
            if application.get("item_code") not in (None, body.item_code) or (
                    application.get("item_version") not in (None, body.item_version)):
                raise Forbidden("The application is for another item or item version.",
                                slug="purpose-not-established")
            application.setdefault("item_version", body.item_version)
            grant = await operations.grant_for_application(
                session, principal, application, holder_id=holder_id, registry=need.registry,
                certificate_type=need.certificate_type, material_code=body.material_code)
    except Forbidden as refusal:
        return await operations.refuse(session, principal, refusal, action="purpose_request", target=target,  # type: ignore[return-value]
                                       holder_id=holder_id, **purpose_of)

    def shown(values: dict[str, Any]) -> dict[str, Any]:
        projected = sharing.project(values, need.fields)
        return release(projected, grant) if grant is not None else projected

    answer = DataAnswer(status="no_match", material_code=need.material_code, source=need.source)
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
        cert = await cert_store.current_certificate(session, holder_id, need.certificate_type, operations.today())
        if cert is not None:
            answer.status = "found"
            answer.certificate = {
                "number": cert.number, "type_code": cert.type_code, "valid_until": cert.valid_until,
                **shown(cert.fields),
            }
    await operations.log_access(
        session, principal, action="purpose_request", target=target, holder_id=subject, outcome=answer.status,
        fields=list(need.fields) if answer.status == "found" else [],
        purpose=f"{grant.basis if grant else 'holder'}: "
                + sharing.purpose_text(item.content, need.material_code, application, body.application_id),
        **purpose_of,
    )
    return answer
