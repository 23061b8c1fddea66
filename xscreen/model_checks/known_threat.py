"""The known-threat head's record in the model file, its load-time checks, and the fusion it defines.

Issue 29 Part 2: a model file may carry a second head (tensors ``known_threat.*``, network.Discriminator
at width ``ndf``/``nz``) whose logit k is fused with the anomaly score a per patch by a rule learnt on
benign tails: each score is mapped to its benign tail probability p(s) = P(benign patch >= s) (the
empirical survival over ``*_knots``/``*_probs`` in the body, an exponential tail of scale ``*_scale``
beyond the last knot, so a threat beyond every benign patch still ranks), and the fused score is
F = -ln min(p_a, p_k) > 0. One score per patch: the alarm rule, calibration and outputs see only F.
A max of raw scores (the issue's first probe) lowered the AUC: the two scales are unrelated, where
tail probabilities share one scale by construction. Lives here (layer 4) so that checkpoint can check
it and scoring can apply it; training lives in ``xscreen.known_threat``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

N_KNOTS = 65
TAIL = 0.05  # the share of benign patches the exponential tail is fitted to
MAX_KNOTS, MAX_IDS = 1024, 100_000
P_FLOOR = 1e-300


@dataclass(frozen=True)
class KnownThreatMeta:
    ndf: int = 8
    nz: int = 16
    anomaly_knots: list[float] = field(default_factory=list)  # ascending benign quantiles of the anomaly score
    anomaly_probs: list[float] = field(default_factory=list)  # their survival levels, descending in (0, 1]
    anomaly_scale: float = 1.0
    known_knots: list[float] = field(default_factory=list)  # the same for the head's logit
    known_probs: list[float] = field(default_factory=list)
    known_scale: float = 1.0
    fti_ids: list[str] = field(default_factory=list)  # the TIP library manifest: FTIs the head trained on
    library: str = ""  # the library's folder name, for the record
    categories: list[str] = field(default_factory=list)
    n_positive: int = 0
    n_benign: int = 0
    steps: int = 0


def fit_tail(benign: np.ndarray) -> tuple[list[float], list[float], float]:
    """(knots, probs, scale) of benign scores (N,): quantiles at survival 1 .. TAIL, exponential beyond."""
    b = np.asarray(benign, np.float64)
    b = b[np.isfinite(b)]
    if b.size < 20:
        raise ValueError(f"{b.size} benign patch scores: need at least 20 to fit a tail")
    probs = np.linspace(1.0, TAIL, N_KNOTS)
    knots = np.maximum.accumulate(np.quantile(b, 1.0 - probs))
    top = b[b > knots[-1]] - knots[-1]
    scale = float(top.mean()) if top.size else float(np.std(b))
    return [float(v) for v in knots], [float(v) for v in probs], max(scale, 1e-9)


def tail_p(s: torch.Tensor, knots: list[float], probs: list[float], scale: float) -> torch.Tensor:
    """(N,) scores -> (N,) float64 benign tail probabilities in (0, 1]."""
    s = s.double()
    k = torch.tensor(knots, dtype=torch.float64, device=s.device)
    p = torch.tensor(probs, dtype=torch.float64, device=s.device)
    i = torch.searchsorted(k, s, right=True).clamp(1, k.numel() - 1)
    k0, k1, p0, p1 = k[i - 1], k[i], p[i - 1], p[i]
    frac = ((s - k0) / (k1 - k0).clamp_min(1e-300)).clamp(0.0, 1.0)
    body = torch.where(s < k[0], torch.ones_like(s), p0 + frac * (p1 - p0))
    tail = p[-1] * torch.exp(-(s - k[-1]) / scale)
    return torch.where(s > k[-1], tail, body).clamp(P_FLOOR, 1.0)


def source_levels(meta: KnownThreatMeta, anomaly: torch.Tensor, known: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(-ln p_a, -ln p_k), each (N,) float64: each source's own level on the fused scale."""
    pa = tail_p(anomaly, meta.anomaly_knots, meta.anomaly_probs, meta.anomaly_scale)
    pk = tail_p(known, meta.known_knots, meta.known_probs, meta.known_scale)
    return -torch.log(pa), -torch.log(pk)


def fuse(meta: KnownThreatMeta, anomaly: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """(N,) anomaly scores, (N,) logits -> (N,) float32 F = -ln min(p_a, p_k) = max of the levels."""
    la, lk = source_levels(meta, anomaly, known)
    return torch.maximum(la, lk).float()


def fired(meta: KnownThreatMeta, anomaly: torch.Tensor, known: torch.Tensor, level: float) -> list[str]:
    """Per patch: which source alone reaches ``level`` on the fused scale: anomaly, known-threat, both, ''."""
    la, lk = source_levels(meta, anomaly, known)
    return ["both" if a and k else "anomaly" if a else "known-threat" if k else ""
            for a, k in zip((la >= level).tolist(), (lk >= level).tolist())]


def check_known_threat(m: KnownThreatMeta) -> None:
    """ValueError naming the field: widths, tail maps (ascending finite knots, descending
    probabilities in (0, 1] of the same length, positive scale), id list sizes."""
    if not (1 <= m.ndf <= 256 and 1 <= m.nz <= 1024):
        raise ValueError(f"known_threat.ndf {m.ndf} / nz {m.nz} outside [1, 256] / [1, 1024]")
    for name in ("anomaly", "known"):
        knots, probs, scale = getattr(m, f"{name}_knots"), getattr(m, f"{name}_probs"), getattr(m, f"{name}_scale")
        ok = (2 <= len(knots) == len(probs) <= MAX_KNOTS and all(map(math.isfinite, knots))
              and all(a <= b for a, b in zip(knots, knots[1:])) and all(0 < p <= 1 for p in probs)
              and all(a >= b for a, b in zip(probs, probs[1:])) and math.isfinite(scale) and scale > 0)
        if not ok:
            raise ValueError(f"known_threat.{name}_knots/probs/scale: need 2-{MAX_KNOTS} ascending finite knots, "
                             "as many descending probabilities in (0, 1] and a positive finite scale")
    if len(m.fti_ids) > MAX_IDS or any(len(i) > 64 for i in m.fti_ids):
        raise ValueError(f"known_threat.fti_ids: more than {MAX_IDS} ids or an id longer than 64 characters")


KT_PREFIX = "known_threat."  # the head's tensors in the model file, beside generator.* and discriminator.*


def head_network(net, m: KnownThreatMeta):
    """The head for a model of NetConfig ``net``: D's architecture at width ``m.ndf``/``m.nz``."""
    from dataclasses import replace

    from xscreen.network import Discriminator

    return Discriminator(replace(net, ndf=m.ndf, nz=m.nz, d_spectral_norm=False, d_attention=False))
