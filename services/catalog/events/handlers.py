"""What the catalog service consumes from the bus."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.events.contracts import CERTIFICATE_TYPE_UPSERTED, CertificateTypeUpserted
from services.catalog.store import repo
from shared.events import Event
from shared.messaging import Consumer, event_data


async def on_certificate_type(session: AsyncSession, event: Event) -> None:
    data: CertificateTypeUpserted = event_data(event, CertificateTypeUpserted)
    await repo.upsert_certificate_type(session, code=data.code, name=data.name, fields=data.fields,
                                       required=data.required)


CONSUMERS: list[Consumer] = [
    Consumer("catalog-certificate-types", CERTIFICATE_TYPE_UPSERTED, on_certificate_type,
             "Certificate types' fields, so a certificate result's mapping is checked at save time."),
]
