"""Small charts as inline SVG, drawn on the server (no script, no library). Returned as markup strings
(every text in them is escaped here). Each bar may link (``link``) to the flags it counts; text is
sized to be read at the page's default zoom (12-13 px, as the page's small print)."""
from __future__ import annotations

from collections.abc import Callable
from html import escape

LEVEL_COLORS = {1: "#9fb8c9", 2: "#5c9ccf", 3: "#e0a030", 4: "#e06a2c", 5: "#c0282d"}
LABEL, SMALL = 13, 12


def _text(x, y, s, anchor="start", size=LABEL, cls="lbl") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" class="{cls}">{escape(str(s))}</text>'


def _linked(shape: str, href: str | None) -> str:
    return f'<a href="{escape(href)}" class="bar-link">{shape}</a>' if href else shape


def stacked_weeks(series: dict[int, list[int]], labels: list[str], t,
                  link: Callable[[int, int], str] | None = None) -> str:
    """Weekly stacked bars of flags by level; ``link(week_index, level)`` is where a segment leads."""
    n = len(labels)
    w, h, left, bottom, top = 600, 200, 34, 44, 14
    plot_w, plot_h = w - left - 10, h - bottom - top
    totals = [sum(series[lvl][i] for lvl in series) for i in range(n)]
    peak = max(totals + [1])
    bw = plot_w / n
    out = [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img">']
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        out.append(f'<line x1="{left}" x2="{w - 10}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(_text(left - 4, y + 4, round(peak * frac), "end", SMALL))
    every = max(1, -(-n // 7))  # at most about 7 date labels, so they do not overlap
    for i in range(n):
        y = top + plot_h
        for lvl in (1, 2, 3, 4, 5):
            v = series[lvl][i]
            if not v:
                continue
            bh = plot_h * v / peak
            y -= bh
            rect = (f'<rect x="{left + i * bw + 2:.1f}" y="{y:.1f}" width="{max(bw - 4, 1):.1f}" height="{bh:.1f}" '
                    f'fill="{LEVEL_COLORS[lvl]}" data-level="{lvl}" data-week="{i}"><title>{escape(labels[i])} · '
                    f'{escape(t.level(lvl))}: {v}</title></rect>')
            out.append(_linked(rect, link(i, lvl) if link else None))
        if totals[i]:
            out.append(_text(left + (i + 0.5) * bw, y - 3, totals[i], "middle", SMALL))
        if i % every == 0:
            out.append(_text(left + (i + 0.5) * bw, h - bottom + 16, labels[i][5:] if t.lang == "en" else
                             labels[i].split("年", 1)[-1], "middle", SMALL))
    x = left
    for lvl in (5, 4, 3, 2, 1):
        out.append(f'<rect x="{x}" y="{h - 14}" width="12" height="12" fill="{LEVEL_COLORS[lvl]}"/>')
        out.append(_text(x + 16, h - 4, t.level(lvl), size=SMALL))
        x += 76
    out.append("</svg>")
    return "".join(out)


def type_levels(by_type: dict[str, dict[int, int]], t, link: Callable[[str, int], str] | None = None) -> str:
    """Horizontal stacked bars: one row per flag type, segments by level; ``link(type, level)``."""
    rows = sorted(by_type.items(), key=lambda kv: -sum(kv[1].values()))
    if not rows:
        return ""
    w, row_h, left = 600, 28, 190
    h = row_h * len(rows) + 10
    peak = max(sum(v.values()) for _, v in rows)
    out = [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img">']
    for i, (typ, lv) in enumerate(rows):
        y = 5 + i * row_h
        out.append(_text(left - 6, y + 18, t.flag_type(typ), "end"))
        x = left
        for lvl in (5, 4, 3, 2, 1):
            v = lv.get(lvl, 0)
            if not v:
                continue
            bw = (w - left - 40) * v / peak
            rect = (f'<rect x="{x:.1f}" y="{y + 4}" width="{bw:.1f}" height="{row_h - 8}" fill="{LEVEL_COLORS[lvl]}" '
                    f'data-type="{escape(typ)}" data-level="{lvl}"><title>{escape(t.flag_type(typ))} · '
                    f'{escape(t.level(lvl))}: {v}</title></rect>')
            out.append(_linked(rect, link(typ, lvl) if link else None))
            x += bw
        out.append(_text(x + 4, y + 18, sum(lv.values()), size=SMALL))
    out.append("</svg>")
    return "".join(out)


def rates(rows: list[dict], t, link: Callable[[str], str] | None = None) -> str:
    """Confirmation rate per rule: confirmed / (confirmed + dismissed); ``link(rule)`` to the confirmed ones."""
    rows = [r for r in rows if r["decided"]]
    if not rows:
        return ""
    w, row_h, left = 600, 28, 190
    h = row_h * len(rows) + 10
    out = [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img">']
    for i, r in enumerate(rows):
        y = 5 + i * row_h
        full = w - left - 100
        out.append(_text(left - 6, y + 18, t.flag_type(r["rule"]), "end"))
        out.append(f'<rect x="{left}" y="{y + 4}" width="{full}" height="{row_h - 8}" class="track"/>')
        rect = (f'<rect x="{left}" y="{y + 4}" width="{max(full * r["rate"], 2):.1f}" height="{row_h - 8}" fill="#2f7d4f" '
                f'data-rule="{escape(r["rule"])}"><title>{escape(t("confirmed_of_decided", c=r["confirmed"], d=r["decided"]))}'
                f'</title></rect>')
        out.append(_linked(rect, link(r["rule"]) if link else None))
        out.append(_text(left + full + 6, y + 18, f'{r["rate"] * 100:.0f}% ({r["confirmed"]}/{r["decided"]})', size=SMALL))
    out.append("</svg>")
    return "".join(out)
