"""The sandbox SMS gateway's routes: the send API notify calls, the list of what it received, and the switch
that takes it down for a while (to show that notify loses nothing)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from services.simulator.sms import SandboxSmsGateway, gateway_of
from shared.auth import ADMIN, Principal, require_roles
from shared.errors import Problem, Unauthorized
from shared.http_errors import problem_responses
from shared.privacy import mask_phone

router = APIRouter(prefix="/sms", tags=["sms sandbox"])


class Unavailable(Problem):
    status, slug, title = 503, "unavailable", "Service unavailable"


class SmsSend(BaseModel):
    model_config = ConfigDict(extra="ignore")

    to: str = Field(max_length=20, pattern=r"^1[3-9]\d{9}$", description="A mainland mobile number.")
    content: str = Field(min_length=1, max_length=500)
    reference: str | None = Field(None, max_length=120, description="The sender's id; a repeat is not resent.")
    callback_url: str | None = Field(None, max_length=500, description="Where the delivery receipt goes.")


class SmsAccepted(BaseModel):
    id: str
    status: str = "accepted"


class SmsRead(BaseModel):
    id: str
    to: str = Field(description="Masked.")
    content: str
    reference: str | None
    received_at: str
    receipt: str | None = Field(description="delivered | failed, once the sender took the receipt.")


class SmsList(BaseModel):
    items: list[SmsRead]
    total: int = Field(description="Messages received since the simulator started.")
    down_for_seconds: float


class Outage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=86400, description="0 brings the gateway back at once.")


def _gateway(request: Request) -> SandboxSmsGateway:
    return gateway_of(request.app.state)


@router.post("/messages", response_model=SmsAccepted, status_code=202, summary="Send an SMS (the gateway's API)",
             responses=problem_responses(401, 422, 503))
async def send(body: SmsSend, request: Request,
               authorization: Annotated[str | None, Header(max_length=300)] = None) -> SmsAccepted:
    gw = _gateway(request)
    if authorization != f"Bearer {gw.settings.key}":
        raise Unauthorized("The gateway key is missing or wrong.")
    if gw.down:
        gw.refused += 1
        raise Unavailable("The SMS gateway is down (sandbox outage).")
    rec = gw.accept(to=body.to, content=body.content, reference=body.reference, callback_url=body.callback_url)
    return SmsAccepted(id=rec.id)


@router.get("", response_model=SmsList, summary="What the sandbox gateway received",
            description="Oldest first; `to` filters by the full number (shown masked).",
            responses=problem_responses(422))
async def received(request: Request,
                   to: Annotated[str | None, Query(max_length=20, pattern=r"^1[3-9]\d{9}$")] = None,
                   reference: Annotated[str | None, Query(max_length=120)] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> SmsList:
    gw = _gateway(request)
    items = [SmsRead(**{**r.public(), "to": mask_phone(r.to) or ""})
             for r in gw.listing(to=to, reference=reference, limit=limit)]
    return SmsList(items=items, total=len(gw.records), down_for_seconds=round(gw.outage_left(), 1))


@router.put("/outage", response_model=SmsList, summary="Take the gateway down for a while",
            description="Sends are refused with 503 for `seconds`; 0 ends the outage. Needs an admin's token, "
                        "like every control route of the simulator.",
            responses=problem_responses(401, 403, 422))
async def outage(body: Outage, request: Request, _admin: Principal = require_roles(ADMIN)) -> SmsList:
    gw = _gateway(request)
    gw.set_outage(body.seconds)
    return SmsList(items=[], total=len(gw.records), down_for_seconds=round(gw.outage_left(), 1))
