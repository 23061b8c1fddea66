"""The TIP image's scoring job (no Qt): the worker pulls it like ``probe.screen_job``.

The real bag is read (or taken from the pre-scored result), the console projects a threat into a
copy, and the projected image is screened by the same pipeline: the heat map and boxes the operator
sees on a TIP image are the detector's output on that image. The result keeps the real bag's path
and file hash (what the TIP event names) and is never put in the window's result cache, so it can
never be shown, reported or decided as the real bag.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from xscreen.gui import probe
from xscreen.tip.console import TipConsole, TipTrial


@dataclass
class TipShown:
    """The job's result: the trial (what was projected where) and the TIP image as the tab shows it."""

    trial: TipTrial
    outcome: probe.Outcome


def tip_screen_job(path: str | Path, console: TipConsole, scorer: Callable[[], Any], cfg: Any,
                   view: str = "pseudo", cached: probe.Outcome | None = None) -> Iterator[probe.JobStep | TipShown]:
    """JobStep(load), [JobStep(score) per batch], JobStep(done), TipShown last. Raises TipError
    (no FTI of the scan's kind fits), ScanError or ModelError naming the file."""
    from xscreen import pipeline
    from xscreen.scan import file_sha256, load_scan

    key = str(path)
    yield probe.JobStep(key, "load", 0.0)
    if cached is not None:  # the real bag was pre-scored: its scan is read already
        scan, sha = cached.scan, cached.sha256
    else:
        scan, sha = load_scan(path), file_sha256(path)
    trial = console.project(key, scan, sha)
    image = trial.tip.projected.scan
    renderer = probe.Renderer(image)
    renderer.prepare(view)
    model = scorer()
    item = None
    for item in pipeline.screen_steps(image, model, cfg):
        if isinstance(item, pipeline.ScreenProgress):
            yield probe.JobStep(key, "score", 0.2 + 0.75 * item.done / max(item.total, 1))
    recon = probe.Renderer(probe.reconstruction_scan(image, item.reconstruction, model.preprocess))
    recon.prepare(view)
    out = probe.Outcome(key, image, sha, renderer)
    out = dataclasses.replace(out, screening=item, recon_renderer=recon, residual_rgb=probe.residual_rgb(item.residual))
    yield probe.JobStep(key, "done", 1.0)
    yield TipShown(trial, out)
