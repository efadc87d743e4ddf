"""The receipt slip (受理回执) a clerk prints for an accepted application: receipt number, verification code,
what happens next and the promised date, as printable HTML and as PDF. Rendering only (no I/O): the PDF uses
reportlab's built-in CID font STSong-Light, which draws Chinese without any font file."""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from shared.workdays import WorkCalendar

_DELIVERY = {"electronic": "电子送达（结果发送至个人/企业主页）", "pickup": "到服务点领取", "post": "邮寄送达"}


@dataclass(frozen=True)
class Slip:
    receipt_number: str
    verification_code: str | None
    item_name: str
    item_code: str
    applicant_name: str | None
    handed_in_at: str
    accepted_on: date
    promised_on: date | None
    promised_text: str
    next_steps: list[str] = field(default_factory=list)
    contacts: list[str] = field(default_factory=list)
    accepted_by: str | None = None
    #: A walk-in (窗口代录): who filed it, and for an account a window opened, the one-time claim code and until when.
    filed_by: str | None = None
    claim_code: str | None = None
    claim_until: date | None = None

    def rows(self) -> list[tuple[str, str]]:
        return [*self._rows(), *self._walk_in_rows()]

    def _walk_in_rows(self) -> list[tuple[str, str]]:
        out = [("办理方式", f"窗口代录（经办人：{self.filed_by}）")] if self.filed_by else []
        if self.claim_code:
            until = f"，{self.claim_until.isoformat()} 前有效" if self.claim_until else ""
            out.append(("网上认领码", f"{self.claim_code}（仅可使用一次{until}）"))
        return out

    def _rows(self) -> list[tuple[str, str]]:
        return [
            ("受理编号（回执号）", self.receipt_number),
            ("查询验证码", self.verification_code or "（仅申请人可见）"),
            ("事项名称", f"{self.item_name}（{self.item_code}）"),
            ("申请人", self.applicant_name or ""),
            ("受理地点", self.handed_in_at),
            ("受理日期", self.accepted_on.isoformat()),
            ("承诺办结日期", self.promised_text),
            ("受理人", self.accepted_by or ""),
        ]


def promised_on(accepted_on: date, limit: Mapping[str, Any] | None, calendar: WorkCalendar,
                immediate: bool) -> tuple[date | None, str]:
    """The date the applicant is promised (承诺办结), counted in working days where the limit says so."""
    if immediate:
        return accepted_on, f"{accepted_on.isoformat()}（即办件，当场办结）"
    if not limit:
        return None, "按办事指南"
    value, unit = int(limit.get("value") or 0), limit.get("unit") or "working_days"
    if unit == "calendar_days":
        day = accepted_on + timedelta(days=value)
        return day, f"{day.isoformat()}（{value} 个自然日）"
    if unit == "hours":
        return accepted_on, f"{accepted_on.isoformat()}（{value} 小时内）"
    result = calendar.add_workdays(accepted_on, value)
    note = "（含未公布节假日年份，按周一至周五推算）" if result.assumed else ""
    return result.value, f"{result.value.isoformat()}（{value} 个工作日）{note}"


CLAIM_STEP = ("窗口已为您开立政务服务账户：凭身份证号码、姓名和本回执上的网上认领码，在网上“认领账户”并设置密码后，"
              "即可随时查看本申请。认领码请勿告诉他人；遗失可携带身份证到任一窗口重新获取。")


def next_steps(item: Mapping[str, Any], *, delivery_method: str, delivery_point_name: str | None,
               status_url: str, owes_fee: bool) -> list[str]:
    steps = [str(s.get("name")) for s in ((item.get("process") or {}).get("steps") or [])
             if s.get("kind") in ("review", "parallel", "decision")]
    out = []
    if item.get("case_kind") == "immediate":
        out.append("本事项为即办件，受理即办结。")
    elif steps:
        out.append("办理环节：" + " → ".join(steps) + "。")
    if owes_fee:
        out.append("本事项收费：审批通过后将发出缴款通知（含缴款码），缴费后方可出件。")
    where = _DELIVERY.get(delivery_method, delivery_method)
    if delivery_method == "pickup" and delivery_point_name:
        where = f"到{delivery_point_name}领取（结果就绪时另行通知）"
    out.append(f"结果送达：{where}；结果就绪前可在网上变更送达方式。")
    out.append(f"凭受理编号和验证码随时查询办理进度：{status_url}")
    return out


def render_html(slip: Slip) -> str:
    e = html.escape
    rows = "\n".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in slip.rows())
    steps = "\n".join(f"<li>{e(s)}</li>" for s in slip.next_steps)
    contacts = "".join(f"<li>{e(c)}</li>" for c in slip.contacts)
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>受理回执 {e(slip.receipt_number)}</title>
<style>
body{{font-family:"Noto Serif CJK SC","SimSun",serif;margin:2cm;color:#000}}
h1{{text-align:center;font-size:22pt;letter-spacing:.3em}} table{{width:100%;border-collapse:collapse}}
th,td{{border:1px solid #000;padding:6px 10px;text-align:left;vertical-align:top}} th{{width:30%}}
@media print{{@page{{size:A4;margin:2cm}} body{{margin:0}} .noprint{{display:none}}}}
</style></head><body>
<h1>受理回执</h1>
<table>
{rows}
</table>
<h2>接下来</h2>
<ol>
{steps}
</ol>
<h2>咨询</h2>
<ul>{contacts}</ul>
<p>本回执是申请已被受理的凭证，请妥善保管。</p>
<button class="noprint" onclick="window.print()">打印</button>
</body></html>
"""


def render_pdf(slip: Slip, *, printed_at: datetime) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=True)
    c.setTitle(f"受理回执 {slip.receipt_number}")
    width, height = A4
    y = height - 72
    c.setFont(font, 20)
    c.drawCentredString(width / 2, y, "受 理 回 执")
    y -= 40

    def line(text: str, size: int = 11, indent: int = 0) -> None:
        nonlocal y
        c.setFont(font, size)
        # Wrap by width: CJK text has no spaces to break at.
        chunk = ""
        for ch in text:
            if pdfmetrics.stringWidth(chunk + ch, font, size) > width - 144 - indent:
                c.drawString(72 + indent, y, chunk)
                y -= size + 7
                chunk = ""
            chunk += ch
        c.drawString(72 + indent, y, chunk)
        y -= size + 7

    for k, v in slip.rows():
        line(f"{k}：{v}")
    y -= 8
    line("接下来", 13)
    for i, s in enumerate(slip.next_steps, 1):
        line(f"{i}. {s}", indent=12)
    if slip.contacts:
        line("咨询", 13)
        for ct in slip.contacts:
            line(ct, indent=12)
    y -= 8
    line("本回执是申请已被受理的凭证，请妥善保管。", 10)
    line(f"打印时间：{printed_at.isoformat(timespec='minutes')}", 9)
    c.showPage()
    c.save()
    return buf.getvalue()
