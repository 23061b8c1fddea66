"""``xscreen train BENIGN... -o model.xsm``: patch store -> fit -> calibrated model file.

Settings come from ``--config FILE`` (a RunConfig JSON, as the training wizard writes it), then
from explicit flags, which win. The score options (--score-inpaint, --recon-window, --density) that
neither sets take the input kind's default for new models (config.SCORE_DEFAULTS). Works under ``torchrun --nproc_per_node N -m xscreen train ...``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from pathlib import Path

from xscreen.config import SCORE_DEFAULTS, SCORE_FIELDS, RunConfig, score_form_text, with_score_defaults

# Flags that set a TrainConfig field of the same name; None (not given) keeps --config's value.
_TRAIN_FLAGS = ("epochs", "batch_size", "device", "precision", "seed", "patience", "lr", "num_workers",
                "lam", "w_adv", "w_con", "w_lat", "recon", "val_fraction", "patch_far", "scan_far",
                "input_mask", "selection", "score_inpaint", "recon_window", "density", "d_batch", "d_every")
_DEFAULT = RunConfig()


def _train_flag(p: argparse.ArgumentParser, field: str, text: str, **kw) -> None:
    """A TrainConfig flag whose help shows the built-in default, read from the dataclass so that
    --help cannot drift from what runs."""
    default = getattr(_DEFAULT.train, field)
    if field in SCORE_FIELDS:  # a new model's score form follows the input kind (issue 29)
        by_kind = ", ".join(f"{k} {SCORE_DEFAULTS[k][field]:g}" for k in SCORE_DEFAULTS)
        shown = f"default by input kind: {by_kind}"
    else:
        shown = f"default {default:g}" if isinstance(default, float) else f"default {default}"
    p.add_argument("--" + field.replace("_", "-"), default=None, help=f"{text} ({shown})", **kw)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on benign scans",
                       description="Train a Skip-GANomaly model on benign (threat-free) scans, select the "
                       "best epoch on held-out benign scans, calibrate its threshold and save the model file. "
                       "Unreadable or implausible files (and files of another scan kind than most) are "
                       "listed and skipped. The defaults shown are the built-in ones; --config replaces "
                       "them and explicit flags override both.")
    p.add_argument("benign", nargs="*", metavar="BENIGN", help="benign scan files or folders")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help=f"model file to write (default {_DEFAULT.output})")
    p.add_argument("--val", action="append", default=None, metavar="DIR",
                   help="held-out benign scans for validation/calibration (default: a share of BENIGN, "
                   "see --val-fraction)")
    p.add_argument("--config", type=Path, default=None,
                   help="RunConfig JSON (the wizard writes one; default none)")
    p.add_argument("--save-config", type=Path, default=None,
                   help="write the effective settings, with the scans actually used, here (default none)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="patch stores + training state (default OUTPUT.work)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its work dir (default off)")
    p.add_argument("--name", default=None,
                   help="model name shown in the model card (default: the output file's stem)")
    _add_model_flags(p)
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic kernels for an exact resume (default off)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (default off)")
    p.set_defaults(func=run)


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    d = _DEFAULT
    p.add_argument("--size", type=int, choices=(32, 64, 128), default=None,
                   help=f"patch size (default {d.patch.size})")
    p.add_argument("--stride", type=int, default=None, help=f"tiling stride (default size / 2 = {d.patch.stride})")
    p.add_argument("--ngf", type=int, default=None,
                   help=f"network width, generator and discriminator (default {d.net.ngf}, as the paper)")
    _train_flag(p, "epochs", "training epochs", type=int)
    _train_flag(p, "batch_size", "patches per step", type=int)
    _train_flag(p, "lr", "Adam learning rate", type=float)
    _train_flag(p, "patience", "early stopping patience in epochs, 0 = off", type=int)
    _train_flag(p, "w_adv", "generator loss weight: adversarial", type=float)
    _train_flag(p, "w_con", "generator loss weight: contextual |x - x^| (the paper's text says 40)", type=float)
    _train_flag(p, "w_lat", "generator loss weight: latent", type=float)
    _train_flag(p, "lam", "score A = lam * R + (1 - lam) * L", type=float)
    _train_flag(p, "recon", "R of the score: l1 (paper) or l2 (reference code)", choices=("l1", "l2"))
    _train_flag(p, "val_fraction", "share of BENIGN scans held out when --val is not given", type=float)
    _train_flag(p, "patch_far", "target patch false-alarm rate of the calibrated threshold", type=float)
    _train_flag(p, "scan_far", "target scan false-alarm rate of the calibrated threshold", type=float)
    _train_flag(p, "input_mask", "share of training patches with a block hidden from the generator", type=float)
    _train_flag(p, "selection", "epoch selection on benign data: mean_score (paper), pasted (CutPaste AUC) or "
                "inserted (AUC of superimposed generic objects)", choices=("mean_score", "pasted", "inserted"))
    _train_flag(p, "score_inpaint", "score with test-time inpainting on a k x k grid, 0 = off (k² generator passes)",
                type=int)
    _train_flag(p, "recon_window", "R = largest mean residual over w x w windows, 0 = whole patch", type=int)
    _train_flag(p, "density", "weight of the density prior added to the score (0 = off; 1 = as much as the "
                "score at the benign 99th percentile, scale set on the validation patches)", type=float)
    _train_flag(p, "d_batch", "discriminator batches: separate (paper: D(x), D(x^) in two passes) or joint "
                "(one pass over both, shared BatchNorm statistics)", choices=("separate", "joint"))
    _train_flag(p, "d_every", "step the discriminator on every N-th training step only (1 = every step, the "
                "paper); the other steps skip its backward pass", type=int)
    p.add_argument("--outer-skips-off", type=int, choices=(0, 1, 2, 3), default=None,
                   help=f"UNet skips removed below the outermost level (default {d.net.outer_skips_off})")
    p.add_argument("--generator", choices=("unet", "unetpp"), default=None,
                   help="generator architecture: the paper's UNet or UNet++ nested skips (about 3.5x the "
                   f"training and scoring time at 64 px; default {d.net.generator})")
    p.add_argument("--d-spectral-norm", action=argparse.BooleanOptionalAction, default=None,
                   help=f"spectral normalisation in the discriminator (default {d.net.d_spectral_norm})")
    p.add_argument("--d-attention", action=argparse.BooleanOptionalAction, default=None,
                   help="a self-attention layer in the discriminator (SAGAN; with --d-spectral-norm and "
                   f"--generator unetpp the issue's second anchor; default {d.net.d_attention})")
    p.add_argument("--material-channel", action=argparse.BooleanOptionalAction, default=None,
                   help="a third input channel for dual-energy scans: each pixel's material (organic -> "
                   f"iron) from the ratio of its two attenuations (default {d.preprocess.material})")
    _train_flag(p, "device", "auto | cpu | cuda | cuda:N")
    _train_flag(p, "precision", "compute precision", choices=("auto", "fp32", "bf16", "fp16"))
    _train_flag(p, "seed", "random seed", type=int)
    _train_flag(p, "num_workers", "data-loading worker processes", type=int)


def effective_config(args: argparse.Namespace) -> RunConfig:
    """RunConfig from --config (or defaults), overridden by every flag given explicitly."""
    run = RunConfig.load(args.config) if args.config else RunConfig()
    t = {k: getattr(args, k) for k in _TRAIN_FLAGS if getattr(args, k) is not None}
    if args.deterministic:
        t["deterministic"] = True
    patch = {k: v for k, v in (("size", args.size), ("stride", args.stride)) if v is not None}
    if "size" in patch and "stride" not in patch:
        patch["stride"] = max(1, patch["size"] // 2)
    net = {"ngf": args.ngf, "ndf": args.ngf} if args.ngf else {}
    net.update({k: getattr(args, k) for k in ("outer_skips_off", "d_spectral_norm", "d_attention", "generator") if getattr(args, k) is not None})
    top = {"benign": tuple(args.benign) or run.benign, "val": tuple(args.val or ()) or run.val}
    if args.output is not None:
        top["output"] = str(args.output)
    if args.name is not None:
        top["name"] = args.name
    if args.material_channel is not None:
        top["preprocess"] = dataclasses.replace(run.preprocess, material=args.material_channel)
    return dataclasses.replace(run, train=dataclasses.replace(run.train, **t),
                               patch=dataclasses.replace(run.patch, **patch),
                               net=dataclasses.replace(run.net, **net), **top)


def explicit_score_fields(args: argparse.Namespace) -> set[str]:
    """The score options the user chose - by flag, or in the --config file's ``train`` section (the
    wizard writes every field) - which the input kind's defaults must not replace."""
    given = {k for k in SCORE_FIELDS if getattr(args, k, None) is not None}
    if getattr(args, "config", None):
        try:
            raw = json.loads(Path(args.config).read_text())
        except (OSError, ValueError):
            raw = {}  # RunConfig.load has already reported an unreadable file
        train = raw.get("train", {}) if isinstance(raw, dict) else {}
        given |= {k for k in SCORE_FIELDS if isinstance(train, dict) and k in train}
    return given


