"""Purpose-bound requests (按需共享): intake or a department asks for a holder's certificate or registry record
for one material of one live application."""

from __future__ import annotations

from typing import Any, Literal

import httpx
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from services.datashare import operations
from services.datashare.domain import sharing
from services.datashare.domain.identifiers import normalise_holder_kind
from services.datashare.domain.registries import POPULATION
from services.datashare.store import certificates as cert_store
from services.datashare.store import items, registries
from shared.auth import CurrentPrincipal
from shared.bounds import VersionInt
from shared.db import SessionDep
from shared.errors import Forbidden, invalid, problem_responses

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


async def _application(request: Request, application_id: str) -> dict[str, Any]:
    """Ask intake about the application with the caller's own token: intake decides what the caller may see."""
    url = request.app.state.settings.platform.service_urls["intake"].rstrip("/")
    headers = {"Authorization": request.headers.get("Authorization", "")}
    try:
        r = await request.app.state.http.get(f"{url}/intake/v1/applications/{application_id}", headers=headers)
    except httpx.HTTPError as exc:
        raise Forbidden("The application cannot be confirmed now (intake did not answer).",
                        slug="purpose-not-established") from exc
    if r.status_code != 200:
        raise Forbidden(f"Intake does not confirm the application (HTTP {r.status_code}).",
                        slug="purpose-not-established")
    try:
        data = r.json()
    except ValueError as exc:
        raise Forbidden("Intake's answer was unreadable.", slug="purpose-not-established") from exc
    return data if isinstance(data, dict) else {}


@router.post(
    "/requests", summary="Fetch a holder's certificate or registry record for an application's material",
    description="Allowed when the published item's material names this source, the holder is the token's "
    "own (`hid`, `org`, `act.hid`) or the caller is staff of a department handling the item, and intake "
    "confirms the application is live. The answer carries only the fields the material needs; nothing "
    "found is `{\"status\": \"no_match\"}` (200). Every request is recorded in the holder's access log.",
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
    sharing.check_requester(principal, item.content, holder_id)
    application = await _application(request, body.application_id)
    if reason := sharing.application_problem(application, body.item_code):
        raise Forbidden(f"Refused: {reason}.", slug="purpose-not-established")

    answer = DataAnswer(status="no_match", material_code=need.material_code, source=need.source)
    if need.registry:
        values = await registries.lookup(session, need.registry, holder_id)
        if values is not None:
            answer.status, answer.record = "found", sharing.project(values, need.fields)
        target = f"registry:{'population' if need.registry == POPULATION else 'legal-persons'}"
    else:
        assert need.certificate_type is not None
        cert = await cert_store.current_certificate(session, holder_id, need.certificate_type, operations.today())
        if cert is not None:
            answer.status = "found"
            answer.certificate = {
                "number": cert.number, "type_code": cert.type_code, "valid_until": cert.valid_until,
                **sharing.project(cert.fields, need.fields),
            }
        target = f"certificate-type:{need.certificate_type}"
    await operations.log_access(
        session, principal, action="purpose_request", target=target, holder_id=holder_id, outcome=answer.status,
        application_id=body.application_id, item_code=body.item_code, material_code=body.material_code,
        fields=list(need.fields) if answer.status == "found" else [],
    )
    return answer
