"""Notify's OpenAPI document as a front end reads it: enums for channels, statuses and kinds, the template's ETag
and its required If-Match, the gateway's receipt route public and described."""

from __future__ import annotations

from typing import Any

import pytest

from services.notify.app import create_app
from services.notify.domain import messages as msgs


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return create_app().openapi()


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return doc["components"]["schemas"][name]


def test_fixed_sets_are_enums(doc):
    assert set(_schema(doc, "Channel")["enum"]) == {"inbox", "sms", "push"}
    assert set(_schema(doc, "Status")["enum"]) == {"queued", "held", "sent", "delivered", "failed"}
    assert set(_schema(doc, "MessageKind")["enum"]) == set(msgs.KINDS)
    assert set(_schema(doc, "RecipientKind")["enum"]) == {"person", "organisation", "department", "role", "contact"}
    assert _schema(doc, "MessageRead")["properties"]["recipient"]["$ref"].endswith("/RecipientRead")


def test_the_template_routes_declare_the_etag_and_a_required_if_match(doc):
    item = doc["paths"]["/notify/v1/templates/{code}"]
    assert "ETag" in item["get"]["responses"]["200"]["headers"]
    assert "ETag" in item["put"]["responses"]["200"]["headers"]
    (if_match,) = [p for p in item["put"]["parameters"] if p["name"].lower() == "if-match"]
    assert if_match["required"] is True and if_match["in"] == "header"
    assert "428" in item["put"]["responses"]


def test_the_receipt_route_is_signed_and_declares_its_body_and_signature_headers(doc):
    """No bearer token: the gateway's Standard Webhooks signature authenticates it (401 without one)."""
    op = doc["paths"]["/notify/v1/sms/receipts"]["post"]
    assert op["security"] == [{"StandardWebhooks": []}]
    assert op["requestBody"]["content"]["application/json"]["schema"]["properties"]["status"]["enum"] == [
        "delivered", "failed"]
    assert {p["name"] for p in op["parameters"] if p["required"]} == {
        "webhook-id", "webhook-timestamp", "webhook-signature"}


def test_every_json_success_response_has_a_schema(doc):
    for path, item in doc["paths"].items():
        if not path.startswith("/notify/v1") or path.endswith("/stream"):
            continue
        for method, op in item.items():
            for code, resp in op["responses"].items():
                if code.startswith("2") and code != "204":
                    assert resp["content"]["application/json"]["schema"], (method, path, code)
