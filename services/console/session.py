"""The signed-in user's tokens, kept in one HttpOnly cookie, and the CSRF token its forms carry.

The browser never sees a token it could hand to a script: the access and refresh tokens ride in an HttpOnly,
SameSite=Strict cookie scoped to `/console`. Every form carries `csrf` = HMAC(session id, "csrf"): a page of
another origin can make the browser send the cookie (older browsers, or a same-site subdomain) but cannot read
the session id to compute the value, so a forged POST is refused (double-submit with a keyed hash; nothing is
stored on the server, so any replica checks it)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

COOKIE = "yimen_console"
PATH = "/console"


@dataclass
class Session:
    access_token: str
    refresh_token: str | None
    sid: str
    changed: bool = False

    @classmethod
    def new(cls, access_token: str, refresh_token: str | None) -> Session:
        return cls(access_token, refresh_token, secrets.token_urlsafe(18), changed=True)

    def encode(self) -> str:
        raw = json.dumps({"a": self.access_token, "r": self.refresh_token, "s": self.sid}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str | None) -> Session | None:
        if not value or len(value) > 3800:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
            access, refresh, sid = data["a"], data.get("r"), data["s"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(access, str) or not isinstance(sid, str) or not (refresh is None or isinstance(refresh, str)):
            return None
        return cls(access, refresh, sid)

    def renew(self, access_token: str, refresh_token: str | None) -> None:
        self.access_token, self.refresh_token, self.changed = access_token, refresh_token or self.refresh_token, True

    @property
    def csrf(self) -> str:
        return csrf_for(self.sid)


def csrf_for(sid: str) -> str:
    return hmac.new(sid.encode(), b"yimen-console-csrf", hashlib.sha256).hexdigest()[:40]


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf, presented or "")
