"""HTTP routes of the identity service (thin: parse, call the domain and the store, return)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
