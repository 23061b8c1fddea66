"""Score-grid smoothing: patch scores vs cell scores (mean of the patches covering each stride cell)."""
import csv, sys, numpy as np, torch, torch.nn.functional as F
from pathlib import Path
from xscreen.scoring import Scorer
from xscreen.pipeline import screen
from xscreen.config import ScreenConfig
from xscreen.scan import load_scan, list_scans
from xscreen.evaluate import truth
from xscreen.train.selection import anomaly_auc
R = Path("/tmp/xs_synth")
sc = Scorer(sys.argv[1], device="cpu")
types = {r["stem"]: [t for t in r["threat_types"].split(";") if t] for r in csv.DictReader(open(R / "test/labels.csv"))}

def forms(s):
    g = torch.from_numpy(s.score_grid).float()[None, None]
    live = torch.from_numpy(~s.air_grid).float()[None, None]
    gz = g * live
    out = {"patch": (s.score_grid, ~s.air_grid, 64, 0)}
    # cell (i, j) = pixels [32i, 32i+32): patches (i-1..i, j-1..j); pad one row/col of zeros at top/left
    num = F.avg_pool2d(F.pad(gz, (1, 1, 1, 1)), 2, 1)
    den = F.avg_pool2d(F.pad(live, (1, 1, 1, 1)), 2, 1)
    out["cell mean (air=0)"] = (num[0, 0].numpy(), den[0, 0].numpy() > 0, 32, -32)
    out["cell mean (live)"] = ((num / den.clamp_min(1e-6))[0, 0].numpy(), den[0, 0].numpy() > 0, 32, -32)
    mn = -F.max_pool2d(F.pad(-g + (1 - live) * 1e3, (1, 1, 1, 1), value=-1e3), 2, 1)
    out["cell min (live)"] = (mn[0, 0].numpy(), den[0, 0].numpy() > 0, 32, -32)
    m3 = F.avg_pool2d(gz, 3, 1, 1) / F.avg_pool2d(live, 3, 1, 1).clamp_min(1e-6)
    out["patch 3x3 mean"] = (m3[0, 0].numpy(), ~s.air_grid, 64, 0)
    return out

def grid_origins(shape, step, off):
    return np.array([(r * step + off, c * step + off) for r in range(shape[0]) for c in range(shape[1])])

def run(folder, masks=False):
    res = []
    for p in list_scans(folder):
        s = screen(load_scan(p), sc, ScreenConfig(stride=32, maps=False))
        e = {}
        mask = truth.read_mask(R / "test/masks" / f"{p.stem}.png", (s.height, s.width)) if masks else None
        for k, (g, live, size, off) in forms(s).items():
            d = {"s": g.ravel(), "live": live.ravel()}
            if masks:
                o = grid_origins(g.shape, 32, off)
                if size == 32:
                    cov = truth.patch_coverage(mask > 0, o + 32, 32)  # shift: cell index r covers [32(r-1), 32r)
                    d["tp"] = (cov >= 0.1 * 32 * 32) & d["live"]
                    d["inst"] = [(i.type, (truth.patch_coverage(mask == i.label, o + 32, 32) > 0) & d["live"])
                                 for i in truth.instances(mask, types[p.stem])]
                else:
                    d["tp"] = truth.threat_patches(mask, o, 64, 0.1) & d["live"]
                    d["inst"] = [(i.type, truth.instance_patches(mask, i, o, 64, 0.1) & d["live"])
                                 for i in truth.instances(mask, types[p.stem])]
            e[k] = d
        res.append(e)
    return res

cal, ben, thr = run(R / "calib/benign"), run(R / "test/benign"), run(R / "test/threat", True)
for k in cal[0]:
    th = np.quantile(np.concatenate([e[k]["s"][e[k]["live"]] for e in cal]), 0.99)
    b = np.concatenate([e[k]["s"][e[k]["live"]] for e in ben]); t = np.concatenate([e[k]["s"][e[k]["tp"]] for e in thr])
    hits = {}
    for e in thr:
        for ty, sel in e[k]["inst"]:
            hits.setdefault(ty, []).append(bool((e[k]["s"][sel] >= th).any()))
    print(k, "AUC", round(anomaly_auc(b, t), 3), "FAR", round(float((b >= th).mean()), 4),
          {ty: round(float(np.mean(v)), 2) for ty, v in sorted(hits.items())}, flush=True)
