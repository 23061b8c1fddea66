"""XSCREEN_MEMORY_BUDGET read strictly (a leaf with no torch: the scan readers use it).

``scan._limits.parse_bytes`` turned 'inf' into an OverflowError that crashed a batch and took
1e30 without a word, i.e. no limit at all (issue 32 item 12).
"""
from __future__ import annotations

import os

MEMORY_BUDGET_VAR = "XSCREEN_MEMORY_BUDGET"
# 1 MiB .. 64 TiB: below, no scan fits; above, no machine has it, so the "limit" would be none
# (1e30 was taken silently; 'inf' crashed int() with OverflowError)
MEMORY_BUDGET_RANGE = (1 << 20, 64 << 40)
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def memory_budget_from_env(environ: dict[str, str] | None = None) -> int | None:
    """Bytes of ``XSCREEN_MEMORY_BUDGET`` (K/M/G/T suffix allowed), None when unset. Anything not a
    finite size in MEMORY_BUDGET_RANGE is a ValueError naming the variable and the allowed range:
    a typo must neither crash a batch nor lift the limit."""
    text = (os.environ if environ is None else environ).get(MEMORY_BUDGET_VAR, "").strip()
    if not text:
        return None
    lo, hi = MEMORY_BUDGET_RANGE
    allowed = f"allowed: a size from 1M to {hi >> 40}T, e.g. 4G or 512M"
    body = text.upper().removesuffix("B").removesuffix("I")
    unit = _UNITS.get(body[-1:], 1)
    try:
        value = float(body[:-1] if body[-1:] in _UNITS else body) * unit
    except ValueError:
        raise ValueError(f"{MEMORY_BUDGET_VAR}={text!r} is not a size ({allowed})") from None
    if not (value == value and lo <= value <= hi):  # NaN and inf fail too
        raise ValueError(f"{MEMORY_BUDGET_VAR}={text!r} is out of range ({allowed})")
    return int(value)
