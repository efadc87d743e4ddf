"""Each test module here starts its own nats-server with the platform's bus accounts (`deploy.natsconfig`),
under a bus prefix of its own; CI's shared server stays open for the rest of the suite."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.natsconfig import Bundle, write_bundle
from shared.bus import Bus
from shared.testing import EmbeddedNats


@dataclass
class SecuredNats:
    server: EmbeddedNats
    bundle: Bundle
    prefix: str

    @property
    def url(self) -> str:
        return self.server.url

    def bus(self, user: str, **kw: object) -> Bus:
        """A connection as `user` (a service, a department code or `ops`)."""
        kw.setdefault("manage_streams", self.bundle_kind(user) != "department")
        return Bus(self.url, prefix=self.prefix, name=f"test-{user}", **self.bundle.credentials(user), **kw)  # type: ignore[arg-type]

    def bundle_kind(self, user: str) -> str:
        return next(u.kind for u in self.bundle.users if u.name == user)


@pytest.fixture(scope="module")
def secured_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredNats]:
    prefix = "tb" + secrets.token_hex(4)
    directory: Path = tmp_path_factory.mktemp("nats-auth") / "accounts"
    bundle = write_bundle(directory, prefix=prefix, bcrypt_cost=4)  # the cost is not under test here
    server = EmbeddedNats(bundle.auth_file).start()
    try:
        yield SecuredNats(server, bundle, prefix)
    finally:
        server.cleanup()
