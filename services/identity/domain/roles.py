"""Who may do what inside identity, and who sees which personal numbers (privacy rules)."""

from __future__ import annotations

from shared.principal import ADMIN, CATALOG_EDITOR, DEPARTMENT_REVIEWER, SUPERVISOR, WINDOW_CLERK
from shared.privacy import mask_id_number, mask_phone

STAFF_ROLE_CHOICES = (WINDOW_CLERK, DEPARTMENT_REVIEWER, SUPERVISOR, ADMIN, CATALOG_EDITOR)

#: Roles that may look up a person by ID number (window-assisted service, 综合窗口代办).
LOOKUP_ROLES = (WINDOW_CLERK, SUPERVISOR)

#: Roles that see a looked-up person's phone number in full: the window clerk must reach the person present
#: about the result (出件). Nobody but the person sees a full ID number in a response: the clerk already
#: holds the card, and everyone else needs only to recognise it.
FULL_PHONE_ROLES = frozenset({WINDOW_CLERK})


def shown_id_number(id_number: str, *, is_self: bool) -> str:
    return id_number if is_self else (mask_id_number(id_number) or "")


def shown_phone(phone: str, *, is_self: bool, roles: frozenset[str] = frozenset()) -> str:
    if is_self or roles & FULL_PHONE_ROLES:
        return phone
    return mask_phone(phone) or ""
