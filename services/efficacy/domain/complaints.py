"""投诉举报 rules: the anonymous complainant's secret, and who may read a complaint. Pure."""

from __future__ import annotations

import hashlib
import hmac

from services.efficacy.domain.access import department_of, is_overseer
from shared.principal import Principal


def secret_hash(secret: str) -> str:
    """Only the hash of the secret given at filing is kept."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str | None, stored_hash: str) -> bool:
    return secret is not None and hmac.compare_digest(secret_hash(secret), stored_hash)


def may_see(p: Principal | None, *, complainant: str | None, department: str, stored_hash: str,
            secret: str | None) -> bool:
    """The complainant (by token, or by the secret when anonymous), the department concerned, supervisors."""
    if secret_matches(secret, stored_hash):
        return True
    if p is None:
        return False
    return is_overseer(p) or (complainant is not None and p.subject == complainant) or department_of(p) == department
