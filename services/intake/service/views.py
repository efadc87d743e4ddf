"""What a caller reads of an application: the row with its materials, timeline, payment notice and walk-in
filing, and with personal data masked for whoever may not see it in full (least exposure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.domain import drafts
from services.intake.service.common import is_applicant, serving_clerk
from services.intake.store import repository as repo
from services.intake.store.tables import Application, Attachment, PaymentNotice, TimelineEntry, WalkIn
from shared.principal import Principal
from shared.privacy import mask_id_number, mask_text


@dataclass
class ApplicationView:
    app: Application
    item: dict[str, Any]
    form: dict[str, Any]
    holder_id: str | None
    verification_code: str | None
    attachments: Sequence[Attachment]
    timeline: Sequence[TimelineEntry]
    unit_names: dict[str, str]
    payment: PaymentNotice | None
    walk_in: WalkIn | None

    @property
    def etag(self) -> str:
        return drafts.etag(self.app.id, self.app.updated_at)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


async def view(session: AsyncSession, app: Application, principal: Principal | None, *,
               item: repo.PublishedItem | None = None, atts: Sequence[Attachment] | None = None) -> ApplicationView:
    """`item` and `atts` when the caller has just read them (and changed no attachment since)."""
    if atts is None:
        atts = await repo.attachments(session, app.id)
    steps, names = await repo.timeline_named(session, app)
    own = is_applicant(principal, app)
    # Least exposure: the applicant and the window clerk serving the case (the application's service point, who
    # checks the identity at the counter) see phone and ID numbers in full; every other staff role and every
    # department system sees them masked, in the applicant and in the form alike.
    full_id = own or serving_clerk(principal, app)
    form = app.form or {}
    if item is None:
        item = await repo.item_version(session, app.item_code, app.item_version)
    return ApplicationView(
        app=app, item=item.payload if item else {}, form=form if full_id else _masked(form),
        holder_id=app.applicant_holder_id if full_id or app.applicant_kind == "organisation"
        else mask_id_number(app.applicant_holder_id),
        verification_code=app.verification_code if own else None, attachments=atts, timeline=steps,
        unit_names=names,
        # A payment notice follows a decision: an application never decided has none.
        payment=await repo.payment_notice(session, app.id) if app.receipt_number and app.decided_at else None,
        walk_in=await repo.walk_in(session, app.id) if app.channel == "window" else None,
    )
