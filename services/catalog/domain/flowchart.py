"""The flowchart of an item's process (办理流程图), drawn as SVG a browser shows and as Mermaid text.

Steps run top to bottom; a parallel stage draws one box per department side by side between a fork and a
join bar, the lead department (牵头) marked."""

from __future__ import annotations

from xml.sax.saxutils import escape

from services.catalog.domain.model import ItemContent, Step

STEP_W, STEP_H, GAP, LANE_W, LANE_GAP, MARGIN = 260, 56, 36, 170, 16, 24
KIND_FILL = {
    "acceptance": "#e3f2fd",
    "review": "#fff8e1",
    "parallel": "#fce4ec",
    "joint_review": "#fff3e0",
    "decision": "#e8f5e9",
    "delivery": "#ede7f6",
}


def _limit(step: Step) -> str:
    if step.excluded_from_limit:
        return "不计时限"
    return f"{step.limit_days} 个工作日" if step.limit_days else "即时"


def svg(code: str, version: int, item: ItemContent, department_names: dict[str, str]) -> str:
    widest = max([len(s.departments) for s in item.process.steps if s.kind == "parallel"] + [1])
    lanes_w = widest * LANE_W + (widest - 1) * LANE_GAP
    title = f"{item.name}（第 {version} 版）办理流程"
    note = "；".join(f"{p.name}（不超过 {p.max_days} 天）" for p in item.special_procedures)
    # CJK glyphs are about as wide as the font size; leave room for the longest line of text.
    text_w = max(len(title) * 16, (len(note) + 14) * 11 if note else 0)
    width = max(STEP_W, lanes_w, text_w) + 2 * MARGIN
    cx = width / 2
    parts: list[str] = []
    y = MARGIN + 40

    def text(x: float, ty: float, s: str, size: int = 13, weight: str = "normal") -> None:
        parts.append(
            f'<text x="{x:.0f}" y="{ty:.0f}" font-size="{size}" font-weight="{weight}" text-anchor="middle">'
            f"{escape(s)}</text>"
        )

    def arrow(y1: float, y2: float, x: float = cx) -> None:
        parts.append(f'<line x1="{x:.0f}" y1="{y1:.0f}" x2="{x:.0f}" y2="{y2 - 2:.0f}" stroke="#555" '
                     'stroke-width="1.5" marker-end="url(#arrow)"/>')

    text(cx, MARGIN + 12, title, 16, "bold")
    for i, step in enumerate(item.process.steps):
        if i:
            arrow(y - GAP, y)
        fill = KIND_FILL[step.kind]
        if step.kind != "parallel":
            x = cx - STEP_W / 2
            parts.append(f'<g class="step" data-key="{escape(step.key)}"><rect x="{x:.0f}" y="{y:.0f}" '
                         f'width="{STEP_W}" height="{STEP_H}" rx="8" fill="{fill}" stroke="#37474f"/>')
            text(cx, y + 22, step.name, 14, "bold")
            who = "、".join(department_names.get(d, d) for d in step.departments)
            text(cx, y + 42, f"{who}　{_limit(step)}" if who else _limit(step), 11)
            parts.append("</g>")
            y += STEP_H + GAP
            continue
        # Parallel stage: a title, a fork bar, one lane per department, a join bar.
        text(cx, y + 14, f"{step.name}（并联审批，{_limit(step)}）", 14, "bold")
        bar_w = lanes_w
        fork_y = y + 24
        parts.append(f'<rect x="{cx - bar_w / 2:.0f}" y="{fork_y:.0f}" width="{bar_w}" height="4" fill="#37474f"/>')
        n = len(step.departments)
        row_w = n * LANE_W + (n - 1) * LANE_GAP
        lane_y = fork_y + 4 + 20
        for j, dept in enumerate(step.departments):
            lx = cx - row_w / 2 + j * (LANE_W + LANE_GAP)
            mid = lx + LANE_W / 2
            arrow(fork_y + 4, lane_y, mid)
            lead = dept == step.lead_department
            parts.append(f'<g class="lane" data-department="{escape(dept)}"><rect x="{lx:.0f}" y="{lane_y:.0f}" '
                         f'width="{LANE_W}" height="{STEP_H}" rx="6" fill="{fill}" '
                         f'stroke="{"#c62828" if lead else "#37474f"}" stroke-width="{2 if lead else 1}"/>')
            text(mid, lane_y + 22, department_names.get(dept, dept)[:12], 12, "bold")
            text(mid, lane_y + 42, ("牵头　" if lead else "") + _limit(step), 11)
            parts.append("</g>")
            parts.append(f'<line x1="{mid:.0f}" y1="{lane_y + STEP_H:.0f}" x2="{mid:.0f}" '
                         f'y2="{lane_y + STEP_H + 20:.0f}" stroke="#555" stroke-width="1.5"/>')
        join_y = lane_y + STEP_H + 20
        parts.append(f'<rect x="{cx - bar_w / 2:.0f}" y="{join_y:.0f}" width="{bar_w}" height="4" fill="#37474f"/>')
        y = join_y + 4 + GAP
    if note:
        text(cx, y, f"特别程序，不计入办理时限：{note}", 11)
        y += 16
    text(cx, y + 4, f"承诺 {item.promised_limit.value} / 法定 {item.statutory_limit.value} 个工作日", 11)
    y += 20
    height = y - GAP + MARGIN
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" role="img">'
        f"<title>{escape(item.name)} {escape(code)} v{version}</title>"
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>'
        f'<rect width="100%" height="100%" fill="#ffffff"/>{"".join(parts)}</svg>'
    )


def _mmd(s: str) -> str:
    return s.replace('"', "'")


def mermaid(item: ItemContent, department_names: dict[str, str]) -> str:
    lines = ["flowchart TD"]
    prev: list[str] = []
    for step in item.process.steps:
        if step.kind == "parallel":
            fork, join = f"{step.key}_fork", f"{step.key}_join"
            lines.append(f'  {fork}{{{{"{_mmd(step.name)}（并联）"}}}}')
            lines.append(f'  subgraph {step.key}["{_mmd(step.name)} {_limit(step)}"]')
            lanes = []
            for j, dept in enumerate(step.departments):
                lane = f"{step.key}_{j}"
                lead = "（牵头）" if dept == step.lead_department else ""
                lines.append(f'    {lane}["{_mmd(department_names.get(dept, dept))}{lead}"]')
                lanes.append(lane)
            lines.append("  end")
            lines.append(f'  {join}(("汇总"))')
            lines.extend(f"  {p} --> {fork}" for p in prev)
            lines.extend(f"  {fork} --> {lane}" for lane in lanes)
            lines.extend(f"  {lane} --> {join}" for lane in lanes)
            prev = [join]
        else:
            who = "、".join(department_names.get(d, d) for d in step.departments)
            label = f"{step.name}<br/>{who} {_limit(step)}" if who else f"{step.name}<br/>{_limit(step)}"
            lines.append(f'  {step.key}["{_mmd(label)}"]')
            lines.extend(f"  {p} --> {step.key}" for p in prev)
            prev = [step.key]
    # Special procedures (特别程序) happen during review and stop the clock: hang them off the first review.
    anchor = next((s.key for s in item.process.steps if s.kind in ("review", "parallel")), None)
    for i, p in enumerate(item.special_procedures):
        lines.append(f'  special_{i}[/"特别程序：{_mmd(p.name)}（≤{p.max_days} 天，不计时限）"/]')
        if anchor:
            lines.append(f"  {anchor} -.- special_{i}")
    return "\n".join(lines) + "\n"
