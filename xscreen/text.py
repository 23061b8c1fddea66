"""Text that came from a file (scan ids, metadata, file names), made safe for each place it goes.

- ``valid_text``: any str -> valid Unicode. A lone surrogate ("bad\\ud800id": a JSON header in a
  TIFF/PNG may carry one; a non-UTF-8 file name decodes to one) cannot be encoded as UTF-8, so the
  first CSV, HTML or SQLite write of it raised UnicodeEncodeError. It becomes the six characters
  ``\\ud800``: visible, and nothing else changes. Applied once where a scan is read
  (``scan.load_scan``) and again by every writer, for text that came another way.
- ``printable``: for a terminal line. Control characters (ANSI escape sequences that recolour or
  rewrite the terminal, CR that overwrites the line) become ``\\x1b``-style escapes.
- ``shorten``: for layout only (a PDF cell, a title), never for the record: head ... tail.
"""
from __future__ import annotations

import re
from typing import Any

# C0 controls, DEL and C1 controls (0x9b is a one-byte CSI on many terminals)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
ELLIPSIS = " \u2026 "


def valid_text(text: Any) -> str:
    """str(text) with every lone surrogate replaced by its ``\\udXXX`` escape (valid UTF-8 after)."""
    s = str(text)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


def valid_data(value: Any) -> Any:
    """``valid_text`` through dicts, lists and tuples (keys too); other values unchanged."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {valid_data(k): valid_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(valid_data(v) for v in value)
    return value


def printable(text: Any) -> str:
    """One terminal line: valid text with control characters shown as escapes, not obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", valid_text(text))


def shorten(text: Any, limit: int = 300) -> str:
    """At most about ``limit`` characters: the head and the tail with ' … ' between (ids and paths
    differ at both ends), and the number of characters left out."""
    s = valid_text(text)
    if len(s) <= limit:
        return s
    keep = max(limit - 40, 8)
    head, tail = s[: keep * 2 // 3], s[len(s) - keep // 3:]
    return f"{head}{ELLIPSIS}[{len(s) - len(head) - len(tail)} characters]{ELLIPSIS}{tail}"
