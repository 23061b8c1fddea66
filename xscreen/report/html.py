"""Self-contained HTML report: one file, images embedded as base64 PNG, every text escaped.

No template engine: every piece of text from a scan, a model or an operator goes through ``_e``
(``html.escape`` with quotes), so a scan named ``<script>...`` renders as text.
"""
from __future__ import annotations

import base64
from html import escape
from typing import Any, Iterable

from xscreen.report.context import FOOTNOTE, ReportContext, heat_caption
from xscreen.report.figures import CROP_NAMES, Figures, png_bytes
from xscreen.text import shorten, valid_text

CSS = """
body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px;color:#111;max-width:1200px}
h1{font-size:22px;margin:0 0 4px;overflow-wrap:anywhere} td{overflow-wrap:anywhere} h2{font-size:17px;margin:22px 0 8px;border-bottom:2px solid #333}
h3{font-size:15px;margin:14px 0 6px}
.badge{display:inline-block;padding:4px 12px;border-radius:4px;font-weight:bold;color:#fff;margin-right:8px}
.ALARM{background:#c0392b}.NO_ALARM{background:#27ae60}.UNKNOWN{background:#7f8c8d}
tr.lvl-alarm td{font-weight:bold;color:#c0392b}tr.lvl-attention td{color:#00789e}
.facts{display:grid;grid-template-columns:1fr 1fr;gap:4px 28px}.facts table{width:100%}
.facts th{width:34%}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #bbb;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eee} td.num{text-align:right;font-variant-numeric:tabular-nums}
.mono{font-family:'DejaVu Sans Mono',monospace;font-size:12px;word-break:break-all}
img.scan{width:100%;max-width:1000px;border:1px solid #333}
.crops img{border:1px solid #333}
.crops{display:flex;gap:8px;flex-wrap:wrap}.crops figure{margin:0}
.crops figcaption{font-size:12px;text-align:center}
.missing{width:200px;height:120px;border:1px dashed #999;display:flex;align-items:center;
 justify-content:center;font-size:12px;color:#666;text-align:center}
.region{page-break-inside:avoid;margin-bottom:10px}
footer{margin-top:24px;font-size:11px;color:#555}
"""

LONG_VALUES = {"SHA-256", "Checksum", "File"}


def _e(value: Any) -> str:
    return escape(valid_text(value), quote=True)


def _img(rgb: Any, alt: str, cls: str = "", figs: Figures | None = None) -> str:
    data = base64.b64encode(figs.png(rgb) if figs else png_bytes(rgb)).decode("ascii")
    return f'<img class="{cls}" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def render_html(ctx: ReportContext, figs: Figures) -> str:
    s = ctx.screening
    title = f"Screening report: {shorten(s.scan_id, 200)}"  # whole in the Scan table below
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>',
        f"<style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p><span class="badge {_e(ctx.final_alarm)}">{_e(ctx.final_alarm)}</span>'
        f"{_e(ctx.report_type.lower())} decision &middot; machine: {_e(ctx.machine_alarm)}"
        f" &middot; {sum(r.level == 'alarm' for r in s.regions)} alarm region(s), "
        f"{sum(r.level != 'alarm' for r in s.regions)} attention</p>",
        _facts(ctx),
        "<h2>Scan</h2>", _img(figs.thumbnail, "scan with numbered region boxes", "scan", figs),
        "<h2>Heat map (score &divide; this bag's alarm threshold)</h2>",
        _img(figs.heat_thumbnail, "heatmap overlay", "scan", figs) if figs.heat_thumbnail is not None
        else "<p>No heat map stored in the saved screening; re-render with --model.</p>",
        _img(figs.legend, "colour scale", "", figs) if figs.legend is not None else "",
        f"<p>{_e(heat_caption(ctx))}</p>",
        "<h2>Regions</h2>", _region_table(ctx),
        *(_region_detail(c, row, figs) for c, row in zip(figs.crops, ctx.region_rows())),
        _more_note(len(s.regions), len(figs.crops)),
        f"<footer>{_e(ctx.app.name)} {_e(ctx.app.version)} &middot; generated {_e(ctx.app.generated)}"
        f" &middot; {_e(FOOTNOTE)}</footer></body></html>",
    ]
    return "\n".join(parts)


