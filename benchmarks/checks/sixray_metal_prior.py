"""SIXray: a 'metal' colour prior (share of a patch's pixels in the vendor palette's blue, the colour
of metal), alone and fused with the inpainted score (benign-val tails), beside darkness. Exploratory:
the prior is domain knowledge (threats are metal), its hue band fixed from the palette before looking."""
import sys, argparse
from pathlib import Path
import cv2
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detection_study import within_image, load_data, score_forms, configured_run, feature_std
from _common import nets_from_state
from xscreen.runtime import precision_for
ap = argparse.ArgumentParser(); ap.add_argument("--seed", type=int, default=0); ap.add_argument("--state"); ap.add_argument("--set", nargs="*", default=[])
a = ap.parse_args()
class A: pass
args = A(); args.out = Path("/tmp/xs_study"); args.scale = 0.25; args.patch = 32; args.seed = a.seed
args.set = a.set; args.precision = "bf16"; args.epochs = 6; args.ngf = 32; args.batch_size = 64; args.max_patches = 100; args.n_train = 80; args.n_val = 20; args.quick=False; args.device="cpu"
d = load_data(args)
run = configured_run(args)
g, dn = nets_from_state(Path(a.state), run); g.eval(); dn.eval()
prec = precision_for("cpu", "bf16")
fstd = feature_std(dn, d["val"], prec)
val = score_forms(g, dn, d["val"], prec, fstd)
thr = [score_forms(g, dn, t, prec, fstd) for t in d["threat"]]


def metal(p: np.ndarray) -> np.ndarray:
    """(N, 3, S, S) uint8 RGB -> (N,) share of pixels that are saturated blue (OpenCV hue 95-135 of 180)."""
    n, c, s, _ = p.shape
    hsv = cv2.cvtColor(np.ascontiguousarray(p.transpose(0, 2, 3, 1).reshape(n * s, s, c)), cv2.COLOR_RGB2HSV)
    hsv = hsv.reshape(n, s * s, 3)
    blue = (hsv[..., 0] >= 95) & (hsv[..., 0] <= 135) & (hsv[..., 1] >= 60)
    return blue.mean(1)


dark = lambda p: 1.0 - p.reshape(len(p), -1).mean(1) / 255.0  # noqa: E731
val["darkness"], val["metal"] = dark(d["val"]), metal(d["val"])
for t, p in zip(thr, d["threat"]):
    t["darkness"], t["metal"] = dark(p), metal(p)
inside = [c >= 0.25 for c in d["cover"]]; outside = [c == 0 for c in d["cover"]]
def rep(name, scores):
    r = within_image(scores, d["dark"], inside, outside); print(f"{name:45s} pooled {r['pooled']:.3f} matched {r['matched']:.3f}", flush=True)
for k in ("Rin_l1_max8", "darkness", "metal"):
    rep(k, [t[k] for t in thr])
q = {k: np.quantile(val[k], 0.99) for k in ("Rin_l1_max8", "darkness", "metal")}
rep("inpainted + metal: ratio sum", [t["Rin_l1_max8"] / q["Rin_l1_max8"] + t["metal"] / q["metal"] for t in thr])
rep("inpainted + darkness + metal: ratio sum", [t["Rin_l1_max8"] / q["Rin_l1_max8"] + t["darkness"] / q["darkness"]
                                                + t["metal"] / q["metal"] for t in thr])
