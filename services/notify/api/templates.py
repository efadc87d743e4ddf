"""Templates (消息模板): one per message kind, with a Chinese text per channel, versioned; an admin edits them
with `If-Match` and previews a rendering (and its SMS length) before saving."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response

from services.notify import service
from services.notify.api.models import (
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
from shared.http_errors import problem_responses

router = APIRouter(prefix="/templates", tags=["templates"])
Admin = Annotated[Principal, require_roles(ADMIN)]


def _read(code: str, version: int, channels: dict[str, Any]) -> TemplateRead:
    kind = msgs.KINDS[code]
    return TemplateRead(code=code, version=version, description=kind.description, audience=kind.audience,
                        urgent=kind.urgent, placeholders=list(kind.placeholders),
                        default_channels=list(kind.default_channels),  # type: ignore[arg-type]
                        channels=TemplateChannels.model_validate(channels))


@router.get("", response_model=list[TemplateRead], summary="Every kind's template in force",
            responses=problem_responses(401, 403))
async def list_templates(session: SessionDep, _: Admin) -> list[TemplateRead]:
    out = []
    for code in msgs.KINDS:
        version, channels = await service.template_of(session, code)
        out.append(_read(code, version, channels))
    return out


@router.get("/{code}", response_model=TemplateRead, summary="One kind's template in force",
            description="The `ETag` is the version; send it back as `If-Match` to save an edit.",
            responses=problem_responses(401, 403, 404))
async def get_template(code: str, session: SessionDep, _: Admin, response: Response) -> TemplateRead:
    service.kind_or_404(code)
    version, channels = await service.template_of(session, code)
    response.headers["ETag"] = f'"{version}"'
    return _read(code, version, channels)


@router.put("/{code}", response_model=TemplateRead, summary="Save a new version",
            description="Needs `If-Match` with the version edited (428 without, 412 when someone saved in between). "
                        "Every channel's text is required; a placeholder the kind does not declare is refused (422 "
                        "naming the field), so a message can never carry more than the kind allows (no ID "
                        "numbers). Messages already made keep the version they were rendered from.",
            responses=problem_responses(401, 403, 404, 409, 412, 422, 428))
async def put_template(code: str, body: TemplateUpdate, session: SessionDep, principal: Admin, response: Response,
                       if_match: Annotated[str | None, Header(max_length=40)] = None) -> TemplateRead:
    version, channels = await service.put_template(session, code, body.channels.model_dump(), if_match=if_match,
                                                   by=principal.subject)
    response.headers["ETag"] = f'"{version}"'
    return _read(code, version, channels)


@router.post("/{code}/preview", response_model=PreviewRead, summary="Render a template with sample values",
             description="Renders the version in force, or a draft in `channels`, with `personalisation` (every "
                         "placeholder; omitted = the kind's samples). The SMS rendering includes the signature and "
                         "says how many messages it would be sent as.",
             responses=problem_responses(401, 403, 404, 422))
async def preview(code: str, body: PreviewRequest, session: SessionDep, _: Admin) -> PreviewRead:
    kind = service.kind_or_404(code)
    version: int | None = None
    if body.channels is not None:
        template = body.channels.model_dump()
    else:
        version, template = await service.template_of(session, code)
    values = body.personalisation if body.personalisation is not None else kind.sample
    rendered = service.preview(kind, template, dict(values))
    return PreviewRead(code=code, version=version, channels={  # type: ignore[misc]
        ch: RenderedChannel(title=r.title, body=r.body, length=len(r.body),
                            sms_parts=msgs.sms_parts(r.body) if ch == "sms" else None)
        for ch, r in rendered.items()})
