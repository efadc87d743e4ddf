"""Walk-in filing (窗口代录, 帮办代办): a window clerk files, completes and submits an application for the person
standing at the window, identified by the ID card in the clerk's hand. Pure rules: the card's number as typed, the
consent the person gives (申请人签字确认), and what a walk-in still lacks before submission."""

from __future__ import annotations

import re
import unicodedata

from services.intake.domain.findings import Finding
from services.intake.domain.forms import id_number_problem

#: The signed slip (签字确认书) as scanned at the counter.
CONSENT_MATERIAL = {"code": "consent", "name": "申请人签字确认书", "file_types": ["pdf", "jpg", "png"],
                    "max_bytes": 5 * 1024 * 1024}
CONSENT_KINDS = ("signed_slip", "signature_capture")

_SPACES = re.compile(r"[\s\u00a0\u3000-]+")


def card_number(raw: str) -> tuple[str, str | None]:
    """The ID number as the clerk typed or read it: full-width digits and `ｘ` made ASCII, spaces and hyphens
    dropped, `x` raised; and why it is not a valid citizen ID number (GB 11643), or None."""
    number = _SPACES.sub("", unicodedata.normalize("NFKC", raw)).upper()
    return number, id_number_problem(number)


def consent_finding(consent_kind: str | None) -> Finding | None:
    """A walk-in is submitted only with the person's consent on record: the clerk acts for them, not alone."""
    if consent_kind in CONSENT_KINDS:
        return None
    return Finding("consent", "required", "窗口代录须有申请人签字确认：上传申请人签字的确认书，或登记签字板的签名记录，再提交。"
                   " Record the applicant's consent (a signed slip or a signature capture) before submitting.")
