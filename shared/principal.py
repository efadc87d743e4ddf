"""Who is calling: the `Principal` a verified token describes, the role names and the assurance levels.

Pure data with no web framework and no crypto, so domain rules and use cases take a `Principal` without
importing FastAPI; `shared/auth.py` verifies tokens and builds these (the claims table is there)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Roles named in the design; services check them, identity grants them.
CITIZEN = "citizen"
ORG_AGENT = "org_agent"
WINDOW_CLERK = "window_clerk"
DEPARTMENT_REVIEWER = "department_reviewer"
SUPERVISOR = "supervisor"
ADMIN = "admin"
CATALOG_EDITOR = "catalog_editor"
DEPARTMENT_SYSTEM = "department_system"
STAFF_ROLES = frozenset({WINDOW_CLERK, DEPARTMENT_REVIEWER, SUPERVISOR, ADMIN, CATALOG_EDITOR})


#: Identity assurance levels (实名核验等级), as national government-service platforms grade accounts.
LEVEL_SELF_REGISTERED = 1
LEVEL_REGISTRY_MATCHED = 2
LEVEL_IN_PERSON = 3
#: The event identity publishes when an account's earlier tokens must stop working everywhere.
TOKENS_REVOKED = "yimen.identity.account.tokens_revoked"


def _level(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 3 else default


@dataclass(frozen=True)
class ActingFor:
    subject: str
    kind: str  # "person" | "organisation"
    holder_id: str | None = None
    delegation: str | None = None
    #: A person principal's assurance level (None for an organisation, or when the token does not say).
    assurance_level: int | None = None


@dataclass(frozen=True)
class Principal:
    subject: str
    kind: str
    roles: frozenset[str]
    name: str | None = None
    holder_id: str | None = None
    department: str | None = None
    service_point: str | None = None
    organisation: str | None = None
    acting_for: ActingFor | None = None
    token_id: str | None = None
    #: Identity assurance (实名核验): 1 self-registered, 2 matched against the population registry, 3 verified
    #: in person. Persons without the claim are level 1; staff, department systems and services are 0 (not
    #: graded: they never apply for anything).
    assurance_level: int = 0
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def is_department_system(self) -> bool:
        return self.kind == "department_system"

    @property
    def applicant_assurance_level(self) -> int:
        """The level that counts when this token applies: under a person's delegation, the lower of the agent's
        and the principal's (an unverified principal's data must not be fetched through a verified agent)."""
        if self.acting_for is not None and self.acting_for.kind == "person":
            return min(self.assurance_level, self.acting_for.assurance_level or LEVEL_SELF_REGISTERED)
        return self.assurance_level

    @property
    def applicant_ids(self) -> set[str]:
        """Every applicant identity this principal may see cases of: itself, its organisation, its principal."""
        ids = {self.subject}
        if self.organisation:
            ids.add(self.organisation)
        if self.acting_for:
            ids.add(self.acting_for.subject)
        return ids

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        act = claims.get("act")
        kind = str(claims.get("kind", "person"))
        return cls(
            subject=str(claims["sub"]),
            kind=kind,
            roles=frozenset(claims.get("roles", [])),
            name=claims.get("name"),
            holder_id=claims.get("hid"),
            department=claims.get("dept"),
            service_point=claims.get("point"),
            organisation=claims.get("org"),
            acting_for=ActingFor(
                subject=act["sub"], kind=act.get("kind", "person"), holder_id=act.get("hid"),
                delegation=act.get("delegation"),
                assurance_level=_level(act.get("level"), LEVEL_SELF_REGISTERED) if act.get("kind", "person") == "person"
                else None,
            )
            if isinstance(act, dict) and act.get("sub")
            else None,
            token_id=claims.get("jti"),
            assurance_level=_level(claims.get("level"), LEVEL_SELF_REGISTERED if kind == "person" else 0),
            claims=claims,
        )
