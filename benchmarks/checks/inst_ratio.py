import csv, numpy as np, sys
from pathlib import Path
from xscreen.scoring import Scorer
from xscreen.pipeline import screen
from xscreen.config import ScreenConfig
from xscreen.scan import load_scan, list_scans
from xscreen.evaluate import truth
R = Path("/tmp/xs_synth/test")
sc = Scorer(sys.argv[1], device="cpu")
types = {r["stem"]: [t for t in r["threat_types"].split(";") if t] for r in csv.DictReader(open(R / "labels.csv"))}
out = {}
for p in list_scans(R / "threat"):
    s = screen(load_scan(p), sc, ScreenConfig(stride=32, maps=False))
    rows, cols = s.score_grid.shape
    origins = np.array([(r * 32, c * 32) for r in range(rows) for c in range(cols)])
    mask = truth.read_mask(R / "masks" / f"{p.stem}.png", (s.height, s.width))
    g = s.score_grid.ravel(); live = ~s.air_grid.ravel()
    for i in truth.instances(mask, types[p.stem]):
        sel = truth.instance_patches(mask, i, origins, 64, 0.1) & live
        out.setdefault(i.type, []).append(float(g[sel].max() / s.threshold) if sel.any() else 0.0)
for t, v in sorted(out.items()):
    print(t, " ".join(f"{x:.2f}" for x in sorted(v)))
