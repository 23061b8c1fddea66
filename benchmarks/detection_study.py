"""Detection ablation on SIXray: one training variant per run, every score form measured per epoch.

Issue 12's study harness. The product's networks and ``train_step`` train on benign SIXray patches
(the same bags, scale and tiling as benchmarks/sixray.py); after every epoch each score form is
measured on the 24 hand-boxed threat bags, and a benign-only selection criterion is computed:

* within-image AUC, pooled: patches inside a threat box (coverage >= 0.25) vs patches outside every
  box, same images;
* darkness-matched AUC: over pairs (inside, outside) of one image whose mean darkness differs by at
  most 0.02, the share ranked correctly (ties 1/2). Darkness itself scores ~0.5 here;
* the benign-only criterion: AUC of held-out benign patches with a synthetic anomaly pasted in
  (a rotated rectangle cut from another benign patch, CutPaste-style) against the same patches
  untouched. It never sees threat data and is what an analyst can select epochs and variants on.

  python benchmarks/detection_study.py --variant paper --epochs 6 --out /tmp/xs_study
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ArrayPatches, environment, log, write_outputs  # noqa: E402
from sixray import BOXES, _run_config, load_bag, make_splits, patches_of  # noqa: E402
from _sixray_measures import box_masks, darkness_matched_auc  # noqa: E402

from xscreen.loss import density_scale, patch_density  # noqa: E402
from xscreen.metrics import roc_auc  # noqa: E402
from xscreen.network import reconstruct  # noqa: E402
from xscreen.train.selection import anomaly_auc, insert_object, paste_patch  # noqa: E402


# --- measures -------------------------------------------------------------------------------
def within_image(scores: list[np.ndarray], dark: list[np.ndarray], inside: list[np.ndarray],
                 outside: list[np.ndarray]) -> dict:
    y = np.concatenate([np.r_[np.ones(i.sum()), np.zeros(o.sum())] for i, o in zip(inside, outside)])
    s = np.concatenate([np.r_[sc[i], sc[o]] for sc, i, o in zip(scores, inside, outside)])
    matched, pairs = darkness_matched_auc(scores, dark, inside, outside)
    return {"pooled": roc_auc(y, s), "matched": matched, "pairs": pairs}


def _on_model_input(patches: np.ndarray, fn) -> np.ndarray:
    """Apply ``fn(x (C, S, S) in [-1, 1]) -> same`` to every uint8 patch (N, C, S, S), as ArrayPatches
    maps them (bright = air = +1), and back to uint8."""
    x = patches.astype(np.float32) / 127.5 - 1.0
    out = np.stack([fn(k, x[k]) for k in range(len(x))])
    return np.clip(np.rint((out + 1.0) * 127.5), 0, 255).astype(np.uint8)


def paste_anomalies(patches: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The product's CutPaste (train/selection.py ``paste_patch``): a rotated rectangle from another
    benign patch. Benign material only - no threat shape or threat data is used."""
    n = len(patches)
    donors = patches.astype(np.float32) / 127.5 - 1.0
    return _on_model_input(patches, lambda k, x: paste_patch(x, donors[rng.integers(n)], rng))


