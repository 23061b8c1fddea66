"""SIXray: nearest-neighbour scores on the discriminator's features (issue 12, direction 2).

Instead of comparing a patch with its reconstruction, compare it with the *benign training patches*:
the score is the distance from the patch's D features to its nearest benign training features (a
memory bank, as PatchCore, Roth et al. CVPR 2022, does with ImageNet features; here the features are
the Skip-GANomaly discriminator's own, trained on benign patches only). Forms:

* ``knn f k``: D's final feature vector f(x) (the latent term's space), per-dimension standardised on
  the training patches, mean distance to the k nearest;
* ``local Lj``: D's layer-j feature map, each spatial position a vector; the patch scores the largest
  nearest-neighbour distance over its positions (a small object is not averaged away);
* the same on a *randomly initialised* D of the same architecture (does training matter?) and on raw
  pixels (the trivial kNN baseline);
* fusions with darkness by benign-validation q99 ratio sums, as sixray_fusion.py.

  python benchmarks/checks/feature_knn.py --seed 0 --state /tmp/xs_study/fixD_skipoff2/work/state.pt \
      --set outer_skips_off=2
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import ArrayPatches  # noqa: E402
from baselines import nearest_distance  # noqa: E402
from detection_study import insert_objects  # noqa: E402
from sixray_fusion import load_state, reporter, score_state  # noqa: E402

from xscreen.train.selection import anomaly_auc  # noqa: E402
from xscreen.network import Discriminator  # noqa: E402

MEMORY = 60_000  # local feature vectors kept in the memory bank (random subset)


@torch.no_grad()
def layer_maps(d, patches: np.ndarray) -> list[torch.Tensor]:
    """D's activations after each LeakyReLU, then f(x): [(N, C_j, H_j, W_j)] float32."""
    ds = ArrayPatches(patches)
    outs: list[list[torch.Tensor]] = []
    for i in range(0, len(ds), 512):
        h = torch.stack(ds.__getitems__(list(range(i, min(i + 512, len(ds))))))
        taken = []
        for m in d.features:
            h = m(h)
            if isinstance(m, torch.nn.LeakyReLU):
                taken.append(h.clone())
        taken.append(h)
        outs.append(taken)
    return [torch.cat([o[j] for o in outs]) for j in range(len(outs[0]))]


class Knn:
    """Fit on training patches' vectors; score queries. ``local``: vectors are (N, C, H, W) maps, one
    vector per position, the patch scored by its worst position."""

    def __init__(self, train: torch.Tensor, local: bool, k: int = 1, seed: int = 0):
        self.local, self.k = local, k
        v = self._vectors(train)
        self.mu, self.sd = v.mean(0), v.std(0).clamp_min(1e-6)
        v = (v - self.mu) / self.sd
        if len(v) > MEMORY:
            v = v[torch.from_numpy(np.random.default_rng(seed).permutation(len(v))[:MEMORY])]
        self.mem = v

    def _vectors(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]) if self.local else x.flatten(1)

    def score(self, x: torch.Tensor) -> np.ndarray:
        dist = nearest_distance((self._vectors(x) - self.mu) / self.sd, self.mem, self.k)
        return (dist.reshape(len(x), -1).amax(1) if self.local else dist).double().numpy()


def forms_for(d, data: dict, label: str, inserted: np.ndarray) -> dict:
    """Every kNN form of network ``d``: name -> (val scores, [threat scores per bag], inserted scores)."""
    tr = layer_maps(d, data["train"])
    va = layer_maps(d, data["val"])
    ins = layer_maps(d, inserted)
    th = [layer_maps(d, t) for t in data["threat"]]
    res = {}
    last = len(tr) - 1
    for k in (1, 5):
        knn = Knn(tr[last], local=False, k=k)
        res[f"{label} knn f k{k}"] = (knn.score(va[last]), [knn.score(t[last]) for t in th], knn.score(ins[last]))
    for j in range(last):
        knn = Knn(tr[j], local=True, k=1)
        res[f"{label} local L{j + 1}"] = (knn.score(va[j]), [knn.score(t[j]) for t in th], knn.score(ins[j]))
    return res


def main():
    d, g, dn, run = load_state()
    val, thr = score_state(d, g, dn)
    inserted = insert_objects(d["val"], np.random.default_rng(0))
    torch.manual_seed(0)
    rand = Discriminator(run.net).eval()
    rep = reporter(d, 46)
    rows = {}
    for label, net in (("trained D", dn), ("random D", rand)):
        rows.update(forms_for(net, d, label, inserted))
    raw = Knn(torch.from_numpy(d["train"]).float(), local=False)
    rows["raw pixels knn k1"] = (raw.score(torch.from_numpy(d["val"]).float()),
                                 [raw.score(torch.from_numpy(t).float()) for t in d["threat"]],
                                 raw.score(torch.from_numpy(inserted).float()))
    dq = np.quantile(val["darkness"], 0.99)
    for k in ("R_l1", "Rin_l1_max8", "darkness"):
        rep(k, [t[k] for t in thr])
    for name, (v, t, ins) in rows.items():
        crit = anomaly_auc(v, ins)
        rep(f"{name} [crit {crit:.3f}]", t)
        q = np.quantile(v, 0.99)
        rep(f"{name} + darkness", [s / q + tt["darkness"] / dq for s, tt in zip(t, thr)])


if __name__ == "__main__":
    main()
