"""Calls to the platform's public APIs with the signed-in user's token: the same requests a third-party front
end makes. An expired access token is renewed once with the refresh token (OAuth2 `refresh_token` grant)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from services.console.config import ConsoleSettings
from services.console.session import Session
from shared.auth import JWKSVerifier, Principal
from shared.errors import Problem

TOKEN_PATH = "/identity/v1/token"
LOGOUT_PATH = "/identity/v1/logout"


class SignInNeeded(Exception):
    """No session, or one that can no longer be renewed: the user signs in again."""


class ApiError(Exception):
    """An API answered with an error; `problem` is its RFC 9457 body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(problem.get("detail") or problem.get("title") or str(status))
        self.status, self.problem = status, problem

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self.problem.get("errors") or [] if isinstance(e, dict)]


class Api:
    """One page request's view of the APIs, as `principal`."""

    def __init__(self, http: httpx.AsyncClient, settings: ConsoleSettings, verifier: JWKSVerifier,
                 session: Session | None) -> None:
        self.http, self.settings, self.verifier, self.session = http, settings, verifier, session
        self.principal: Principal | None = None
        self._renew_lock = asyncio.Lock()

    # ---- signing in ----------------------------------------------------------------------------------------
    async def sign_in(self, username: str, password: str) -> Session:
        r = await self.http.post(self.settings.base_for(TOKEN_PATH) + TOKEN_PATH,
                                 data={"grant_type": "password", "username": username, "password": password})
        if r.status_code != 200:
            raise ApiError(r.status_code, _problem(r))
        body = r.json()
        self.session = Session.new(body["access_token"], body.get("refresh_token"))
        self.principal = await self.verifier.verify(self.session.access_token)
        return self.session

    async def sign_out(self) -> None:
        if self.session and self.session.refresh_token:
            try:
                await self.http.post(self.settings.base_for(LOGOUT_PATH) + LOGOUT_PATH,
                                     json={"refresh_token": self.session.refresh_token})
            except httpx.HTTPError:
                pass  # the cookie goes anyway; the refresh token expires on its own

    async def who(self) -> Principal:
        """The verified principal of the session (renewing an expired access token once)."""
        if self.principal:
            return self.principal
        if self.session is None:
            raise SignInNeeded
        try:
            self.principal = await self.verifier.verify(self.session.access_token)
        except Problem as exc:
            if getattr(exc, "status", 401) != 401:
                raise
            await self._renew()
            self.principal = await self.verifier.verify(self.session.access_token)
        return self.principal

    async def _renew(self) -> None:
        async with self._renew_lock:
            if self.session is None or not self.session.refresh_token:
                raise SignInNeeded
            r = await self.http.post(self.settings.base_for(TOKEN_PATH) + TOKEN_PATH, data={
                "grant_type": "refresh_token", "refresh_token": self.session.refresh_token})
            if r.status_code != 200:
                raise SignInNeeded
            body = r.json()
            self.session.renew(body["access_token"], body.get("refresh_token"))
            self.principal = None

    # ---- calls ---------------------------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, params: Any = None, json: Any = None,
                      accept: str = "application/json", raw: bool = False,
                      headers: dict[str, str] | None = None) -> Any:
        await self.who()
        assert self.session is not None
        for attempt in (1, 2):
            sent = {**(headers or {}), "Authorization": f"Bearer {self.session.access_token}", "Accept": accept}
            r = await self.http.request(method, self.settings.base_for(path) + path, params=params, json=json,
                                        headers=sent)
            if r.status_code == 401 and attempt == 1:
                await self._renew()
                continue
            if r.status_code == 401:
                raise SignInNeeded
            if r.status_code >= 400:
                raise ApiError(r.status_code, _problem(r))
            if raw:
                return r
            return r.json() if r.content else None
        raise SignInNeeded  # pragma: no cover - the loop returns or raises

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params={k: v for k, v in params.items() if v not in (None, "")})

    async def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return await self.request("POST", path, json=body, headers=headers)

    async def get_all(self, path: str, *, limit: int = 200, max_pages: int = 10, **params: Any) -> list[Any]:
        """Every item of a cursor-paginated list, up to `max_pages` pages (the console shows bounded lists)."""
        items: list[Any] = []
        cursor = None
        for _ in range(max_pages):
            page = await self.get(path, limit=limit, cursor=cursor, **params)
            items.extend(page.get("items", []))
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return items


def _problem(r: httpx.Response) -> dict[str, Any]:
    try:
        body = r.json()
        if isinstance(body, dict):
            return body
    except ValueError:
        pass
    return {"status": r.status_code, "title": r.reason_phrase, "detail": r.text[:300]}
