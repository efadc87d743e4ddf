"""Identity's use cases (the one use-case layer every service names `service`): one module per aggregate.

- `people`: registration (实名注册, 实名核验), look-ups, the in-person check, walk-ins and their claim, `me`;
- `tokens`: the OAuth2 grants, logout, password change, account lock, revocation, signing keys;
- `organisations`: organisations, their agents, delegations;
- `staff`: staff accounts and department system clients;
- `common`: the context (database, runtime, registry client) and the checks every flow starts with.

Each owns its flow: checks (domain), state change (store) and the outbox event in one transaction; rule breaks
are `shared.errors` problems, never HTTP types. A flow that asks the population or legal-person registry does
it before its transaction (no HTTP call while a row is locked)."""

from __future__ import annotations

from services.identity.service import common, organisations, people, staff, tokens
from services.identity.service.common import Context, context

__all__ = ["Context", "common", "context", "organisations", "people", "staff", "tokens"]
