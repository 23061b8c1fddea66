"""TIP statistics as text: a terminal table, CSV (formula-safe cells) and a self-contained HTML page.
Operator names come from the audit database: escaped in HTML, quoted against formulas in CSV."""
from __future__ import annotations

import html
import math

from xscreen.csvtext import csv_text
from xscreen.tip.stats import COLUMNS, TipStats, to_rows


def _num(v: float, digits: int = 3) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _interval(rate: float, lo: float, hi: float) -> str:
    return "-" if math.isnan(rate) else f"{rate:.3f} [{lo:.3f}, {hi:.3f}]"


def stats_table(stats: TipStats) -> str:
    """Fixed-width table, one line per (operator, category); '*' = all."""
    lines = [f"{'operator':<16} {'category':<9} {'events':>6} {'hit rate [95% CI]':<24} "
             f"{'bags':>6} {'false alarms [95% CI]':<24} {'d_prime':>7}"]
    for g in stats.groups:
        op = "".join(c if c.isprintable() else "?" for c in g.operator)[:16]
        lines.append(f"{op:<16} {g.category:<9} {g.events:>6} "
                     f"{_interval(g.hit.rate, g.hit.lo, g.hit.hi):<24} {g.false_alarm.n:>6} "
                     f"{_interval(g.false_alarm.rate, g.false_alarm.lo, g.false_alarm.hi):<24} "
                     f"{_num(g.d_prime, 2):>7}{'  ! ' + g.warning if g.warning else ''}")
    return "\n".join(lines + [f"note: {n}" for n in stats.notes])


def stats_csv(stats: TipStats) -> str:
    return csv_text(COLUMNS, to_rows(stats))


def stats_html(stats: TipStats) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for row in to_rows(stats):
        cells = []
        for c in COLUMNS:
            v = row[c]
            text = _num(v) if isinstance(v, float) else str(v)
            cells.append(f"<td>{html.escape(text)}</td>")
        cls = ' class="warn"' if row["warning"] else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in stats.notes)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>TIP statistics</title>"
            "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px}"
            "tr.warn td{color:#a60}</style></head><body><h1>TIP statistics</h1>"
            f"<table><tr>{head}</tr>{''.join(body)}</table><ul>{notes}</ul></body></html>\n")
