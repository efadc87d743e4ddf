"""Small factories for datashare tests: valid ID numbers and credit codes, published items, fake intake."""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stdnum.cn import ric, uscc

_seq = itertools.count(1)

BUSINESS_LICENCE = "11441781MB0000001A001"
FOOD_PERMIT = "11441781MB0000001A002"
MARRIAGE = "11441781MB0000006R001"


def id_number(birth: str = "19900101") -> str:
    """A valid citizen ID number with a fresh sequence part (Luoding's region code)."""
    body = f"445381{birth}{next(_seq) % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")  # it ignores the last character


def credit_code() -> str:
    body = f"92441781MA{next(_seq):07d}"
    return body + uscc.calc_check_digit(body)


def food_item(code: str | None = None, version: int = 1) -> dict[str, Any]:
    """A published 食品经营许可 item as catalog's `item.published` carries it (the fields datashare reads)."""
    return {
        "code": code or f"ITEM-{uuid.uuid4().hex[:8]}", "version": version, "name": "食品经营许可",
        "kind": "01", "kind_name": "行政许可", "department": "LD-SCJGJ", "audience": ["legal_person"],
        "case_kind": "promised", "statutory_limit": {"value": 20, "unit": "working_days"},
        "promised_limit": {"value": 5, "unit": "working_days"}, "fully_online": True,
        "materials": [
            {"code": "M-LICENCE", "name": "营业执照", "necessity": "required", "source": "certificate",
             "certificate_type": BUSINESS_LICENCE, "registry": None, "fields": ["name", "legal_representative"]},
            {"code": "M-REP-ID", "name": "法定代表人身份证明", "necessity": "required", "source": "registry",
             "certificate_type": None, "registry": "population", "fields": ["name", "gender"]},
            {"code": "M-PLAN", "name": "经营场所平面图", "necessity": "required", "source": "applicant",
             "certificate_type": None, "registry": None, "fields": []},
        ],
        "process": {"steps": [{"key": "review", "kind": "parallel", "departments": ["LD-SCJGJ", "LD-WJJ", "LD-XFJ"],
                               "lead_department": "LD-SCJGJ"}]},
        "result": {"type": "certificate", "certificate_type": FOOD_PERMIT, "name": "食品经营许可证"},
        "published_at": "2026-11-20T02:00:00+00:00",
    }


class FakeIntake:
    """A real HTTP server playing intake's `GET /intake/v1/applications/{id}`: applications registered here
    answer 200 with their status, others 404; it records the Authorization headers it was sent."""

    def __init__(self) -> None:
        self.applications: dict[str, dict[str, Any]] = {}
        self.seen_auth: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.seen_auth.append(self.headers.get("Authorization", ""))
                app_id = self.path.rsplit("/", 1)[-1]
                app = outer.applications.get(app_id) if self.path.startswith("/intake/v1/applications/") else None
                body = json.dumps(app if app else {"status": 404}).encode()
                self.send_response(200 if app else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeIntake:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, item_code: str, status: str = "accepted", holder_id: str | None = None, *, item_version: int = 1,
            service_point: str = "LD-CENTRE", form: dict[str, Any] | None = None) -> str:
        app_id = f"app-{uuid.uuid4().hex[:10]}"
        self.applications[app_id] = {"id": app_id, "status": status, "item_code": item_code,
                                     "item_version": item_version, "service_point": service_point,
                                     "applicant": {"holder_id": holder_id}, "form": form or {}}
        return app_id