def _facts(ctx: ReportContext) -> str:
    blocks = []
    for section, pairs in ctx.facts():
        rows = "".join(f"<tr><th>{_e(k)}</th><td class=\"{'mono' if k in LONG_VALUES else ''}\">"
                       f"{_e(v)}</td></tr>" for k, v in pairs)
        blocks.append(f"<div><h3>{_e(section)}</h3><table>{rows}</table></div>")
    return f'<div class="facts">{"".join(blocks)}</div>'


def _region_table(ctx: ReportContext) -> str:
    rows = ctx.region_rows()
    if not rows:
        return "<p>No region reached the threshold.</p>"
    head = ("<tr><th>Rank</th><th>Level</th><th>Region id</th><th>Box x, y, w, h (px)</th>"
            "<th>Max &times; alarm</th><th>Mean &times; alarm</th><th>Max score (raw)</th>"
            "<th>Patches</th><th>Assessment p</th></tr>")
    body = "".join(
        f"<tr class=\"lvl-{r['level'].lower()}\"><td class=num>{r['rank']}</td><td>{r['level']}</td>"
        f"<td class=num>{r['region_id']}</td>"
        f"<td>{_e(', '.join(map(str, r['box'])))}</td><td class=num>{r['x_alarm']:.2f}</td>"
        f"<td class=num>{r['mean_x_alarm']:.2f}</td><td class=num>{r['max_score']:.5g}</td>"
        f"<td class=num>{r['n_patches']}</td><td class=num>{r['probability']:.2f}</td></tr>"
        for r in rows)
    note = (f"<p>Numbers are score &divide; this bag's alarm threshold (&times; alarm): 1.00 alarms; "
            f"regions are drawn from the review level, {ctx.review_x_alarm:.2f} &times; alarm.</p>")
    return f"<table>{head}{body}</table>{note}"


def _region_detail(crops: Any, row: dict[str, Any], figs: Figures) -> str:
    cells = []
    for name in CROP_NAMES:
        img = getattr(crops, name)
        body = (_img(img, f"region {row['rank']} {name}", "", figs) if img is not None else
                f'<div class="missing">{_e(name)} not stored;<br>re-render with --model</div>')
        cells.append(f"<figure>{body}<figcaption>{_e(name)}</figcaption></figure>")
    x, y, w, h = crops.window
    return (f'<div class="region"><h3>Region {row["rank"]} ({row["level"]}): {row["x_alarm"]:.2f} &times; '
            f"alarm (score {row['max_score']:.5g}), {row['n_patches']} patch(es)</h3>"
            f'<div class="crops">{"".join(cells)}</div>'
            f"<p style='font-size:12px'>box x={row['box'][0]} y={row['box'][1]} w={row['box'][2]} "
            f"h={row['box'][3]}; crops: x={x} y={y} w={w} h={h} px</p></div>")


def _more_note(n_regions: int, n_shown: int) -> str:
    if n_regions <= n_shown:
        return ""
    return f"<p>{n_regions - n_shown} lower-ranked region(s) are listed in the table only.</p>"


def render_session_html(title: str, summary: Iterable[tuple[str, str]], header: list[str],
                        rows: list[list[str]], thumbs: list[Any | None], generated: str) -> str:
    """All bags of a session: a summary table and one row per bag (thumbnail when available)."""
    facts = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in summary)
    head = "".join(f"<th>{_e(h)}</th>" for h in ["", *header])
    body = "".join(
        "<tr><td>" + (_img(t, "bag") if t is not None else "") + "</td>"
        + "".join(f"<td>{_e(v)}</td>" for v in r) + "</tr>" for r, t in zip(rows, thumbs))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{_e(title)}</h1><table>{facts}</table>"
            f"<h2>Bags</h2><table><tr>{head}</tr>{body}</table>"
            f"<footer>generated {_e(generated)}</footer></body></html>")
