"""The printable application form (申请表) of an item, blank or as a filled sample (填写样本), rendered from
the item's form fields and materials, so a guide's “forms to download” always match the published version."""

from __future__ import annotations

from html import escape

from services.catalog.domain.model import FormField, ItemContent

_SAMPLES = {
    "text": "罗定市示例餐饮店", "number": "1", "date": "2026-11-26", "phone": "13800000000",
    "id_number": "44538119900101001X", "credit_code": "92445381MA5XXXXXX0", "address": "罗定市罗城街道兴华一路 1 号",
    "boolean": "是", "select": "", "textarea": "热食类食品制售", "integer": "3", "amount": "100000.00",
    "mobile": "13800000000", "landline": "0766-3822000",
}
NECESSITY = {"required": "必要", "optional": "非必要", "conditional": "情形要件", "may_follow": "容缺后补"}
SOURCE = {"applicant": "申请人提供", "certificate": "电子证照共享获取", "registry": "基础信息库核验",
          "own_certificate": "本部门核发，只需填写证号"}


def _sample(field: FormField) -> str:
    if field.type == "select" and field.options:
        return field.options[0]
    return _SAMPLES[field.type]


def application_form_html(code: str, version: int, item: ItemContent, *, sample: bool) -> str:
    title = f"{item.name}申请表" + ("（填写样本）" if sample else "")
    rows = "".join(
        f"<tr><th>{escape(f.label)}{'<span class=req>*</span>' if f.required else ''}</th>"
        f"<td>{escape(_sample(f)) if sample else '&#160;'}</td></tr>"
        for f in item.form_fields
    )
    materials = "".join(
        f"<tr><td>{i}</td><td>{escape(m.name)}</td><td>{NECESSITY[m.necessity]}"
        f"{'：' + escape(m.condition) if m.condition else ''}</td><td>{SOURCE[m.source]}</td>"
        f"<td>{'可告知承诺' if m.commitment_allowed else ''}</td></tr>"
        for i, m in enumerate(item.materials, 1)
    )
    mistakes = "".join(f"<li>{escape(x)}</li>" for x in item.guide.common_mistakes)
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:780px;margin:2em auto}}table{{border-collapse:collapse;width:100%;margin:1em 0}}
th,td{{border:1px solid #444;padding:.5em;text-align:left}}th{{width:30%;background:#f4f4f4}}.req{{color:#c00}}
.sample td{{color:#1a4d8f}}</style></head>
<body><h1>{escape(title)}</h1><p>事项编码：{escape(code)}　版本：{version}　受理单位：{escape(item.guide.accepting_unit or item.department)}</p>
<table class="{'sample' if sample else 'blank'}">{rows}</table>
<h2>申请材料</h2><table><tr><th>序号</th><th>材料名称</th><th>要求</th><th>来源</th><th>备注</th></tr>{materials}</table>
{f'<h2>常见错误</h2><ul>{mistakes}</ul>' if mistakes else ''}
<p>申请人（签名）：＿＿＿＿＿＿　日期：＿＿＿＿年＿＿月＿＿日</p></body></html>
"""
