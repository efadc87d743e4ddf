"""Reuse (变群众奔波为信息跑腿): a new draft copied from an earlier application, or prefill for another item
from what earlier applications already collected."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.intake import service
from services.intake.api import deps
from services.intake.api import schemas as s
from services.intake.api.openapi import ETAG, LOCATION, responses
from shared.auth import CurrentPrincipal
from shared.db import SessionDep

router = APIRouter(tags=["reuse"])


@router.get(
    "/me/prefill", response_model=s.Prefill,
    summary="Prefill for an item from my earlier applications (form values and materials already given)",
    description="Materials match by certificate type, then material code, then name; give one to a draft with "
                "`POST /applications/{id}/materials` `{\"kind\": \"reuse\", ...}` or copy the whole application.",
    responses=responses(200, 401, 404, 422),
)
async def prefill(session: SessionDep, principal: CurrentPrincipal,
                  item_code: Annotated[str, Query(pattern=r"^[0-9A-Za-z][0-9A-Za-z_.\-]{0,63}$")]) -> s.Prefill:
    p = await service.reuse.prefill(session, principal, item_code)
    return s.Prefill(item_code=p.item_code, item_version=p.item_version, form=p.form,
                     materials=[s.PrefillMaterial(**m) for m in p.materials])


@router.post(
    "/applications/{application_id}/copy", status_code=201, response_model=s.ApplicationRead,
    summary="Start a new draft as a copy of an earlier application for the same item",
    description="The new draft cites the item's current version; the form and every material still asked for "
                "are carried over (commitments are not: a commitment is made anew each time).",
    responses=responses(201, 401, 403, 404, 422, headers={**ETAG, **LOCATION}),
)
async def copy_application(application_id: s.ApplicationId, response: Response, session: SessionDep,
                           principal: CurrentPrincipal, body: s.CopyRequest | None = None) -> s.ApplicationRead:
    body = body or s.CopyRequest()
    v = await service.reuse.copy(session, principal, application_id, channel=body.channel,
                                 service_point=body.service_point)
    response.headers["ETag"] = v.etag
    response.headers["Location"] = f"/intake/v1/applications/{v.app.id}"
    return deps.application_read(v)
