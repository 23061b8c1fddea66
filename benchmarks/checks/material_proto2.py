"""Prototype: benign dual-energy (a_high, a_low) density -> per-pixel NLL -> patch scores.
Compared/fused with the model's R on the same stride-32 grid (product air rule)."""
import sys, csv, json
from pathlib import Path
import numpy as np, torch, cv2
torch.set_num_threads(2)
from xscreen.scan import load_scan, list_scans
from xscreen.scoring import Scorer
from xscreen.pipeline import screen
from xscreen.config import ScreenConfig
from xscreen.evaluate import truth
from xscreen.train.selection import anomaly_auc

ROOT = Path("/tmp/xs_synth")
B = int(sys.argv[2]) if len(sys.argv) > 2 else 96
AMAX = 9.0
model = sys.argv[1] if len(sys.argv) > 1 else "/work/main/models/default.xsm"


SMOOTH = int(sys.argv[3]) if len(sys.argv) > 3 else 5
UMAX, VLO, VHI = 4.0, 1.0, 3.0
def atten(scan):
    t = scan.channels.astype(np.float32) / scan.i0
    a = -np.log(np.clip(t, 1e-6, 1.0))  # (2, H, W) high, low
    if SMOOTH > 1:
        a = np.stack([cv2.blur(c, (SMOOTH, SMOOTH)) for c in a])
    u = a[0]
    v = a[1] / np.maximum(a[0], 1e-3)
    return np.stack([u, v])


def bins_u(u):
    return np.clip((u / UMAX * B).astype(np.int64), 0, B - 1)
def bins_v(v):
    return np.clip(((v - VLO) / (VHI - VLO) * B).astype(np.int64), 0, B - 1)


hist = np.zeros((B, B))
for p in list_scans(ROOT / "train" / "benign"):
    a = atten(load_scan(p))
    bh, bl = bins_u(a[0]).ravel(), bins_v(a[1]).ravel()
    keep = (a[0].ravel() > 0.05)  # not air
    np.add.at(hist, (bh[keep], bl[keep]), 1)
hist = cv2.GaussianBlur(hist, (0, 0), 1.0)
prob = (hist + 1e-3) / (hist.sum() + 1e-3 * B * B)
nll_table = -np.log(prob)
print("hist filled bins", int((hist > 1).sum()), flush=True)


def nll_map(scan):
    a = atten(scan)
    m = nll_table[bins_u(a[0]), bins_v(a[1])]
    m[a[0] < 0.05] = 0.0
    return m.astype(np.float32)


def patch_scores(m, rows, cols, size=64, stride=32, q=0.9):
    H, W = m.shape
    pad = np.zeros((rows * stride + size, cols * stride + size), np.float32)
    pad[:H, :W] = m
    t = torch.from_numpy(pad)[None]
    u = t.unfold(1, size, stride).unfold(2, size, stride)[0][:rows, :cols].reshape(rows * cols, -1)
    return {"mean": u.mean(1).numpy(), "q90": torch.quantile(u[:, ::4], q, dim=1).numpy(),
            "top": u.topk(64, dim=1).values.mean(1).numpy()}


sc = Scorer(model, device="cpu")
cfg = ScreenConfig(stride=32)
types = {r["stem"]: [t for t in r["threat_types"].split(";") if t] for r in csv.DictReader(open(ROOT / "test/labels.csv"))}


def run(folder, masks=False):
    res = []
    for p in list_scans(folder):
        scan = load_scan(p)
        s = screen(scan, sc, cfg)
        rows, cols = s.score_grid.shape
        d = patch_scores(nll_map(scan), rows, cols)
        d["R"] = s.score_grid.ravel()
        live = ~s.air_grid.ravel()
        e = {"d": d, "live": live}
        if masks:
            mask = truth.read_mask(ROOT / "test/masks" / f"{p.stem}.png", (scan.height, scan.width))
            origins = np.array([(r * 32, c * 32) for r in range(rows) for c in range(cols)])
            e["tp"] = truth.threat_patches(mask, origins, 64, 0.1) & live
            e["inst"] = [(i.type, truth.instance_patches(mask, i, origins, 64, 0.1) & live)
                         for i in truth.instances(mask, types[p.stem])]
        res.append(e)
    return res


calib = run(ROOT / "calib/benign")
ben = run(ROOT / "test/benign")
thr = run(ROOT / "test/threat", True)
keys = list(calib[0]["d"])
for k in ["mean", "q90", "top"]:
    for sets in (calib, ben, thr):
        for e in sets:
            pass
# z-score fusions on calibration patches
def stats(k):
    v = np.concatenate([e["d"][k][e["live"]] for e in calib])
    return v.mean(), v.std()
for k in ["mean", "q90", "top"]:
    mr, sr = stats("R"); mk, sk = stats(k)
    for e in calib + ben + thr:
        e["d"]["R+" + k] = (e["d"]["R"] - mr) / sr + (e["d"][k] - mk) / sk
        e["d"]["Rmax" + k] = np.maximum((e["d"]["R"] - mr) / sr, (e["d"][k] - mk) / sk)
out = {}
for k in calib[0]["d"]:
    cal = np.concatenate([e["d"][k][e["live"]] for e in calib])
    th = np.quantile(cal, 0.99)
    b = np.concatenate([e["d"][k][e["live"]] for e in ben]); t = np.concatenate([e["d"][k][e["tp"]] for e in thr])
    auc = anomaly_auc(b, t)
    sauc = anomaly_auc(*(np.array([e["d"][k][e["live"]].max() for e in bags]) for bags in (ben, thr)))
    hits = {}
    for e in thr:
        for ty, sel in e["inst"]:
            hits.setdefault(ty, []).append(bool((e["d"][k][sel] >= th).any()))
    far = float(np.mean(b >= th))
    out[k] = dict(patch=round(auc, 3), scan=round(sauc, 3), test_far=round(far, 4),
                  **{ty: round(float(np.mean(v)), 2) for ty, v in sorted(hits.items())})
    print(k, out[k], flush=True)
Path(f"/tmp/material_proto_{B}_{SMOOTH}.json").write_text(json.dumps(out, indent=1))
