"""Per-bag outputs of ``xscreen screen``: names owned by the file's content, JSON and overlay PNG.

A rerun used to be recognised by the path string: two different bags both at ``bag.h5`` (two
folders, or a scanner spool path reused for every bag) screened into one --out, and the second
replaced the first's outputs - a NO ALARM bag's files became an ALARM bag's under the same name
(issue 32 item 3). Now the name belongs to the file's SHA-256: the same file rescreened rewrites
its own outputs; a different file gets ``<id>-2``, ``<id>-3``...
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np

from xscreen.atomic import atomic_write_bytes, atomic_write_text

_SPECIAL = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
            (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def claim(out: Path, screening: Any, taken: set[str]) -> str:
    """Output stem for one scan: its safe id, with -2, -3... until the name is free in this run and
    on disk, or already belongs to this file's content. The JSON is created exclusively, so an
    output of another file (an earlier run's, or another shard's running now) is never replaced."""
    from xscreen.paths import output_stem

    out.mkdir(parents=True, exist_ok=True)
    while True:
        stem = output_stem(screening.scan_id, taken)
        target = out / f"{stem}.json"
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            if _owned_by(target, screening):
                return stem
            continue
        with os.fdopen(fd, "w") as fh:  # a placeholder naming its owner until the JSON replaces it
            json.dump({"path": screening.path, "sha256": screening.sha256}, fh)
        return stem


def _owned_by(target: Path, screening: Any) -> bool:
    """Whether the JSON at ``target`` was written for this content (its SHA-256; for a scan without
    a file hash, the same path and no hash)."""
    try:
        doc = json.loads(target.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(doc, dict):
        return False
    if screening.sha256:
        return doc.get("sha256") == screening.sha256
    return not doc.get("sha256") and screening.path is not None and doc.get("path") == screening.path


def write_outputs(item: Any, out: Path, stem: str, overlay_mode: str) -> None:
    """``<stem>.json`` (summary with the score grid) and, unless 'none', ``<stem>.png`` (overlay)."""
    s = item.screening
    atomic_write_text(out / f"{stem}.json", json.dumps(s.to_summary(include_grid=True)))
    if overlay_mode != "none":
        from xscreen.heatmap import overlay
        from xscreen.report.figures import heat_x_alarm

        # coloured on the reports' scale: score ÷ the bag's alarm threshold (contour: at 1.00 × alarm)
        img = overlay(render_rgb(item.scan), heat_x_alarm(s), overlay_mode, regions=s.regions)
        ok, png = cv2.imencode(".png", img[..., ::-1])  # OpenCV writes BGR
        if not ok:
            raise ValueError("PNG encoding failed")
        atomic_write_bytes(out / f"{stem}.png", png.tobytes())


def special_files(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """(path, why) for every FIFO, socket or device inside the given folders (hidden ones aside):
    the scan listing passes over them, and a FIFO where a scan was expected deserves a word."""
    found = []
    for root in map(Path, paths):
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*")):
            if any(part.startswith(".") for part in p.relative_to(root).parts):
                continue
            try:
                mode = p.stat().st_mode
            except OSError:
                continue
            kind = next((name for test, name in _SPECIAL if test(mode)), None)
            if kind:
                found.append((p, f"{kind}, not a regular file; not read"))
    return found


def render_rgb(scan) -> np.ndarray:
    """(H, W, 3) uint8 display image: the material pseudo-colour view (rgb scans: their own
    colours; gray: grey) when ``xscreen.materials`` is installed, else a plain grey render."""
    try:
        from xscreen.materials import available_views, render
    except ImportError:
        t = scan.transmission()
        if scan.kind == "rgb":
            return np.ascontiguousarray((t.transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8))
        return np.repeat((t[0] * 255.0 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
    return render(scan, available_views(scan)[0])
