"""The full model card for Ctrl+I (no Qt): every field the model file carries, sectioned, where
the side panel shows a summary (``probe.describe_model``)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

SECTIONS = (("card", "Model card"), ("calibration", "Calibration"), ("preprocess", "Input"),
            ("net", "Network"), ("patch", "Patches"), ("train", "Training"))
MAX_LIST = 20  # list entries shown (calibration history can grow)


def _lines(value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    if isinstance(value, dict):
        out = []
        for key in sorted(value):
            sub = value[key]
            if isinstance(sub, (dict, list)) and sub:
                out += [f"{pad}{key}:"] + _lines(sub, indent + 1)
            else:
                out.append(f"{pad}{key}: {'-' if sub in ('', None, [], {}) else sub}")
        return out
    if isinstance(value, list):
        out = []
        for item in value[:MAX_LIST]:
            out += _lines(item, indent) if isinstance(item, dict) else [f"{pad}- {item}"]
            out.append("") if isinstance(item, dict) else None
        if len(value) > MAX_LIST:
            out.append(f"{pad}… {len(value) - MAX_LIST} more")
        return out
    return [f"{pad}{value}"]


def full_card(path: str | Path) -> str:
    """Every section of the model file's metadata as indented text, with its checksum. Raises
    ModelError naming the file for a foreign or tampered file (as ``read_meta``)."""
    from xscreen.checkpoint import read_meta

    meta, checksum = read_meta(path)
    out = [f"{Path(path).name}", f"checksum: {checksum}", ""]
    for attr, title in SECTIONS:
        value = getattr(meta, attr)
        out.append(f"== {title} ==")
        out += _lines(dataclasses.asdict(value), 1) if value is not None else ["  not calibrated"]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
