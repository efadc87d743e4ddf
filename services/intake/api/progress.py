"""Following a case: the public status query, the applicant's own lists (个人/企业主页) and the clerk's queue."""

from __future__ import annotations

import math
import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from services.intake import service
from services.intake.api import deps
from services.intake.api import schemas as s
from services.intake.api.openapi import NOT_MODIFIED, REVALIDATE, responses
from services.intake.domain import receipts
from services.intake.domain.lifecycle import Status
from shared.auth import CurrentPrincipal
from shared.db import SessionDep
from shared.errors import TooManyRequests
from shared.fastpath import FastGet
from shared.httpcache import etag_of, matches
from shared.pagination import Page, PageDep
from shared.ratelimit import SharedRateLimiter, limiter_for

router = APIRouter(tags=["progress"])

StatusFilter = Annotated[list[Status] | None, Query(alias="status", description="Only these states.")]
progress = service.progress


#: What the status query accepts, declared once for the route and its fast path.
RECEIPT_PATTERN = r"^[0-9A-Za-z]{1,80}$"
CODE_PATTERN = r"^\d{6}$"
_RECEIPT = re.compile(r"[0-9A-Za-z]{1,80}")  # RECEIPT_PATTERN, matched whole (`$` would pass a final newline)


@router.get(
    "/status/{receipt_number}", response_model=s.PublicStatus,
    summary="Public status query by receipt number and verification code (no token, no personal data)",
    description="A wrong code answers exactly like an unknown receipt number (404). After 10 wrong codes from one "
                "client address within an hour, that address gets 429 (with `Retry-After`) until the oldest of them "
                "is an hour old; the receipt itself is never locked, so its owner keeps access. The answer carries "
                "an `ETag` and `Cache-Control: no-cache`: a client sending it back in `If-None-Match` gets 304 while "
                "the status is unchanged.",
    responses={**responses(200, 404, 422, 429, headers=REVALIDATE), **NOT_MODIFIED},
)
async def public_status(
    receipt_number: Annotated[str, Path(pattern=RECEIPT_PATTERN)], request: Request,
    code: Annotated[str, Query(min_length=6, max_length=6, pattern=CODE_PATTERN, description="The 6-digit verification code.")],
) -> Response:
    # Wrong codes are counted per client address (behind the gateway, the address it forwards), before anything
    # is looked up: an address over the limit learns nothing more, right code or not.
    guesses, address = _guesses(request)
    if (wait := await guesses.wait(address)) is not None:
        seconds = max(1, math.ceil(wait))
        raise TooManyRequests(f"Too many wrong verification codes from this address. Retry in {seconds} s.",
                              headers={"Retry-After": str(seconds)}, retry_after=seconds)
    # The body was rendered as `PublicStatus` when the status last changed (store/public_status.py): it is
    # served as stored, without a session, a model or a serialisation per request.
    body = await progress.public_status(request.app.state.db, receipt_number, code)
    if body is None:
        await guesses.count(address)
        raise progress.unknown_receipt()
    return _status_answer(request, body)


async def fast_public_status(request: Request, params: dict[str, str]) -> Response | None:
    """`public_status` without the router (shared/fastpath.py) for a well-formed query of a known receipt from an
    address under the limit; anything else (a wrong code, a malformed or further parameter) is the route's."""
    query = request.scope["query_string"]
    receipt_number = params["receipt_number"]
    # Only `code=` and six ASCII digits (stricter than the route's pattern, whose \d takes any script's digits).
    if len(query) != 11 or not query.startswith(b"code=") or not query[5:].isdigit() \
            or not _RECEIPT.fullmatch(receipt_number):
        return None
    guesses, address = _guesses(request)
    if await guesses.wait(address) is not None:
        return None
    body = await progress.public_status(request.app.state.db, receipt_number, query[5:].decode())
    return None if body is None else _status_answer(request, body)


FAST = [FastGet(router, public_status, fast_public_status)]


def _guesses(request: Request) -> tuple[SharedRateLimiter, str]:
    """The limiter of wrong codes and the client's address it counts them by."""
    limiter = limiter_for(request.app.state, "status_code_failures", receipts.MAX_WRONG_CODES,
                          per_seconds=receipts.QUERY_WINDOW.total_seconds())
    return limiter, request.client.host if request.client else "unknown"


def _status_answer(request: Request, body: bytes) -> Response:
    # `no-cache`: a cache may keep it but asks each time (the status moves on), and 304 saves the body.
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if matches(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _page(rows: list[object], cursor: str | None) -> Page[s.ApplicationSummary]:
    return Page[s.ApplicationSummary](items=[deps.summary(a) for a in rows], next_cursor=cursor)


@router.get(
    "/me/applications", response_model=Page[s.ApplicationSummary],
    summary="My applications and those of the principals I act for (newest first)",
    responses=responses(200, 401, 422),
)
async def my_applications(session: SessionDep, principal: CurrentPrincipal, page: PageDep,
                          status: StatusFilter = None) -> Page[s.ApplicationSummary]:
    return _page(*await progress.mine(session, principal, page, [x.value for x in status] if status else None))


@router.get(
    "/me/drafts", response_model=Page[s.ApplicationSummary], summary="My unfinished drafts",
    responses=responses(200, 401, 422),
)
async def my_drafts(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Page[s.ApplicationSummary]:
    return _page(*await progress.my_drafts(session, principal, page))


@router.get(
    "/me/awaiting", response_model=Page[s.ApplicationSummary],
    summary="What awaits me: drafts, corrections to answer (补正), results to collect",
    responses=responses(200, 401, 422),
)
async def my_awaiting(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Page[s.ApplicationSummary]:
    return _page(*await progress.awaiting_me(session, principal, page))


@router.get(
    "/queue", response_model=Page[s.ApplicationSummary],
    summary="A clerk's queue: applications at my service point or of my department (default: awaiting acceptance)",
    description="`receipt_number` looks one case up by its receipt number (any state unless `status` is given), "
                "within the same scope: the clerk's point and department.",
    responses=responses(200, 401, 403, 422),
)
async def clerk_queue(session: SessionDep, principal: CurrentPrincipal, page: PageDep,
                      status: StatusFilter = None,
                      receipt_number: Annotated[str | None, Query(pattern=r"^[0-9A-Za-z]{1,80}$",
                                                                  description="Look up one receipt number.")] = None,
                      ) -> Page[s.ApplicationSummary]:
    return _page(*await progress.queue(session, principal, page, statuses=[x.value for x in status] if status else None,
                                       receipt_number=receipt_number))
