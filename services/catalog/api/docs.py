"""How the catalog's routes document what they send besides the body: response headers and path examples."""

from __future__ import annotations

from typing import Any

from services.catalog.api.schemas import EXAMPLE_ITEM


def header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


ETAG = {"ETag": header('The version\'s tag (`"<code>.v<version>.r<revision>"`); send it back as `If-Match`.')}
CACHED = {
    "ETag": header("A strong tag of this representation; send it as `If-None-Match` to get `304`."),
    "Cache-Control": header("`public, max-age=300` for a named `?version=`, `public, no-cache` for the current one."),
}
LOCATION = {"Location": header("Where the created version is read (editors).")}
REPLAYED = {"Idempotent-Replayed": header("`true` when this answer replays an earlier request with the same "
                                          "`Idempotency-Key`.")}


def ok(description: str, headers: dict[str, Any], status: int = 200, **extra: Any) -> dict[int | str, Any]:
    return {status: {"description": description, "headers": headers, **extra}}


NOT_MODIFIED: dict[int | str, Any] = {304: {
    "description": "Not modified: the `If-None-Match` tag is still the current one (no body).", "headers": CACHED}}

#: The `{code}` of routes that read a published item: a demo item, so examples work against the demo seed.
ITEM_CODE_EXAMPLES = {"food_permit": {"summary": "食品经营许可 (demo catalogue)", "value": EXAMPLE_ITEM}}