def check_settings(cfg: RunConfig) -> None:
    """The wizard's own checks of the model page (epochs, batch, λ, loss weights, widths), plus
    the split and false-alarm ranges; raises ValueError naming every fault."""
    from xscreen.wizard import WizardState, page_errors

    t = cfg.train
    errors = page_errors(WizardState(net=cfg.net, train=t), "model")
    if not 0.0 < t.val_fraction < 1.0:
        errors.append("--val-fraction must be between 0 and 1")
    if not (0.0 < t.patch_far < 0.5 and 0.0 < t.scan_far < 0.5):
        errors.append("false-alarm rates must be between 0 and 0.5")
    if errors:
        raise ValueError("; ".join(errors))


def run(args: argparse.Namespace) -> int:
    from xscreen.checkpoint import ModelError
    from xscreen.cli.train_inputs import check_inputs, print_summary
    from xscreen.scan import ScanError

    try:
        cfg = effective_config(args)
        if not cfg.benign:
            raise ValueError("no benign scans given (BENIGN... or 'benign' in --config)")
        check_settings(cfg)
        lead = int(os.environ.get("RANK", "0")) == 0  # under torchrun every rank checks, one reports
        inputs = check_inputs(cfg.benign, cfg.val, quiet=args.quiet or not lead)
        cfg = dataclasses.replace(cfg, train=with_score_defaults(cfg.train, inputs.kind, explicit_score_fields(args)))
        check_settings(cfg)
        if lead:
            print_summary(inputs)
            if not args.quiet:
                print(f"score form: {score_form_text(cfg.train)}", file=sys.stderr)
        # the scans actually used, not the folders: --save-config then reruns on exactly these
        cfg = dataclasses.replace(cfg, benign=tuple(map(str, inputs.benign)), val=tuple(map(str, inputs.val)))
        if args.save_config:
            cfg.save(args.save_config)
        return _train(cfg, args)
    except (ScanError, ModelError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _train(cfg: RunConfig, args: argparse.Namespace) -> int:
    from xscreen.train.run import distributed_context, train_model

    out = Path(cfg.output)
    workdir = args.workdir or out.with_name(out.name + ".work")
    command = "xscreen " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with distributed_context(cfg.train.device) as device:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device=device))
        import torch.distributed as dist

        quiet = args.quiet or (dist.is_initialized() and dist.get_rank() != 0)
        result = _consume(train_model(cfg, workdir, resume=args.resume, command=command), quiet)
    if not quiet and result is not None:
        cal = result.calibration
        print(f"{result.model_path}: {result.model_id}; best epoch {result.best_epoch}/{result.epochs_run} "
              f"(val objective {result.best_objective:.5f}); patch threshold {cal.patch_threshold:.5f} "
              f"@ FAR {cal.patch_far:g}; scan threshold {cal.scan_threshold:.5f} @ FAR {cal.scan_far:g}")
    return 0


