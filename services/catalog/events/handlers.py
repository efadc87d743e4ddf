"""What the catalog service consumes from the bus (thin: parse the event, call the use case)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog import service
from services.catalog.events.contracts import CERTIFICATE_TYPE_UPSERTED, CertificateTypeUpserted
from shared.events import Event
from shared.messaging import Consumer, event_data


async def on_certificate_type(session: AsyncSession, event: Event) -> None:
    data: CertificateTypeUpserted = event_data(event, CertificateTypeUpserted)
    await service.record_certificate_type(session, code=data.code, name=data.name, fields=data.fields,
                                          required=data.required)


CONSUMERS: list[Consumer] = [
    Consumer("catalog-certificate-types", CERTIFICATE_TYPE_UPSERTED, on_certificate_type,
             "Certificate types' fields, so a certificate result's mapping is checked at save time."),
]
