"""Model cards as text (no Qt): the full card for Ctrl+I (every field the model file carries,
sectioned), the operator's card on the side panel, the technical summary (its tooltip) and the
model files a selector lists."""
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


def _day(iso: str) -> str:
    return iso[:10] if iso else "date not recorded"


def operator_card(path: str | Path) -> str:
    """The side panel's model card, for the operator at the console (issue 31 item 13): what the
    model learned from, what its alarm rate means, when it was calibrated. The developer's account
    (network, losses, options) is in the full card (Ctrl+I). Raises ModelError like ``full_card``."""
    from xscreen.checkpoint import read_meta

    meta, checksum = read_meta(path)
    card, cal = meta.card, meta.calibration
    bags = card.n_train_scans + card.n_val_scans
    kind = {"dual": "dual-energy", "rgb": "colour", "gray": "grey"}.get(meta.preprocess.kind, meta.preprocess.kind)
    lines = [f"{card.name or Path(path).stem}  ({checksum[:12]})",
             f"Learned what {bags or 'an unrecorded number of'} threat-free {kind} bags look like "
             f"(trained {_day(card.created)}); it marks what differs from them."]
    if cal is None:
        lines.append("NOT CALIBRATED: it has no alarm threshold - do not screen with it.")
    else:
        seen = (f"; {cal.n_alarmed} of {cal.n_scans} held-out benign bags alarmed (95 % interval "
                f"{cal.far_lo * 100:.1f} % to {cal.far_hi * 100:.1f} %)") if cal.n_scans else ""
        lines.append(f"Alarm rate: set to alarm on about {cal.scan_far * 100:.3g} % of bags that hold no threat{seen}. "
                     "An alarm means 'look closely', not 'threat found'.")
        last = card.calibration_history[-1] if card.calibration_history else {}
        lines.append(f"Calibrated {_day(str(last.get('time', '')))} on {cal.source or 'benign bags'} "
                     f"(threshold version {cal.version}).")
    lines.append("Ctrl+I: the full model card.")
    return "\n".join(lines)


def describe_model(path: str | Path) -> str:
    """Model card as text for the selector (reads the verified header only, builds no network).
    Raises ModelError naming the file for a foreign or tampered file."""
    from xscreen.checkpoint import read_meta

    meta, checksum = read_meta(path)
    card, cal = meta.card, meta.calibration
    options = meta.net.options_text()
    lines = [f"{card.name or Path(path).stem}  ({checksum[:12]})", card.description or "",
             f"input: {meta.preprocess.kind}{' + material' if meta.preprocess.material else ''}, "
             f"patch {meta.patch.size}px, ngf {meta.net.ngf}" + (f" ({options})" if options else ""),
             f"created: {card.created}  seed {card.seed}",
             f"trained on {card.n_train_scans} scans / {card.n_train_patches} patches "
             f"(val {card.n_val_scans} / {card.n_val_patches})"]
    if cal is not None:
        lines.append(f"threshold {cal.patch_threshold:.4g} at patch FAR {cal.patch_far:.3g}; "
                     f"scan threshold {cal.scan_threshold:.4g} ({cal.scan_aggregation})")
    else:
        lines.append("not calibrated: set a threshold before screening")
    for key, value in sorted(card.evaluation.items()):
        if isinstance(value, (int, float, str)):
            lines.append(f"{key}: {value}")
    return "\n".join(line for line in lines if line)


def list_models(dirs: list[Path], extra: list[str | Path] = ()) -> list[Path]:  # type: ignore[assignment]
    """Model files (*.xsm) in ``dirs`` plus ``extra`` opened files; sorted, no duplicates. Hidden
    files are skipped: an interrupted save's temporary (.NAME.xstmp-XXXXXXXX.xsm, atomic.py) is no model."""
    found = {p.resolve() for d in dirs if Path(d).is_dir() for p in Path(d).glob("*.xsm")
             if not p.name.startswith(".")}
    found.update(Path(p).resolve() for p in extra if Path(p).is_file())
    return sorted(found, key=lambda p: (p.name, str(p)))
