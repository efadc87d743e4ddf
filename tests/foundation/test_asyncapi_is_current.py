"""docs/asyncapi.yaml is generated from the services' event contracts and must match them."""

from __future__ import annotations

from deploy.asyncapi import PUBLISHED, render
from shared.settings import ROOT


def test_asyncapi_file_matches_the_contracts_in_code():
    assert (ROOT / "docs" / "asyncapi.yaml").read_text() == render(), "run `python -m deploy.asyncapi`"


def test_every_service_documents_what_it_publishes():
    assert set(PUBLISHED) == {"catalog", "identity", "intake", "workflow", "datashare", "efficacy"}