def insert_objects(patches: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The product's ``inserted`` criterion (train/selection.py ``insert_object``, rgb input): a
    generic bar, ellipse or polygon multiplying the transmission beneath it."""
    return _on_model_input(patches, lambda k, x: insert_object(x, "rgb", 9.0, rng))


# --- data -----------------------------------------------------------------------------------
def load_data(args) -> dict:
    cache = args.out / f"data_s{args.scale}_p{args.patch}_seed{args.seed}.npz"
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        d = {k: z[k] for k in z.files}
        d["threat"] = [d.pop(f"threat{i}") for i in range(int(d.pop("n_threat")))]
        for key in ("cover", "dark"):
            d[key] = [d.pop(f"{key}{i}") for i in range(len(d["threat"]))]
        return d
    boxes = {e["file"]: e["boxes"] for e in json.loads(BOXES.read_text())["images"]}
    sp = make_splits(args, sorted(boxes))
    run = _run_config(args)
    load = lambda names: [load_bag(n, 0, args.scale, run.patch) for n in names]  # noqa: E731
    train = patches_of(load(sp.train), args.max_patches, args.seed).patches
    val = patches_of(load(sp.val), None, args.seed).patches
    boxed = [load_bag(n, 1, args.scale, run.patch) for n in sorted(boxes)]
    d = {"train": train, "val": val, "threat": [b.patches for b in boxed],
         "cover": [box_masks(b, boxes[b.name], args.scale, args.patch) for b in boxed],
         "dark": [b.patch_dark for b in boxed]}
    flat = {k: v for k, v in d.items() if not isinstance(v, list)}
    for key in ("threat", "cover", "dark"):
        flat.update({f"{key}{i}": a for i, a in enumerate(d[key])})
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(cache, n_threat=len(boxed), **flat)
    return d


# --- scores ---------------------------------------------------------------------------------
EXTRA_GRIDS: tuple[int, ...] = ()  # --inpaint-grids: also Rin{k}_l1_max8 for these k (k² passes each)


def _window_max(m: torch.Tensor, w: int) -> torch.Tensor:
    """(N, C, S, S) residual map -> (N,) largest mean over w x w windows at stride w/2, channels averaged:
    a small object's residual is not averaged away over the whole patch."""
    return torch.nn.functional.avg_pool2d(m.mean(1, keepdim=True), w, w // 2).flatten(1).amax(1)


def _grad_mag(x: torch.Tensor) -> torch.Tensor:
    """(N, C, S, S) -> per-channel Sobel gradient magnitude, same shape."""
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype) / 8.0
    c = x.shape[1]
    kx, ky = k.expand(c, 1, 3, 3), k.t().expand(c, 1, 3, 3)
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = torch.nn.functional.conv2d(xp, kx, groups=c)
    gy = torch.nn.functional.conv2d(xp, ky, groups=c)
    return (gx * gx + gy * gy).sqrt()


def _dssim(x: torch.Tensor, y: torch.Tensor, win: int = 7) -> torch.Tensor:
    """(N, C, S, S) pair in [-1, 1] -> (N, 1, S, S) structural dissimilarity (1 - SSIM) / 2, channel mean,
    box window ``win`` (Wang et al. 2004 constants for a data range of 2)."""
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    pool = lambda t: torch.nn.functional.avg_pool2d(t, win, 1, win // 2, count_include_pad=False)  # noqa: E731
    x, y = x + 1.0, y + 1.0  # [0, 2]: SSIM's luminance term assumes non-negative intensities
    mx, my = pool(x), pool(y)
    vx, vy, cxy = pool(x * x) - mx * mx, pool(y * y) - my * my, pool(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return ((1.0 - ssim) / 2.0).mean(1, keepdim=True)


@torch.no_grad()
def score_forms(g, d, patches: np.ndarray, prec, feat_std: torch.Tensor | None) -> dict[str, np.ndarray]:
    """Every score form for uint8 patches (N, C, S, S); eval-mode networks."""
    out: dict[str, list] = {}
    ds = ArrayPatches(patches)
    for i in range(0, len(ds), 256):
        x = torch.stack(ds.__getitems__(list(range(i, min(i + 256, len(ds))))))
        x = x.contiguous(memory_format=torch.channels_last)
        with prec.autocast():
            xh = g(x)
            _, fx = d(x)
            _, fxh = d(xh)
        xf, xhf = x.float(), xh.float()
        diff = xf - xhf
        fd = (fx.float() - fxh.float()).flatten(1)
        parts = {"R_l1": diff.abs().flatten(1).mean(1), "R_l2": diff.pow(2).flatten(1).mean(1),
                 "L": fd.pow(2).mean(1),
                 "R_l1_max8": _window_max(diff.abs(), 8)}
        if feat_std is not None:
            parts["Lz"] = (fd / feat_std).pow(2).mean(1)
        with prec.autocast():
            xin = reconstruct(g, x, 2)
        xinf = xin.float()
        din = (xf - xinf).abs()
        parts["Rin_l1"] = din.flatten(1).mean(1)
        gx = _grad_mag(xf)
        parts["Rgrad"] = (gx - _grad_mag(xhf)).abs().flatten(1).mean(1)
        parts["Rin_grad_max8"] = _window_max((gx - _grad_mag(xinf)).abs(), 8)
        parts["DSSIM"], parts["Rin_dssim_max8"] = _dssim(xf, xhf).flatten(1).mean(1), _window_max(_dssim(xf, xinf), 8)
        parts["Rin_l1_max8"] = _window_max(din, 8)
        for k in EXTRA_GRIDS:  # finer inpainting grids: each hidden block has more context around it
            with prec.autocast():
                dk = (xf - reconstruct(g, x, k).float()).abs()
            parts[f"Rin{k}_l1_max8"] = _window_max(dk, 8)
        parts["D"] = patch_density(x, "rgb")  # mean darkness, the density prior (ArrayPatches: bright = +1)
        if x.shape[-1] >= 64:  # the same window share of a 64-px patch as 8 of 32
            parts["Rin_l1_max16"] = _window_max(din, 16)
        for k, v in parts.items():
            out.setdefault(k, []).append(v.double().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


@torch.no_grad()
def feature_std(d, patches: np.ndarray, prec) -> torch.Tensor:
    ds = ArrayPatches(patches)
    fs = []
    for i in range(0, len(ds), 256):
        x = torch.stack(ds.__getitems__(list(range(i, min(i + 256, len(ds))))))
        with prec.autocast():
            fs.append(d(x.contiguous(memory_format=torch.channels_last))[1].float().flatten(1))
    return torch.cat(fs).std(0).clamp_min(1e-6)


def zscore_mix(forms: dict, ref: dict, a: str, b: str, lam: float) -> np.ndarray:
    """lam·z(a) + (1-lam)·z(b), each standardised by its benign reference mean/std."""
    z = lambda k: (forms[k] - ref[k].mean()) / (ref[k].std() + 1e-12)  # noqa: E731
    return lam * z(a) + (1 - lam) * z(b)


def add_mixes(forms: dict, ref: dict) -> dict:
    forms = dict(forms)
    forms["paper 0.9R+0.1L"] = 0.9 * forms["R_l1"] + 0.1 * forms["L"]
    for k in ("R_l1", "Rin_l1_max8", "Rin_grad_max8", "Rin_dssim_max8", *(f"Rin{g}_l1_max8" for g in EXTRA_GRIDS)):  # the product's density prior at weight 1 (TrainConfig.density)
        forms[f"{k} + density"] = forms[k] + density_scale(ref[k], ref["D"]) * forms["D"]
    lat = "Lz" if "Lz" in forms else "L"
    for lam in (0.5, 0.8):
        forms[f"z {lam}R+{1 - lam:.1f}{lat}"] = zscore_mix(forms, ref, "R_l1", lat, lam)
    return forms


def evaluate_epoch(g, d, data: dict, prec, rng_seed: int) -> dict:
    g.eval(), d.eval()
    fstd = feature_std(d, data["val"], prec)
    val = score_forms(g, d, data["val"], prec, fstd)
    pasted_patches = paste_anomalies(data["val"], np.random.default_rng(rng_seed))
    pasted = score_forms(g, d, pasted_patches, prec, fstd)
    thr = [score_forms(g, d, p, prec, fstd) for p in data["threat"]]
    inserted = score_forms(g, d, insert_objects(data["val"], np.random.default_rng(rng_seed)), prec, fstd)
    val_m, pasted_m, inserted_m = add_mixes(val, val), add_mixes(pasted, val), add_mixes(inserted, val)
    thr_m = [add_mixes(t, val) for t in thr]
    inside = [c >= 0.25 for c in data["cover"]]
    outside = [c == 0 for c in data["cover"]]
    dark_val = 1.0 - data["val"].reshape(len(data["val"]), -1).mean(1) / 255.0
    dark_pasted = 1.0 - pasted_patches.reshape(len(pasted_patches), -1).mean(1) / 255.0
    sub = np.random.default_rng(0).permutation(len(dark_val))[:1500]
    res = {}
    for k in val_m:
        w = within_image([t[k] for t in thr_m], data["dark"], inside, outside)
        # the same criterion over (pasted, clean) pairs of nearly equal darkness, as the threat measure
        pm, _ = darkness_matched_auc([np.r_[pasted_m[k][sub], val_m[k][sub]]], [np.r_[dark_pasted[sub], dark_val[sub]]],
                                     [np.r_[np.ones(len(sub), bool), np.zeros(len(sub), bool)]],
                                     [np.r_[np.zeros(len(sub), bool), np.ones(len(sub), bool)]])
        res[k] = {**w, "benign_pasted_auc": anomaly_auc(val_m[k], pasted_m[k]), "benign_pasted_matched": pm,
                  "benign_inserted_auc": anomaly_auc(val_m[k], inserted_m[k])}
    g.train(), d.train()
    return res


def trivial(data: dict, seed: int) -> dict:
    """Darkness, and PCA (k = 64) fitted on the same training patches: the baselines to beat."""
    from _baselines import PcaBaseline

    inside = [c >= 0.25 for c in data["cover"]]
    outside = [c == 0 for c in data["cover"]]
    pca = PcaBaseline(k=64, seed=seed).fit(ArrayPatches(data["train"]))
    val = pca.score(ArrayPatches(data["val"]))
    pasted = pca.score(ArrayPatches(paste_anomalies(data["val"], np.random.default_rng(seed))))
    res = {"darkness": within_image(data["dark"], data["dark"], inside, outside),
           "PCA (k=64)": within_image([pca.score(ArrayPatches(t)) for t in data["threat"]], data["dark"], inside,
                                      outside)}
    res["PCA (k=64)"]["benign_pasted_auc"] = anomaly_auc(val, pasted)
    return res


def configured_run(args):
    """sixray.py's RunConfig with ``--set KEY=VALUE`` overrides (NetConfig or TrainConfig fields)."""
    run = _run_config(args)
    net_kw, train_kw = {}, {"precision": args.precision}
    for kv in args.set:
        k, v = kv.split("=", 1)
        val = json.loads(v) if v[:1] in "0123456789-[{tfn" else v
        if k in {f.name for f in dataclasses.fields(run.net)}:
            net_kw[k] = val
        else:
            train_kw[k] = val
    return dataclasses.replace(run, net=dataclasses.replace(run.net, **net_kw),
                               train=dataclasses.replace(run.train, **train_kw, epochs=args.epochs, log_every=10**6))


# --- training -------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", default="paper", help="label for the run")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="NetConfig / TrainConfig overrides, e.g. d_spectral_norm=true input_mask=0.5")
    p.add_argument("--scale", type=float, default=0.25)
    p.add_argument("--patch", type=int, default=32)
    p.add_argument("--ngf", type=int, default=32)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", default="auto")
    p.add_argument("--max-patches", type=int, default=100)
    p.add_argument("--n-train", type=int, default=80)
    p.add_argument("--n-val", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("/tmp/xs_study"))
    p.add_argument("--evaluate-state", type=Path, default=None, help="only evaluate this training-state file")
    p.add_argument("--inpaint-grids", type=int, nargs="*", default=[], help="also score inpainting on these k x k grids")
    args = p.parse_args(argv)
    global EXTRA_GRIDS
    EXTRA_GRIDS = tuple(args.inpaint_grids)
    args.quick, args.device = False, "cpu"
    from xscreen.train import fit
    from xscreen.train.loop import EpochReport

    data = load_data(args)
    if args.evaluate_state:
        from _common import nets_from_state

        run = configured_run(args)
        from xscreen.runtime import precision_for

        res = evaluate_epoch(*nets_from_state(args.evaluate_state, run), data, precision_for("cpu", args.precision),
                             args.seed)
        write_outputs(args.out, f"state_{args.variant}", {"state": str(args.evaluate_state), "scores": res}, "")
        for k, r in res.items():
            print(f"{k:18s} pooled {r['pooled']:.3f} matched {r['matched']:.3f} pasted {r['benign_pasted_auc']:.3f} "
                  f"pasted-matched {r['benign_pasted_matched']:.3f} inserted {r['benign_inserted_auc']:.3f}")
        return 0
    if args.variant == "trivial":
        res = trivial(data, args.seed)
        log(json.dumps(res))
        write_outputs(args.out, "trivial", {"args": {k: str(v) for k, v in vars(args).items()}, "trivial": res},
                      json.dumps(res))
        return 0
    log(f"{args.variant}: {len(data['train'])} train, {len(data['val'])} val patches, {len(data['threat'])} boxed")
    run = configured_run(args)
    history, t0 = [], time.time()
    out = args.out / args.variant
    from xscreen.runtime import precision_for

    prec = None
    for rep in fit(run, ArrayPatches(data["train"]), ArrayPatches(data["val"][:512]), out=out / "model.xsm",
                   workdir=out / "work"):
        if isinstance(rep, EpochReport):
            from _common import nets_from_state

            g, d = nets_from_state(rep.checkpoint, run)
            prec = prec or precision_for("cpu", args.precision)
            res = evaluate_epoch(g, d, data, prec, args.seed + rep.epoch)
            history.append({"epoch": rep.epoch, "seconds": rep.seconds, "patches_per_s": rep.patches_per_s,
                            "g_adv": rep.g_adv, "g_con": rep.g_con, "g_lat": rep.g_lat, "d_loss": rep.d_loss,
                            "d_reinits": rep.d_reinits, "scores": res})
            partial = {"variant": args.variant, "set": args.set, "history": history, "seconds": time.time() - t0}
            write_outputs(args.out, f"study_{args.variant}", partial, "")  # a crash later keeps the epochs
            best = max(res, key=lambda k: res[k]["matched"])
            log(f"{args.variant} ep {rep.epoch}: d {rep.d_loss:.3f} adv {rep.g_adv:.3f} lat {rep.g_lat:.4f} "
                f"{rep.patches_per_s:.0f} p/s | " + " | ".join(
                    f"{k}: {r['pooled']:.3f}/{r['matched']:.3f}/{r['benign_pasted_auc']:.3f}"
                    for k, r in res.items()) + f" | best matched {best}")
    result = {"variant": args.variant, "set": args.set, "args": {k: str(v) for k, v in vars(args).items()},
              "environment": environment(), "history": history,
              "seconds": time.time() - t0}
    write_outputs(args.out, f"study_{args.variant}", result, history_markdown(history))
    return 0


def history_markdown(history: list[dict]) -> str:
    """Per-epoch table: D loss and every score form's pooled / darkness-matched AUC."""
    if not history:
        return ""
    forms = list(history[0]["scores"])
    lines = ["| epoch | D loss | " + " | ".join(forms) + " |", "|---" * (len(forms) + 2) + "|"]
    for h in history:
        cells = [f"{h['scores'][k]['pooled']:.3f} / {h['scores'][k]['matched']:.3f}" for k in forms]
        lines.append(f"| {h['epoch']} | {h['d_loss']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
