"""The catalog's use cases (one module per aggregate): what a route, a consumer, the demo loader or the
benchmark may ask of the catalogue. Each owns its whole flow: the checks (domain), the state change (store) and
the outbox event, in the caller's transaction; failures are `shared.errors` problems, never HTTP types.

- `items`: editing an item's versions (draft → review → publication → withdrawal) and its change log;
- `guides`: public reads of published versions (guide, flowcharts, forms, CPSV-AP, search, open data);
- `reference`: departments, service points, life events, intermediary services, the negative list;
- `certificates`: datashare's certificate directory as it announces it.
"""

from services.catalog.domain.search import ItemFilters
from services.catalog.service.certificates import record_certificate_type
from services.catalog.service.guides import (
    SearchResult,
    application_form,
    cpsv_document,
    flowchart_mermaid,
    flowchart_svg,
    guide,
    list_published,
    open_catalogue,
    public_version,
    public_versions,
    search,
    search_misses,
)
from services.catalog.service.items import (
    changes,
    create_item,
    get_any_version,
    get_draft,
    item_or_404,
    new_version,
    open_version,
    publish_item,
    published_payload,
    return_to_draft,
    submit,
    update_draft,
    withdraw_item,
)
from services.catalog.service.reference import (
    LifeEventItems,
    NegativeAnswer,
    PointDetail,
    department,
    departments,
    intermediary_services,
    life_events,
    negative_list,
    put_department,
    put_intermediary,
    put_life_event,
    put_negative_entry,
    put_service_point,
    service_point,
    service_points,
    upsert_department,
    upsert_service_point,
)

__all__ = [
    "ItemFilters", "LifeEventItems", "NegativeAnswer", "PointDetail", "SearchResult", "application_form",
    "changes", "cpsv_document", "create_item", "department", "departments", "flowchart_mermaid",
    "flowchart_svg", "get_any_version", "get_draft", "guide", "intermediary_services", "item_or_404",
    "life_events", "list_published", "negative_list", "new_version", "open_catalogue", "open_version",
    "public_version", "public_versions", "publish_item", "published_payload", "put_department",
    "put_intermediary", "put_life_event", "put_negative_entry", "put_service_point", "record_certificate_type",
    "return_to_draft", "search", "search_misses", "service_point", "service_points", "submit", "update_draft",
    "upsert_department", "upsert_service_point", "withdraw_item",
]
