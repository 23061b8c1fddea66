"""SIXray: a 'metal' colour prior (share of a patch's pixels in the vendor palette's blue, the colour
of metal), alone and fused with the inpainted score (benign-val tails), beside darkness. Exploratory:
the prior is domain knowledge (threats are metal), its hue band fixed from the palette before looking.
Same arguments as sixray_fusion.py, whose loading and scoring it uses."""
import sys
from pathlib import Path
import cv2
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sixray_fusion import reporter, scored_state


def metal(p: np.ndarray) -> np.ndarray:
    """(N, 3, S, S) uint8 RGB -> (N,) share of pixels that are saturated blue (OpenCV hue 95-135 of 180)."""
    n, c, s, _ = p.shape
    hsv = cv2.cvtColor(np.ascontiguousarray(p.transpose(0, 2, 3, 1).reshape(n * s, s, c)), cv2.COLOR_RGB2HSV)
    hsv = hsv.reshape(n, s * s, 3)
    blue = (hsv[..., 0] >= 95) & (hsv[..., 0] <= 135) & (hsv[..., 1] >= 60)
    return blue.mean(1)


def main():
    d, val, thr = scored_state()
    val["metal"] = metal(d["val"])
    for t, p in zip(thr, d["threat"]):
        t["metal"] = metal(p)
    rep = reporter(d, 45)
    for k in ("Rin_l1_max8", "darkness", "metal"):
        rep(k, [t[k] for t in thr])
    q = {k: np.quantile(val[k], 0.99) for k in ("Rin_l1_max8", "darkness", "metal")}
    rep("inpainted + metal: ratio sum", [t["Rin_l1_max8"] / q["Rin_l1_max8"] + t["metal"] / q["metal"] for t in thr])
    rep("inpainted + darkness + metal: ratio sum", [t["Rin_l1_max8"] / q["Rin_l1_max8"] + t["darkness"] / q["darkness"]
                                                    + t["metal"] / q["metal"] for t in thr])


if __name__ == "__main__":
    main()
