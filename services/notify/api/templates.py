"""Templates (消息模板): one per message kind, with a Chinese text per channel, versioned; an admin edits them
with `If-Match` and previews a rendering (and its SMS length) before saving."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from services.notify import service
from services.notify.api.models import (
    Audience,
    Channel,
    MessageKind,
    PreviewRead,
    PreviewRequest,
    RenderedChannel,
    TemplateChannels,
    TemplateRead,
    TemplateUpdate,
)
from services.notify.domain import messages as msgs
from shared.auth import ADMIN, Principal, require_roles
from shared.db import SessionDep
from shared.errors import invalid
from shared.http_errors import problem_responses

router = APIRouter(prefix="/templates", tags=["templates"])
#: A template is named by the message kind it renders.
KindCode = Annotated[str, Path(description="A message kind (`application_accepted`, `rating_invited` …).",
                               openapi_examples={"accepted": {"summary": "受理通知", "value": "application_accepted"}})]
Admin = Annotated[Principal, require_roles(ADMIN)]


def _read(code: KindCode, version: int, channels: dict[str, Any]) -> TemplateRead:
    kind = msgs.KINDS[code]
    return TemplateRead(code=MessageKind(code), version=version, description=kind.description,
                        audience=Audience(kind.audience),
                        urgent=kind.urgent, placeholders=list(kind.placeholders),
                        default_channels=list(kind.default_channels),  # type: ignore[arg-type]
                        channels=TemplateChannels.model_validate(channels))


@router.get("", response_model=list[TemplateRead], summary="Every kind's template in force",
            responses=problem_responses(401, 403))
async def list_templates(session: SessionDep, _: Admin) -> list[TemplateRead]:
    return [_read(code, version, channels) for code, version, channels in await service.list_templates(session)]


#: The version as an entity tag: send it back as `If-Match` to save an edit.
ETAG_HEADER = {"ETag": {"description": "The template's version, quoted (`\"3\"`); send it back as `If-Match`.",
                        "schema": {"type": "string", "example": '"3"'}}}
#: Documented as required, because a PUT without it answers 428 (checked in the use case, so the answer is a
#: precise problem rather than a generic 422).
IF_MATCH_PARAMETER = {"name": "If-Match", "in": "header", "required": True,
                      "description": "The `ETag` of the version edited (428 without it, 412 when it is stale).",
                      "schema": {"type": "string", "maxLength": 40, "example": '"1"'}}


@router.get("/{code}", response_model=TemplateRead, summary="One kind's template in force",
            description="The `ETag` is the version; send it back as `If-Match` to save an edit.",
            responses={200: {"headers": ETAG_HEADER}, **problem_responses(401, 403, 404)})
async def get_template(code: KindCode, session: SessionDep, _: Admin, response: Response) -> TemplateRead:
    version, channels = await service.get_template(session, code)
    response.headers["ETag"] = f'"{version}"'
    return _read(code, version, channels)


@router.put("/{code}", response_model=TemplateRead, summary="Save a new version",
            description="Needs `If-Match` with the version edited (428 without, 412 when someone saved in between). "
                        "Every channel's text is required; a placeholder the kind does not declare is refused (422 "
                        "naming the field), so a message can never carry more than the kind allows (no ID "
                        "numbers). Messages already made keep the version they were rendered from.",
            responses={200: {"headers": ETAG_HEADER}, **problem_responses(401, 403, 404, 409, 412, 422, 428)},
            openapi_extra={"parameters": [IF_MATCH_PARAMETER]})
async def put_template(code: KindCode, body: TemplateUpdate, session: SessionDep, principal: Admin, request: Request,
                       response: Response) -> TemplateRead:
    if_match = request.headers.get("if-match")
    if if_match is not None and len(if_match) > 40:
        raise invalid("header.If-Match", "max_length", "If-Match is the quoted version this API sent as ETag.")
    version, channels = await service.put_template(session, code, body.channels.model_dump(), if_match=if_match,
                                                   by=principal.subject)
    response.headers["ETag"] = f'"{version}"'
    return _read(code, version, channels)


@router.post("/{code}/preview", response_model=PreviewRead, summary="Render a template with sample values",
             description="Renders the version in force, or a draft in `channels`, with `personalisation` (every "
                         "placeholder; omitted = the kind's samples). The SMS rendering includes the signature and "
                         "says how many messages it would be sent as.",
             responses=problem_responses(401, 403, 404, 422))
async def preview(code: KindCode, body: PreviewRequest, session: SessionDep, _: Admin) -> PreviewRead:
    version, rendered = await service.preview_template(
        session, code, draft=body.channels.model_dump() if body.channels is not None else None,
        personalisation=body.personalisation)
    return PreviewRead(code=MessageKind(code), version=version, channels={
        Channel(ch): RenderedChannel(title=r.title, body=r.body, length=len(r.body),
                            sms_parts=msgs.sms_parts(r.body) if ch == "sms" else None)
        for ch, r in rendered.items()})
