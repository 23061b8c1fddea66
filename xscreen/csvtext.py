"""CSV text for every CSV xscreen writes (patches.csv, summary CSVs, the audit export).

Cells carry data from untrusted files (scan ids, file names, operator names), and a spreadsheet
runs a cell that starts with = + - @ (or a tab / CR before one) as a formula (OWASP "CSV
injection"), so such text gets a leading quote. One helper, so no CSV can miss it.
"""
from __future__ import annotations

import csv
import io
import math
from typing import Any, Iterable, Mapping

from xscreen.text import valid_text

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(v: Any) -> Any:
    """Empty for None/NaN (unknown); text made valid Unicode (text.valid_text); text that a
    spreadsheet would run as a formula gets a leading quote."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, str):
        v = valid_text(v)  # a lone surrogate (a non-UTF-8 file name) cannot be written as UTF-8
    if isinstance(v, str) and v[:1] in FORMULA_STARTS:
        return "'" + v
    return v


def csv_text(columns: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """Header + one line per row (RFC 4180 CRLF line ends); keys not in ``columns`` are ignored,
    missing ones empty."""
    buf = io.StringIO()
    # The writer quotes a cell only for the characters of its line terminator: with '\n' alone a CR
    # inside a scan id went out bare, and readers split the row there (a new row, a new formula).
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: safe_cell(v) for k, v in row.items()})
    return buf.getvalue()
