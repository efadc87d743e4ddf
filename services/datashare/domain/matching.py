"""Registry matching for identity assurance (实名核验): does a name fit the record the registry keeps under an ID
number or credit code? The answer is a verdict only; the record itself is never released by a match."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

#: The service whose own token may ask for a match, and the role it carries.
MATCHING_SERVICE = "identity"

PersonVerdict = Literal["match", "name_mismatch", "not_found"]
OrganisationVerdict = Literal["match", "name_mismatch", "not_found", "not_legal_representative", "inactive"]

#: Registry statuses under which an organisation can no longer be registered on the platform.
INACTIVE_STATUSES = frozenset({"注销", "吊销", "撤销", "deregistered", "revoked", "cancelled"})

_DOTS = re.compile(r"[·•‧・]")
_SPACE = re.compile(r"\s+")


def normalise_name(name: str) -> str:
    """Names compare after NFKC (full-width forms), without whitespace, with every middle dot alike (ethnic
    minority names such as 买买提·艾力 are typed with several dot characters)."""
    text = unicodedata.normalize("NFKC", name)
    return _DOTS.sub("·", _SPACE.sub("", text))


def person_verdict(record_name: str | None, name: str) -> PersonVerdict:
    if record_name is None:
        return "not_found"
    return "match" if normalise_name(record_name) == normalise_name(name) else "name_mismatch"


def organisation_verdict(record: dict[str, Any] | None, name: str, representative_id_number: str) -> OrganisationVerdict:
    """The legal representative is matched by ID number (the name in the registry may be written differently)."""
    if record is None:
        return "not_found"
    if normalise_name(str(record.get("name", ""))) != normalise_name(name):
        return "name_mismatch"
    if str(record.get("status", "")).strip().lower() in INACTIVE_STATUSES:
        return "inactive"
    if str(record.get("legal_representative_id", "")).strip().upper() != representative_id_number.strip().upper():
        return "not_legal_representative"
    return "match"
