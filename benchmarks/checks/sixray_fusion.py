"""SIXray: fuse the model's inpainted score with darkness / colour prior via benign-val tails (Fisher).

``load_state``, ``score_state`` / ``scored_state`` and ``reporter`` are shared with the other SIXray
checks (sixray_metal_prior.py, sixray_knn_fusion.py, feature_knn.py)."""
import sys, argparse
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detection_study import within_image, load_data, score_forms, configured_run, feature_std
from _common import nets_from_state
from xscreen.runtime import precision_for


def dark(p):
    return 1.0 - p.reshape(len(p), -1).mean(1) / 255.0


def load_state(argv=None):
    """--seed S --state STATE [--set K=V] [--scale X --patch P]: the study cache of that split and the
    state's networks (eval mode) -> (data, generator, discriminator, run config)."""
    ap = argparse.ArgumentParser(); ap.add_argument("--seed", type=int, default=0); ap.add_argument("--state"); ap.add_argument("--set", nargs="*", default=[])
    ap.add_argument("--scale", type=float, default=0.25); ap.add_argument("--patch", type=int, default=32)
    a = ap.parse_args(argv)
    class A: pass
    args = A(); args.out = Path("/tmp/xs_study"); args.scale = a.scale; args.patch = a.patch; args.seed = a.seed
    args.set = a.set; args.precision = "bf16"; args.epochs = 6; args.ngf = 32; args.batch_size = 64; args.max_patches = 100; args.n_train = 80; args.n_val = 20; args.quick=False; args.device="cpu"
    d = load_data(args)
    run = configured_run(args)
    g, dn = nets_from_state(Path(a.state), run); g.eval(); dn.eval()
    return d, g, dn, run


def score_state(d, g, dn):
    """Every score form of the networks on the benign validation patches and on each boxed threat bag's
    patches, with patch darkness added -> (val forms, [threat forms per bag])."""
    prec = precision_for("cpu", "bf16")
    fstd = feature_std(dn, d["val"], prec)
    val = score_forms(g, dn, d["val"], prec, fstd)
    thr = [score_forms(g, dn, t, prec, fstd) for t in d["threat"]]
    val["darkness"] = dark(d["val"])
    for t, p in zip(thr, d["threat"]):
        t["darkness"] = dark(p)
    return val, thr


def scored_state(argv=None):
    """``load_state`` then ``score_state`` -> (data, val forms, [threat forms per bag])."""
    d, g, dn, _ = load_state(argv)
    return (d, *score_state(d, g, dn))


def reporter(d, width):
    """rep(name, per-bag scores): print the pooled and darkness-matched within-image AUC."""
    inside = [c >= 0.25 for c in d["cover"]]; outside = [c == 0 for c in d["cover"]]
    def rep(name, scores):
        r = within_image(scores, d["dark"], inside, outside); print(f"{name:{width}s} pooled {r['pooled']:.3f} matched {r['matched']:.3f}", flush=True)
    return rep


def main():
    d, val, thr = scored_state()
    B = 32
    def idx(p):
        q = (p.astype(np.int64) * B) // 256
        return ((q[:, 0] * B + q[:, 1]) * B + q[:, 2]).reshape(len(p), -1)
    h = np.bincount(idx(d["train"]).ravel(), minlength=B**3).astype(np.float64)
    tab = -np.log((h + 1e-3) / h.sum())
    colour = lambda p: np.quantile(tab[idx(p)], 0.9, axis=1)
    val["colour"] = colour(d["val"])
    for t, p in zip(thr, d["threat"]):
        t["colour"] = colour(p)
    def tail(ref, s):
        r = np.sort(ref); return (len(r) - np.searchsorted(r, s, "left") + 1) / (len(r) + 1)
    rep = reporter(d, 40)
    for k in ("R_l1", "Rin_l1_max8", "darkness", "colour"):
        rep(k, [t[k] for t in thr])
    for m in ("R_l1", "Rin_l1_max8"):
        for p in ("darkness", "colour"):
            rep(f"{m} + {p}: Fisher", [-np.log(tail(val[m], t[m])) - np.log(tail(val[p], t[p])) for t in thr])
            qm, qp = np.quantile(val[m], 0.99), np.quantile(val[p], 0.99)
            rep(f"{m} + {p}: ratio sum", [t[m] / qm + t[p] / qp for t in thr])
        rep(f"{m} + darkness + colour: Fisher", [-np.log(tail(val[m], t[m])) - np.log(tail(val["darkness"], t["darkness"])) - np.log(tail(val["colour"], t["colour"])) for t in thr])


if __name__ == "__main__":
    main()
