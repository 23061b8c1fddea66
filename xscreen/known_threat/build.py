"""``add_known_threat``: train a known-threat head for an existing model on TIP images of a site's
benign bags, learn its fusion on other benign bags, write a new model file (G, D and the head).

The benign bags are split: the head trains on the first two thirds (benign patches against TIP
patches), the benign tails of both scores are fitted on the last third (bags the head never saw,
so its benign tail is not the optimistic one of its own training patches). The written model is
*uncalibrated*: its score is the fused one, so ``xscreen model calibrate`` sets its thresholds on the
site's benign bags as for any model. The input model stays as it was: the anomaly score alone.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xscreen.checkpoint import ModelMeta, load_model, read_meta, save_model
from xscreen.known_threat.head import HeadConfig, head_logits, scan_patches, tip_patch_set, train_head
from xscreen.model_checks.known_threat import KnownThreatMeta, fired, fit_tail
from xscreen.pipeline import collect_paths
from xscreen.scan import load_scan
from xscreen.scoring import Scorer
from xscreen.tip import Library, load_library

MIN_BAGS = 3


@dataclass(frozen=True)
class AddReport:
    out: Path
    n_positive: int
    n_benign: int
    n_ftis: int
    n_train_bags: int
    n_tail_bags: int
    meta: KnownThreatMeta


def read_head_meta(model: str | Path) -> KnownThreatMeta | None:
    """The head's record of a model file (None: no head)."""
    meta, _ = read_meta(model)
    return meta.known_threat


def _bags(benign_dir: str | Path) -> list:
    paths = collect_paths([benign_dir])
    if len(paths) < MIN_BAGS:
        raise ValueError(f"{benign_dir}: a known-threat head needs at least {MIN_BAGS} benign bags "
                         f"(two thirds train it, a third fits its benign tail), found {len(paths)}")
    return [load_scan(p) for p in paths]


def _tail_scores(scorer: Scorer, head, scans: list, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Anomaly scores and head logits (N,) of every non-air patch of ``scans``."""
    a, k = [], []
    for scan in scans:
        x, _, _ = scan_patches(scan, scorer.preprocess, scorer.patch_size, stride, scorer.loaded.meta.patch.air_threshold)
        a.append(scorer.score(x, keep_reconstructions=False).scores.float().cpu().numpy())
        k.append(head_logits(head, x).numpy())
    return np.concatenate(a), np.concatenate(k)


def add_known_threat(model: str | Path, library: str | Path | Library, benign_dir: str | Path, out: str | Path,
                     cfg: HeadConfig = HeadConfig()) -> AddReport:
    """Train, fuse, write ``out`` (atomically). ValueError / TipError / ModelError name the fault."""
    loaded = load_model(model)
    if loaded.meta.known_threat is not None:
        raise ValueError(f"{model}: already has a known-threat head (start from the anomaly-only model)")
    lib = library if isinstance(library, Library) else load_library(library)
    scans = _bags(benign_dir)
    cut = max(2, (2 * len(scans)) // 3)
    train, tail = scans[:cut], scans[cut:]
    pre, size = loaded.meta.preprocess, loaded.meta.net.size
    data = tip_patch_set(train, lib, pre, size, cfg, loaded.meta.patch.air_threshold)
    head = train_head(data, size, pre.channels, cfg)
    scorer = Scorer(loaded, device="cpu", precision="fp32")
    a, k = _tail_scores(scorer, head, tail, cfg.stride)
    (ak, ap, asc), (kk, kp, ksc) = fit_tail(a), fit_tail(k)
    cats = sorted({f.category for f in lib.ftis if f.fti_id in data.fti_ids})
    kt = KnownThreatMeta(ndf=cfg.ndf, nz=cfg.nz, anomaly_knots=ak, anomaly_probs=ap, anomaly_scale=asc,
                         known_knots=kk, known_probs=kp, known_scale=ksc, fti_ids=sorted(data.fti_ids),
                         library=Path(lib.path).name, categories=cats, n_positive=int(data.y.sum()),
                         n_benign=int((data.y == 0).sum()), steps=cfg.steps)
    card = dataclasses.replace(loaded.meta.card, description=(loaded.meta.card.description + " + known-threat head "
                               f"({len(kt.fti_ids)} FTIs of {kt.library})").strip())
    meta: ModelMeta = dataclasses.replace(loaded.meta, known_threat=kt, calibration=None, card=card)
    save_model(out, loaded.generator, loaded.discriminator, meta, known_threat=head)
    return AddReport(Path(out), kt.n_positive, kt.n_benign, len(kt.fti_ids), len(train), len(tail), kt)


def sources(scorer: Scorer, patches: torch.Tensor, level: float) -> list[str]:
    """Per patch (N, C, S, S): which score fired at ``level`` on the fused scale - anomaly,
    known-threat, both or '' - for a scorer whose model has a head (what a region shows)."""
    if scorer.known is None:
        return ["anomaly" if s >= level else "" for s in scorer.score(patches, False).scores.tolist()]
    head, scorer.known = scorer.known, None
    try:
        a = scorer.score(patches, keep_reconstructions=False).scores.float().cpu()
    finally:
        scorer.known = head
    k = head_logits(head, patches.to(scorer.device)).cpu()
    return fired(scorer.known_meta, a, k, level)


def describe(meta: Any) -> str:
    """One line for ``model info``-style listings: which score form a model uses."""
    kt = getattr(meta, "known_threat", None)
    if kt is None:
        return "anomaly score alone"
    return (f"anomaly + known-threat head fused by benign tails (ndf {kt.ndf}, {len(kt.fti_ids)} FTIs of "
            f"{', '.join(kt.categories)} from library {kt.library!r})")
