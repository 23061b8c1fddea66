"""Evaluation (DESIGN.md 'evaluate'): AUC / AP / ROC per level, detection per threat type, plots.

``evaluate_model(...)`` is a generator (EvalProgress per scan, then the EvalResult) so the CLI and
GUI can show progress and cancel; ``run_evaluation`` drains it and writes the files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from xscreen.atomic import atomic_write_text
from xscreen.evaluate.core import EvalConfig, EvalProgress, evaluate_model
from xscreen.evaluate.plots import plot_histogram, plot_roc
from xscreen.evaluate.result import EvalResult, LevelResult, TypeResult

__all__ = ["EvalConfig", "EvalProgress", "EvalResult", "LevelResult", "TypeResult", "evaluate_model",
           "run_evaluation", "write_outputs"]


def write_outputs(result: EvalResult, out: str | Path) -> list[Path]:
    """results.json, results.md, roc.png and scores_hist.png in ``out`` (each written atomically);
    the paths are also recorded in ``result.files``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    if result.curves:
        aucs = {lv.level: lv.auc for lv in result.levels}
        files.append(plot_roc(result.curves, aucs, out / "roc.png"))
    if result.benign_patch_scores.size or result.threat_patch_scores.size:
        files.append(plot_histogram(result.benign_patch_scores, result.threat_patch_scores,
                                    result.threshold if result.calibrated else None, out / "scores_hist.png"))
    result.files = [str(p) for p in files] + [str(out / "results.json"), str(out / "results.md")]
    atomic_write_text(out / "results.md", result.to_markdown())
    atomic_write_text(out / "results.json", result.to_json())
    return [Path(p) for p in result.files]


def run_evaluation(model: Any, benign_dir: str | Path, threat_dir: str | Path, masks_dir: str | Path | None = None,
                   cfg: EvalConfig = EvalConfig(), out: str | Path | None = None,
                   on_progress: Callable[[EvalProgress], None] | None = None) -> EvalResult:
    """Drain ``evaluate_model``; write the outputs into ``out`` when given."""
    result = None
    for item in evaluate_model(model, benign_dir, threat_dir, masks_dir, cfg):
        if isinstance(item, EvalResult):
            result = item
        elif on_progress is not None:
            on_progress(item)
    assert result is not None  # evaluate_model always ends with its result
    if out is not None:
        write_outputs(result, out)
    return result
