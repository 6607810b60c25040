"""Small charts as inline SVG, drawn on the server (no script, no library). Returned as markup strings
(every text in them is escaped here)."""
from __future__ import annotations

from html import escape

LEVEL_COLORS = {1: "#9fb8c9", 2: "#5c9ccf", 3: "#e0a030", 4: "#e06a2c", 5: "#c0282d"}


def _text(x, y, s, anchor="start", size=11, cls="lbl") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" class="{cls}">{escape(str(s))}</text>'


def stacked_weeks(series: dict[int, list[int]], labels: list[str], t) -> str:
    """Weekly stacked bars of flags by level."""
    n = len(labels)
    w, h, left, bottom, top = 560, 170, 30, 34, 10
    plot_w, plot_h = w - left - 10, h - bottom - top
    totals = [sum(series[lvl][i] for lvl in series) for i in range(n)]
    peak = max(totals + [1])
    bw = plot_w / n
    out = [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img">']
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        out.append(f'<line x1="{left}" x2="{w - 10}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(_text(left - 4, y + 4, round(peak * frac), "end", 10))
    for i in range(n):
        y = top + plot_h
        for lvl in (1, 2, 3, 4, 5):
            v = series[lvl][i]
            if not v:
                continue
            bh = plot_h * v / peak
            y -= bh
            out.append(f'<rect x="{left + i * bw + 3:.1f}" y="{y:.1f}" width="{bw - 6:.1f}" height="{bh:.1f}" '
                       f'fill="{LEVEL_COLORS[lvl]}"><title>{escape(t.level(lvl))}: {v}</title></rect>')
        if totals[i]:
            out.append(_text(left + (i + 0.5) * bw, y - 3, totals[i], "middle", 10))
        if i % max(1, -(-n // 8)) == 0:  # at most about 8 labels
            out.append(_text(left + (i + 0.5) * bw, h - bottom + 14, labels[i][5:] if t.lang == "en" else
                             labels[i].split("年", 1)[-1], "middle", 9))
    x = left
    for lvl in (5, 4, 3, 2, 1):
        out.append(f'<rect x="{x}" y="{h - 12}" width="10" height="10" fill="{LEVEL_COLORS[lvl]}"/>')
        out.append(_text(x + 13, h - 3, t.level(lvl), size=10))
        x += 62
    out.append("</svg>")
    return "".join(out)


def type_levels(by_type: dict[str, dict[int, int]], t) -> str:
    """Horizontal stacked bars: one row per flag type, segments by level."""
    rows = sorted(by_type.items(), key=lambda kv: -sum(kv[1].values()))
    if not rows:
        return ""
    w, row_h, left = 560, 24, 170
    h = row_h * len(rows) + 10
    peak = max(sum(v.values()) for _, v in rows)
    out = [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img">']
    for i, (typ, lv) in enumerate(rows):
        y = 5 + i * row_h
        out.append(_text(left - 6, y + 15, t.flag_type(typ), "end"))
        x = left
        for lvl in (5, 4, 3, 2, 1):
            v = lv.get(lvl, 0)
            if not v:
                continue
            bw = (w - left - 40) * v / peak
            out.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{bw:.1f}" height="{row_h - 8}" fill="{LEVEL_COLORS[lvl]}">'
                       f'<title>{escape(t.level(lvl))}: {v}</title></rect>')
            x += bw
        out.append(_text(x + 4, y + 15, sum(lv.values()), size=10))
    out.append("</svg>")
    return "".join(out)


def rates(rows: list[dict], t) -> str:
    """Confirmation rate per rule: confirmed / (confirmed + dismissed)."""
    rows = [r for r in rows if r["decided"]]
    if not rows:
        return ""
    w, row_h, left = 560, 24, 170
    h = row_h * len(rows) + 10
    out = [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img">']
    for i, r in enumerate(rows):
        y = 5 + i * row_h
        full = w - left - 80
        out.append(_text(left - 6, y + 15, t.flag_type(r["rule"]), "end"))
        out.append(f'<rect x="{left}" y="{y + 3}" width="{full}" height="{row_h - 8}" class="track"/>')
        out.append(f'<rect x="{left}" y="{y + 3}" width="{full * r["rate"]:.1f}" height="{row_h - 8}" fill="#2f7d4f">'
                   f'<title>{escape(t("confirmed_of_decided", c=r["confirmed"], d=r["decided"]))}</title></rect>')
        out.append(_text(left + full + 6, y + 15, f'{r["rate"] * 100:.0f}% ({r["confirmed"]}/{r["decided"]})', size=10))
    out.append("</svg>")
    return "".join(out)
