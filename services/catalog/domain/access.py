"""Who may edit which item: admins every item, a catalogue editor only their own department's."""

from __future__ import annotations

from shared.errors import Forbidden
from shared.principal import ADMIN, CATALOG_EDITOR, Principal


def actor_of(principal: Principal) -> str:
    """How the change log names whoever acted (`staff:alice`)."""
    return f"{principal.kind}:{principal.subject}"


def ensure_may_edit(principal: Principal, department: str) -> None:
    """Admins edit every item; a catalogue editor only the items of the department in their token."""
    if principal.has(ADMIN):
        return
    if principal.has(CATALOG_EDITOR) and principal.department == department:
        return
    if principal.has(CATALOG_EDITOR):
        raise Forbidden(f"目录编辑只能维护本部门 ({principal.department}) 的事项，不能维护 {department} 的事项。",
                        slug="other-department")
    raise Forbidden("This needs the role admin or catalog_editor.")
