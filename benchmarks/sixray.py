"""Real baggage X-ray: an rgb model trained on benign SIXray bags, scored on held-out bags.

Data: ../shared/realdata/sixray_subset/ (140 benign, 100 threat vendor pseudo-colour JPEGs, academic
use only, read in place). Benign bags are split *by bag* into train / validation / test; every
threat bag is test data. Bags are down-scaled (--scale) and tiled with the product's tiler
(dataset.extract_patches: air patches skipped). Skip-GANomaly is trained by xscreen.train.fit and
scored through scoring.Scorer from the written model file; GANomaly and PCA see the same patches.

The data has shortcuts, so the tables put trivial scores beside the detectors:
  * benign images are much larger crops: image area alone separates the classes, and a max over
    more patches is larger by chance -> size-independent scan scores: the expected max over a
    fixed number of random patches (max@k), a quantile and the mean;
  * threat bags are lighter / less saturated overall -> mean brightness and saturation as scores;
  * the within-image measure: patches inside hand-drawn threat boxes (benchmarks/sixray_boxes.json)
    against patches outside them in the same images - no global statistic can fake that, though
    local darkness or saturation of a patch might, so those are in that table too.

  python benchmarks/sixray.py --epochs 3 --ngf 16 --scale 0.25 --patch 32
  python benchmarks/sixray.py --quick
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (REALDATA, ArrayPatches, environment, log, md_table, score_model_file,  # noqa: E402
                     train_skip, write_outputs)
from _sixray_measures import Bag, aggregate, box_masks, box_rows, scan_rows, trivial_rows  # noqa: E402,F401

DATA = REALDATA / "sixray_subset"
BOXES = Path(__file__).resolve().parent / "sixray_boxes.json"


def load_bag(name: str, label: int, scale: float, patch) -> Bag:
    from xscreen.dataset import extract_patches
    from xscreen.scan import Scan, load_scan

    scan = load_scan(DATA / name)
    rgb = scan.channels.transpose(1, 2, 0)
    size = (max(patch.size, round(scan.width * scale)), max(patch.size, round(scan.height * scale)))
    small = np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
    scaled = Scan(scan.scan_id, "rgb", np.ascontiguousarray(small.transpose(2, 0, 1)), scan.i0)
    patches, origins, _ = extract_patches(scaled, patch, None, np.random.default_rng(0))
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV).astype(np.float32) / 255.0
    bag = small.mean(axis=2) < patch.air_threshold * scan.i0  # non-air pixels
    s = patch.size
    sat = np.array([hsv[y:y + s, x:x + s, 1].mean() for y, x in origins])
    dark = 1.0 - patches.reshape(len(patches), -1).mean(1) / 255.0 if len(patches) else np.zeros(0)
    return Bag(name, label, scan.width, scan.height, patches, origins, dark, sat,
               float(hsv[..., 2][bag].mean()) if bag.any() else 1.0,
               float(hsv[..., 1][bag].mean()) if bag.any() else 0.0)


@dataclass
class Splits:
    train: list[str]
    val: list[str]
    test_benign: list[str]
    test_threat: list[str]


def make_splits(args: argparse.Namespace, boxed: list[str]) -> Splits:
    rows = [line.split(",") for line in (DATA / "labels.csv").read_text().splitlines()[1:] if line]
    neg = sorted(r[0] for r in rows if r[1] == "0")
    pos = sorted(r[0] for r in rows if r[1] == "1")
    perm = [neg[i] for i in np.random.default_rng(args.seed).permutation(len(neg))]
    a, b = args.n_train, args.n_train + args.n_val
    if b >= len(perm):
        raise SystemExit(f"error: {args.n_train} train + {args.n_val} validation bags leave no benign test bag")
    test_b, test_t = perm[b:], pos
    if args.quick:  # a few bags, and threat bags that carry hand-drawn boxes
        test_b, test_t = perm[b:b + 3], boxed[:3]
    return Splits(perm[:a], perm[a:b], test_b, test_t)


def patches_of(bags: list[Bag], cap: int | None, seed: int) -> ArrayPatches:
    """All non-air patches of ``bags`` (at most ``cap`` per bag, drawn at random) with their bag index."""
    rng = np.random.default_rng(seed)
    parts, index = [], []
    for i, b in enumerate(bags):
        p = b.patches
        if cap is not None and len(p) > cap:
            p = p[np.sort(rng.choice(len(p), cap, replace=False))]
        parts.append(p)
        index.append(np.full(len(p), i))
    return ArrayPatches(np.concatenate(parts), np.concatenate(index))


def per_bag(scores: np.ndarray, bags: list[Bag]) -> list[np.ndarray]:
    edges = np.cumsum([0] + [len(b.patches) for b in bags])
    return [scores[edges[i]:edges[i + 1]] for i in range(len(bags))]


def pipeline_check(model: Path, names: list[str], args: argparse.Namespace) -> list[dict]:
    """The same bags through the product's path (pipeline.screen, Scorer on the model file): its max
    non-air patch score against the harness's (dataset tiler + Scorer). The tilers differ only at the
    right/bottom edge (pipeline pads with air, the store pulls the last patch back), so the maxima
    agree unless the most anomalous patch sits on that edge."""
    from xscreen.config import ScreenConfig
    from xscreen.pipeline import screen
    from xscreen.scan import Scan, load_scan
    from xscreen.scoring import Scorer

    scorer = Scorer(model, device=args.device)
    run = _run_config(args)
    rows = []
    for name in names:
        bag = load_bag(name, int(name.startswith("positive")), args.scale, run.patch)
        raw = load_scan(DATA / name)
        size = (max(args.patch, round(raw.width * args.scale)), max(args.patch, round(raw.height * args.scale)))
        small = cv2.resize(raw.channels.transpose(1, 2, 0), size, interpolation=cv2.INTER_AREA)
        scan = Scan(raw.scan_id, "rgb", np.ascontiguousarray(small.transpose(2, 0, 1)), raw.i0)
        sc = screen(scan, scorer, ScreenConfig(stride=args.patch // 2, air_threshold=run.patch.air_threshold))
        x = torch.from_numpy(bag.patches).float() / 127.5 - 1.0  # as ArrayPatches
        harness = scorer.score(x, keep_reconstructions=False).scores.numpy()
        st = args.patch // 2
        on_grid = [i for i, (y, xx) in enumerate(bag.origins) if y % st == 0 and xx % st == 0
                   and not sc.air_grid[y // st, xx // st]]
        diff = [abs(float(sc.score_grid[bag.origins[i][0] // st, bag.origins[i][1] // st]) - harness[i])
                for i in on_grid]
        rows.append({"bag": name, "pipeline_max": float(sc.score_grid[~sc.air_grid].max()),
                     "harness_max": float(harness.max()), "pipeline_patches": int((~sc.air_grid).sum()),
                     "harness_patches": len(bag.patches), "common_patches": len(on_grid),
                     "common_max_abs_diff": float(max(diff)) if diff else 0.0})
        log(f"pipeline check {rows[-1]}")
    return rows


def _run_config(args: argparse.Namespace):
    from xscreen.config import NetConfig, PatchConfig, Preprocess, RunConfig, TrainConfig

    return RunConfig(name="sixray-skipganomaly", preprocess=Preprocess(kind="rgb"),
                     patch=PatchConfig(size=args.patch, stride=args.patch // 2),
                     net=NetConfig(size=args.patch, channels=3, ngf=args.ngf, ndf=args.ngf, nz=100),
                     train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                       device=args.device, log_every=10_000, val_fraction=0.0))


def score_all(args, run, train: ArrayPatches, groups: dict[str, list[Bag]], work: Path) -> dict[str, dict]:
    """method -> {"val"|"benign"|"threat": per-bag patch scores}."""
    data = {g: patches_of(b, None, args.seed) for g, b in groups.items()}
    out: dict[str, dict] = {}
    split = lambda s, g: per_bag(s, groups[g])  # noqa: E731
    if "skip" in args.methods:
        res = train_skip(run, train, data["val"], work / "skip", val_scan_index=data["val"].scan_index)
        out["Skip-GANomaly"] = {g: split(score_model_file(res.model_path, d, args.device), g) for g, d in data.items()}
        out["Skip-GANomaly"]["_meta"] = {"selected_epoch": res.best_epoch, "history": res.history,
                                         "model": str(res.model_path)}
    if "ganomaly" in args.methods:
        from _baselines import ganomaly_scores, train_ganomaly

        gan = train_ganomaly(run.net, train, data["val"], epochs=args.epochs, batch_size=args.batch_size,
                             seed=args.seed, log=log)
        out["GANomaly"] = {g: split(ganomaly_scores(gan.generator, d), g) for g, d in data.items()}
        out["GANomaly"]["_meta"] = {"selected_epoch": gan.best_epoch, "history": gan.history}
    if "pca" in args.methods:
        from _baselines import PcaBaseline

        pca = PcaBaseline(k=args.pca_k, seed=args.seed).fit(train)
        out[f"PCA (k={pca.k})"] = {g: split(pca.score(d), g) for g, d in data.items()}
        out[f"PCA (k={pca.k})"]["_meta"] = {"explained_variance": pca.explained}
    return out


def markdown(result: dict) -> str:
    a = result["args"]
    head = (f"SIXray subset, {result['date']}, seed {a['seed']}, scale {a['scale']}, patch {a['patch']} "
            f"(stride {a['patch'] // 2}), ngf=ndf={a['ngf']}, epochs {a['epochs']}, train/val/test benign bags "
            f"{result['n_bags']['train']}/{result['n_bags']['val']}/{result['n_bags']['test_benign']}, threat bags "
            f"{result['n_bags']['test_threat']}, {result['n_train_patches']} training patches, quick={a['quick']}, "
            f"{result['seconds']:.0f} s\n\n")
    t1 = md_table(["method", "scan score", "size-independent", "AUC", "AP", "detection @ 5 % FAR (val-calibrated)",
                   "benign test FAR"],
                  [[r["method"], r["score"], "yes" if r["size_independent"] else "NO", r["auc"], r["ap"],
                    r["detection_at_5pct_far"], r["test_far"]] for r in result["scan_level"]])
    t2 = md_table(["patch score", "AUC inside vs outside boxes (pooled)", "darkness-matched AUC (pairs)",
                   "AP (pooled)", "mean per-image AUC", "images", "patches inside", "patches outside"],
                  [[r["method"], r["pooled_auc"], f"{r['darkness_matched_auc']:.3f} ({r['matched_pairs']})",
                    r["pooled_ap"], r["mean_image_auc"], r["n_images"], r["n_inside"], r["n_outside"]]
                   for r in result["within_image"]])
    return head + "Scan level (benign test bags vs threat bags):\n\n" + t1 + \
        "\nWithin image (hand-drawn boxes):\n\n" + t2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale", type=float, default=0.25, help="down-scaling of the bags before tiling")
    p.add_argument("--patch", type=int, default=32, choices=[32, 64, 128])
    p.add_argument("--ngf", type=int, default=16)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-train", type=int, default=80, help="benign bags for training")
    p.add_argument("--n-val", type=int, default=20, help="benign bags for model selection and calibration")
    p.add_argument("--max-patches", type=int, default=100, help="training patches per bag, drawn at random")
    p.add_argument("--fixed-k", type=int, default=32, help="k of the size-independent max@k scan score")
    p.add_argument("--inside", type=float, default=0.25, help="box coverage for a patch to count as inside")
    p.add_argument("--methods", nargs="+", default=["skip", "ganomaly", "pca"], choices=["skip", "ganomaly", "pca"])
    p.add_argument("--pca-k", type=int, default=64)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("/tmp/xscreen_bench/sixray"))
    p.add_argument("--check-pipeline", type=Path, default=None, metavar="MODEL",
                   help="only compare pipeline.screen with the harness on a few bags, for a trained model file")
    args = p.parse_args(argv)
    if args.quick:
        args.n_train, args.n_val, args.epochs, args.ngf, args.max_patches, args.pca_k = 4, 2, 1, 8, 32, 16
        args.scale, args.patch, args.fixed_k = 0.15, 32, 8  # a smoke test: tiny bags, few patches
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (DATA / "labels.csv").is_file():
        raise SystemExit(f"error: {DATA}: SIXray subset not found")
    if args.check_pipeline is not None:
        names = ["positive/P00001.jpg", "positive/P00050.jpg", "negative/N0000001.jpg", "negative/N0000002.jpg"]
        rows = pipeline_check(args.check_pipeline, names, args)
        write_outputs(args.out, "sixray_pipeline_check", {"date": environment()["date"], "rows": rows},
                      md_table(list(rows[0]), [list(r.values()) for r in rows]))
        return 0
    t0 = time.time()
    boxes = {e["file"]: e["boxes"] for e in json.loads(BOXES.read_text())["images"]}
    sp = make_splits(args, sorted(boxes))
    run = _run_config(args)
    load = lambda names, y: [load_bag(n, y, args.scale, run.patch) for n in names]  # noqa: E731
    groups = {"val": load(sp.val, 0), "benign": load(sp.test_benign, 0), "threat": load(sp.test_threat, 1)}
    train = patches_of(load(sp.train, 0), args.max_patches, args.seed)
    log(f"bags train/val/test-benign/threat {len(sp.train)}/{len(sp.val)}/{len(sp.test_benign)}/"
        f"{len(sp.test_threat)}; {len(train)} training patches")
    scores = score_all(args, run, train, groups, args.out / "work")
    rows = [r for m, s in scores.items() for r in scan_rows(m, s["val"], s["benign"], s["threat"], args.fixed_k,
                                                            args.seed)]
    rows += trivial_rows(groups["val"], groups["benign"], groups["threat"])
    within = box_rows({m: s["threat"] for m, s in scores.items()}, groups["threat"], boxes, args.scale, args.patch,
                      args.inside)
    result = {"benchmark": "sixray", "date": environment()["date"], "command": " ".join(sys.argv),
              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "environment": environment(), "splits": sp.__dict__, "n_train_patches": len(train),
              "n_bags": {"train": len(sp.train), "val": len(sp.val), "test_benign": len(sp.test_benign),
                         "test_threat": len(sp.test_threat)},
              "methods": {m: s["_meta"] for m, s in scores.items()}, "scan_level": rows, "within_image": within,
              "seconds": time.time() - t0}
    stem = "sixray_quick" if args.quick else "sixray"
    md = markdown(result)
    write_outputs(args.out, stem, result, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
