"""Datashare's use cases (the one use-case layer every service names `service`): one module per aggregate.

- `certificates`: the directory, issue, revoke, purpose-bound reads, public verification;
- `sharing`: purpose-bound requests for an application's material;
- `registries`: imports, purpose-bound look-ups, identity's verdict-only matches;
- `access_log`: the data subject's log, the audit, the watch's anomalies, the archive for reuse;
- `opendata`: the catalogue and its datasets;
- `common`: what they share (settings, the request's context, the access log and its watch, purposes).

Each runs inside the caller's transaction; rule breaks are `shared.errors` problems, never HTTP types. A read
that must be recorded even when refused returns the problem instead of raising it (raising would roll the
record back): the route renders it."""

from __future__ import annotations

from services.datashare.service import access_log, certificates, opendata, registries, sharing
from services.datashare.service.certificates import CertificateView
from services.datashare.service.common import (
    CITY_TZ,
    Context,
    announce_type,
    context,
    current_config,
    issue_certificate,
    seed_reference_data,
    today,
    use_config,
    verify_access_log,
)
from shared.errors import Problem

__all__ = [
    "CITY_TZ", "CertificateView", "Context", "Problem", "access_log", "announce_type", "certificates", "context",
    "current_config", "issue_certificate", "opendata", "registries", "seed_reference_data", "sharing", "today",
    "use_config", "verify_access_log",
]