def _consume(reports, quiet: bool):
    """Drive the generator; a tqdm bar per store build / epoch, one summary line per epoch."""
    from tqdm import tqdm

    from xscreen.dataset import StoreProgress
    from xscreen.train import EpochReport, ProgressReport, TrainResult

    bar, result, epoch = None, None, 0
    for r in reports:
        if isinstance(r, StoreProgress) and not r.done:
            if bar is None:
                bar = tqdm(total=r.n_scans, desc="patches", unit="scan", disable=quiet, file=sys.stderr)
            bar.update(1)
            bar.set_postfix(train=r.n_train, val=r.n_val)
        elif isinstance(r, ProgressReport):
            if bar is None or epoch != r.epoch:
                # the bar starts at the first report's step: counted from 0, the steps done before
                # it was made would read as done in no time (issue 31 item 5: "522694 step/s")
                bar = _close(bar) or tqdm(total=r.steps, initial=r.step, desc=f"epoch {r.epoch}", unit="step",
                                          disable=quiet, file=sys.stderr, mininterval=0.5)
                epoch = r.epoch
            bar.update(r.step - bar.n)
            bar.set_postfix(g=f"{r.g_loss:.3f}", d=f"{r.d_loss:.3f}", pps=f"{r.patches_per_s:.0f}")
        elif isinstance(r, EpochReport):
            bar, epoch = _close(bar), 0
            if not quiet:
                print(f"epoch {r.epoch}/{r.epochs}: G {r.g_loss:.4f} (adv {r.g_adv:.3f} con {r.g_con:.3f} "
                      f"lat {r.g_lat:.4f}) D {r.d_loss:.4f} re-inits {r.d_reinits} | val {r.val_objective:.5f}"
                      f"±{r.val_score_std:.5f}{' *best*' if r.best else ''} | {r.patches_per_s:.0f} patches/s "
                      f"lr {r.lr:.2e} {r.seconds:.0f}s", file=sys.stderr)
        elif isinstance(r, TrainResult):
            result = r
        elif isinstance(r, StoreProgress) and r.done:
            bar = _close(bar)
    _close(bar)
    return result


def _close(bar):
    if bar is not None:
        bar.close()
    return None
