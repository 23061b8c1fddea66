import numpy as np, torch, torch.nn.functional as F
from xscreen.scoring import Scorer
from xscreen.scan import load_scan, list_scans
from xscreen.preprocess import model_input
from xscreen.patches import tile
torch.set_num_threads(1)
sc = Scorer("/work/main/models/default.xsm", device="cpu", precision="fp32")
review = sc.threshold
ratios_new, ratios_old = [], []
for p in list_scans("/tmp/xs_synth/test/threat")[:12] + list_scans("/tmp/xs_synth/test/benign")[:6]:
    x = torch.from_numpy(model_input(load_scan(p), sc.preprocess))
    C, H, W = x.shape
    t32 = tile(x, 64, 32, -1.0); rows, cols = t32.view.shape[:2]
    pad = t32.padded_x
    full = sc.score(t32.view.reshape(-1, C, 64, 64).contiguous(), keep_reconstructions=False).scores.reshape(rows, cols)
    # coarse: every other cell (stride 64) on the same padded buffer
    coarse = t32.view[::2, ::2]
    cr, cc = coarse.shape[:2]
    ps = sc.score(coarse.reshape(-1, C, 64, 64).contiguous(), keep_reconstructions=True)
    res = (coarse.reshape(-1, C, 64, 64) - ps.reconstructions).abs().mean(1)  # (N, 64, 64)
    rmap = torch.zeros(pad.shape[1], pad.shape[2])
    rmap[: cr * 64, : cc * 64] = res.reshape(cr, cc, 64, 64).permute(0, 2, 1, 3).reshape(cr * 64, cc * 64)
    pred = F.avg_pool2d(rmap[None, None], 64, 32)[0, 0][:rows, :cols]
    cs = ps.scores.reshape(cr, cc)
    old = F.max_pool2d(F.pad(cs[None, None], (0, 1, 0, 1), value=0), 2, 1)[0, 0]  # max of overlapping coarse
    old_full = torch.zeros(rows, cols)
    for r in range(rows):
        for c in range(cols):
            rr, c2 = r // 2, c // 2
            cand = [cs[a, b] for a in {rr, min((r + 1) // 2, cr - 1)} for b in {c2, min((c + 1) // 2, cc - 1)}]
            old_full[r, c] = max(cand)
    hot = full >= 0.8 * review
    ratios_new += (pred[hot] / full[hot]).tolist()
    ratios_old += (old_full[hot] / full[hot]).tolist()
    # how many cells would be seeds at fraction F, new vs old
for name, r in (("box-mean of coarse residual", ratios_new), ("max of overlapping coarse scores", ratios_old)):
    r = np.array(r)
    print(name, "n", len(r), "min", r.min().round(3), "q01", np.quantile(r, 0.01).round(3), "q10", np.quantile(r, 0.1).round(3), "median", np.median(r).round(3))
