"""numpy face of the fusion rule (model_checks.known_threat holds it, so scoring can apply it):
``TailMap.fit(benign)`` and ``Fusion(anomaly_map, known_map).fuse(a, k)`` for benchmarks and tests."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xscreen.model_checks.known_threat import KnownThreatMeta, fit_tail, fuse, tail_p


@dataclass(frozen=True)
class TailMap:
    knots: list[float]
    probs: list[float]
    scale: float

    @classmethod
    def fit(cls, benign: np.ndarray) -> "TailMap":
        return cls(*fit_tail(benign))

    def p(self, s: np.ndarray) -> np.ndarray:
        return tail_p(torch.as_tensor(np.asarray(s, np.float64)), self.knots, self.probs, self.scale).numpy()


@dataclass(frozen=True)
class Fusion:
    anomaly: TailMap
    known: TailMap

    def meta(self, **fields) -> KnownThreatMeta:
        a, k = self.anomaly, self.known
        return KnownThreatMeta(anomaly_knots=a.knots, anomaly_probs=a.probs, anomaly_scale=a.scale,
                               known_knots=k.knots, known_probs=k.probs, known_scale=k.scale, **fields)

    def fuse(self, anomaly: np.ndarray, known: np.ndarray) -> np.ndarray:
        """(N,) anomaly scores, (N,) logits -> (N,) F = -ln min(p_a, p_k)."""
        return fuse(self.meta(), torch.as_tensor(np.asarray(anomaly, np.float64)),
                    torch.as_tensor(np.asarray(known, np.float64))).double().numpy()
