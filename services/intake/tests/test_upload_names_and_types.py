"""Uploaded files keep a safe base name and are served as what their bytes are (issue 13, least exposure): before,
`../../../../etc/passwd.pdf` was kept as sent and a PDF declared `text/html` was served back as `text/html`."""

from __future__ import annotations

from services.intake.domain.uploads import MAX_NAME, detected_type, safe_name
from services.intake.tests import factories as f

BASE = "/intake/v1"


def test_a_file_name_is_reduced_to_a_safe_base_name():
    assert safe_name("../../../../etc/passwd.pdf") == "passwd.pdf"
    assert safe_name("C:\\Users\\me\\plan.pdf") == "plan.pdf"
    assert safe_name("\u202efdp.exe") == "fdp.exe"  # a right-to-left override would show it as exe.pdf
    assert safe_name("pl\x00a\x07n.pdf") == "plan.pdf"
    assert safe_name("../..") == "file" and safe_name(None) == "file" and safe_name(" .env") == "env"
    long = safe_name("平" * 500 + ".pdf")
    assert len(long) == MAX_NAME and long.endswith(".pdf")
    assert safe_name("经营场所平面图 v2.pdf") == "经营场所平面图 v2.pdf"


def test_the_content_type_is_the_one_the_bytes_show():
    assert detected_type(f.PDF) == "application/pdf"
    assert detected_type(f.PNG) == "image/png"
    assert detected_type(b"<html><script>alert(1)</script></html>") == "application/octet-stream"


async def test_an_upload_is_kept_under_its_base_name_and_served_as_its_content(intake, tokens):
    item = await intake.publish_item(f.food_permit_item())
    me = f.citizen(tokens)
    r = await intake.client.post(f"{BASE}/applications", headers=me, json={
        "item_code": item["code"], "channel": "online", "service_point": "LD-CENTRE"})
    assert r.status_code == 201, r.text
    app = r.json()["id"]
    r = await intake.client.post(f"{BASE}/applications/{app}/materials", headers=me, data={"material_code": "M03"},
                                 files={"file": ("../../../../etc/passwd.pdf", f.PDF, "text/html")})
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["filename"] == "passwd.pdf" and att["content_type"] == "application/pdf"
    r = await intake.client.get(f"{BASE}/applications/{app}/materials/{att['id']}/file", headers=me)
    assert r.status_code == 200 and r.content == f.PDF
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''passwd.pdf"
