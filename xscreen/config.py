"""Frozen configuration dataclasses shared by the CLI, the GUI and the wizard.

Every long-lived setting lives here so that a CLI flag, a wizard field and a config file all
fill the same object. Nothing in this module imports anything heavier than the standard library.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

ScanKind = Literal["dual", "rgb", "gray"]
CHANNELS: dict[str, int] = {"dual": 2, "rgb": 3, "gray": 1}

# Fixed map from attenuation a = -ln(T) to the model's [-1, 1] range for dual-energy input.
# T = 1e-4 (a = 9.2) is below what a 16-bit detector resolves above its noise floor, so
# A_MAX = 9.0 keeps the full useful range without wasting the top of the tanh.
DUAL_A_MAX = 9.0


@dataclass(frozen=True)
class Preprocess:
    """How a scan becomes model input; stored in the model file so scoring repeats training.

    kind ``dual``: x = 2 * clip(-ln(T) / a_max, 0, 1) - 1 per energy channel (high, low).
    kind ``rgb``/``gray``: x = 2 * (value / i0) - 1 (bright = air = +1).
    ``material`` (dual only; issue 12, direction 5): a third input channel, the pixel's material
    coordinate from the ratio a_low / a_high - 0 on the organic (cellulose) curve, 1 on the iron
    curve at the same a_high (beam hardening corrected, ``materials.material_coordinate``), faded
    to 0 over thin pixels where the ratio is noise, mapped to [-1, 1].
    """

    kind: ScanKind = "dual"
    a_max: float = DUAL_A_MAX
    material: bool = False

    def __post_init__(self) -> None:
        if self.material and self.kind != "dual":
            raise ValueError(f"the material channel needs dual-energy input, not '{self.kind}'")

    @property
    def scan_channels(self) -> int:
        """Channels of the scans this input is made from (stored in patch stores)."""
        return CHANNELS[self.kind]

    @property
    def channels(self) -> int:
        """Channels of the model input (the network's)."""
        return self.scan_channels + int(self.material)


@dataclass(frozen=True)
class PatchConfig:
    """Tiling. ``air_threshold``: a patch whose mean transmission is at or above this is air."""

    size: int = 64
    stride: int = 32
    air_threshold: float = 0.95
    skip_air: bool = True


@dataclass(frozen=True)
class NetConfig:
    """Skip-GANomaly architecture (paper defaults: ngf = ndf = 64, nz = 100)."""

    size: int = 64
    channels: int = 2
    ngf: int = 64
    ndf: int = 64
    nz: int = 100
    # issue 12 options (paper: False / 0)
    d_spectral_norm: bool = False  # spectral normalisation on D's convs (replaces D's BatchNorm)
    outer_skips_off: int = 0  # UNet levels below the outermost whose skip is removed (less copying)
    # "unetpp": UNet++ nested dense skips (Zhou et al. 2018) in place of the pix2pix UNet - the issue's
    # anchor "a UNet++ generator in Skip-GANomaly" (network.NestedGenerator)
    generator: Literal["unet", "unetpp"] = "unet"
    # a SAGAN self-attention layer in D at 1/4 of the patch size (Zhang et al. 2019) - with spectral
    # norm and UNet++ skips, the second anchor (network.SelfAttention)
    d_attention: bool = False

    def options_text(self) -> str:
        """The architecture options beyond the paper's, as words ("" for the paper's networks):
        what ``xscreen model info`` and the GUI's model panel name."""
        parts = (["UNet++ generator"] if self.generator == "unetpp" else []) + \
            (["D spectral norm"] if self.d_spectral_norm else []) + \
            (["D self-attention"] if self.d_attention else []) + \
            ([f"{self.outer_skips_off} UNet skips off"] if self.outer_skips_off else [])
        return ", ".join(parts)


# the density prior's largest weight (TrainConfig.density): 10 already lets density outweigh the score
# tenfold at the benign tail; the one bound the model-file check, the CLI and the wizard all use
DENSITY_MAX = 10.0
# TrainConfig.d_every's largest value (D stepped on one training step in 16): the one bound the
# model-file check, the CLI and the wizard all use
D_EVERY_MAX = 16


@dataclass(frozen=True)
class TrainConfig:
    """Training and scoring hyper-parameters (paper defaults; w_con = 50 per the reference code,
    the paper's text states 40 - both reachable through this field)."""

    epochs: int = 15
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    w_adv: float = 1.0
    w_con: float = 50.0
    w_lat: float = 1.0
    # score A = lam * R + (1 - lam) * L. The paper's 0.9 is the `paper` preset; 1.0 (R alone) is the
    # default on the evidence: higher patch AUC on labelled synthetic validation bags (0.82 vs 0.59),
    # higher SIXray darkness-matched AUC in every training variant, and preferred by the benign-only
    # inserted-object criterion (benchmarks/RESULTS.md, 'Detection study')
    lam: float = 1.0
    recon: Literal["l1", "l2"] = "l1"  # R: paper's |x - x_hat| (l1) or reference code's squared error
    # issue 12 score options (paper: 0 / 0). score_inpaint k: x_hat by test-time inpainting on a k x k
    # grid of hidden blocks (k^2 generator passes), so the UNet skips cannot copy what it should judge;
    # recon_window w: R = the largest mean residual over w x w windows, so a small object's residual is
    # not averaged away over the whole patch
    score_inpaint: int = 0
    recon_window: int = 0
    # density prior (issue 12): score += density * density_scale * D, D the patch's mean density in
    # [0, 1]. density is the weight (0 = off, the paper; 1 = as much as the score itself at the benign
    # 99th percentile); density_scale is set from benign data when the model is built (training's
    # validation patches, or `xscreen model calibrate --density`), never by hand
    density: float = 0.0  # at most DENSITY_MAX
    density_scale: float = 0.0
    d_reinit_below: float = 1e-5
    input_noise: float = 0.0  # std of real Gaussian noise on training input (reference: buggy, off)
    input_mask: float = 0.0  # share of training patches with a random block hidden from G (target: whole patch)
    # D's batches in training: "separate" (paper, reference code, DCGAN: D(x) and D(x_hat) in two
    # forward passes, each normalised by its own BatchNorm statistics; the `paper` preset) or "joint"
    # (one pass over [x; x_hat], shared statistics, so a difference between the real and the
    # reconstructed batch that per-batch normalisation would remove stays visible to D). Default
    # separate, the paper's: over three seeds each the benign-only inserted-object criterion ties the
    # two (0.575 vs 0.576), so joint has not won by the rule that may choose (benign data only),
    # although the synthetic test set favours it (patch AUC 0.877 vs 0.844 mean) and SIXray does not
    # (benchmarks/RESULTS.md, 'The discriminator bug')
    d_batch: Literal["separate", "joint"] = "separate"
    # D is stepped on every d_every-th training step (the first of each epoch included); 1 = every
    # step (paper). On the other steps G still trains against the current D, but D(x) runs without a
    # graph and D's backward is skipped (issue 17: ~18 % of a bf16 step here). One run in three at 2
    # lost the IEDs, so the default stays 1 (benchmarks/RESULTS.md, 'Training precision')
    d_every: int = 1  # 1 to D_EVERY_MAX
    lr_schedule: Literal["none", "step", "cosine"] = "none"
    lr_step_epochs: int = 10
    lr_gamma: float = 0.1
    patience: int = 0  # early stopping on the benign validation objective; 0 = off
    # epoch selection on benign data: "mean_score" (paper: lowest mean held-out benign score), or the
    # highest AUC of held-out benign patches with a synthetic anomaly vs the same clean: "pasted"
    # (CutPaste) or "inserted" (a generic object superimposed as in a radiograph); train/selection.py
    selection: Literal["mean_score", "pasted", "inserted"] = "mean_score"
    augment: bool = False  # flips and 90-degree rotations
    seed: int = 0
    deterministic: bool = False
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: str = "auto"
    num_workers: int = 0
    log_every: int = 50  # progress report every N steps
    val_fraction: float = 0.2  # share of benign *scans* held out for validation/calibration
    patch_far: float = 0.01  # target patch false-alarm rate for calibration
    scan_far: float = 0.05  # target scan false-alarm rate for calibration


# The score form a NEW model gets by default, per input kind (issue 29). TrainConfig's own defaults
# stay the paper's plain score (G(x) once, mean residual), so files and configs written before keep
# theirs; ``xscreen train``, the wizard and its presets fill these in once the data's kind is known.
# Pseudo-colour (held-out SIXray, issue 29): pooled within-image AUC 0.756/0.603 -> 0.980/0.978 and
# darkness-matched 0.712 -> 0.886/0.883 with inpainting 2x2 + window 16 + density 1. Grey scans are
# single-energy transmission images like those and follow them (not measured).
# Dual energy keeps the plain score: the two simulators disagree and the plain score is the one that
# never loses the guns. Another simulator (issue 29): inpainting + window 16 lifted scan AUC
# 0.733 -> 0.807 and knives 0/7 -> 4/12. This product's simulator (shipped weights, test seed 2002,
# calibrated on 100 benign bags; in alarm region handgun / gun part / knife / IED): plain 6/6, 5/6,
# 3/12, 1/18; inpainted + window 16: 0/6, 1/6, 0/12, 1/18; inpainted, no window: 6/6, 4/6, 1/12,
# 0/18 (benchmarks/RESULTS.md, 'Score form per input kind'). Both inpainted forms stay options.
SCORE_FIELDS = ("score_inpaint", "recon_window", "density")
SCORE_DEFAULTS: dict[str, dict[str, float]] = {
    "dual": {"score_inpaint": 0, "recon_window": 0, "density": 0.0},
    "rgb": {"score_inpaint": 2, "recon_window": 16, "density": 1.0},
    "gray": {"score_inpaint": 2, "recon_window": 16, "density": 1.0},
}
PLAIN_SCORE: dict[str, float] = {"score_inpaint": 0, "recon_window": 0, "density": 0.0}


def score_defaults(kind: str) -> dict[str, float]:
    """The default score options of a new model for scans of ``kind`` (a copy)."""
    if kind not in SCORE_DEFAULTS:
        raise ValueError(f"unknown scan kind {kind!r}")
    return dict(SCORE_DEFAULTS[kind])


def with_score_defaults(train: "TrainConfig", kind: str, keep: frozenset[str] | set[str] = frozenset()) -> "TrainConfig":
    """``train`` with the kind's default score options, except the fields named in ``keep`` (set
    explicitly by the user). The density scale is never set here: training measures it."""
    d = {k: v for k, v in score_defaults(kind).items() if k not in keep}
    d = {k: (int(v) if k != "density" else float(v)) for k, v in d.items()}
    return dataclasses.replace(train, **d)


def score_form_text(train: Any) -> str:
    """Which score form a model uses, in words (``xscreen model info``, the model card): "plain"
    (the paper's x_hat = G(x), one generator pass) or "inpainted k x k" with its window and prior."""
    get = (lambda k: train.get(k, 0)) if isinstance(train, dict) else (lambda k: getattr(train, k, 0))
    k, w, dens = int(get("score_inpaint") or 0), int(get("recon_window") or 0), float(get("density") or 0.0)
    head = f"inpainted {k}x{k} ({k * k} generator passes)" if k else "plain (one generator pass)"
    parts = [head, f"window {w}" if w else "whole-patch residual"]
    if dens:
        parts.append(f"density prior {dens:g}")
    return ", ".join(parts)


@dataclass(frozen=True)
class ScreenConfig:
    """Screening a scan. ``threshold`` overrides the model's review level (raw patch score);
    ``scan_threshold`` the bag alarm threshold (raw region score, then not adjusted for area)."""

    stride: int = 32
    air_threshold: float = 0.95
    skip_air: bool = True
    threshold: float | None = None
    scan_threshold: float | None = None
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    batch_size: int | None = None  # None: sized to the device
    min_region_patches: int = 1
    top_k: int = 5  # scan score = mean of the top-k patch scores when aggregation == "topk"
    attention: bool = True  # keep regions between the review level and the alarm threshold
    # coarse-to-fine screening (cascade.py): 0 = off (every non-air patch scored, exact); else the
    # share of the review level at which a patch counts as hot, or "auto" (the seed rule's default).
    # Off wherever exactness matters.
    cascade: float | str = 0.0
    # inpainted scores (issue 29, inpaint_gate.py): the inpainted score only where the plain score's
    # estimate says it can reach the review level, every bag checking the bound it relies on, so
    # regions, alarm and bag score are the full grid's. "auto": on for inpainted models (ratio 0.1),
    # 0 = the inpainted score on every patch (evaluation and calibration, which read every score)
    gate: float | str = "auto"
    # per-pixel reconstruction and residual maps (the GUI, reports); off, screening skips the
    # stitching accumulator (3 floats per pixel) - the batch CLI without reports needs only the heat
    maps: bool = True


@dataclass(frozen=True)
class Calibration:
    """Thresholds from held-out benign data. Scores are reported as score / threshold."""

    patch_threshold: float
    patch_far: float
    scan_threshold: float
    scan_far: float
    scan_aggregation: Literal["max", "topk"] = "max"
    top_k: int = 5
    quantiles: dict[str, float] = field(default_factory=dict)  # e.g. {"0.5": .., "0.99": ..}
    n_patches: int = 0
    n_scans: int = 0
    # The bag alarm rule (xscreen/alarm.py). "legacy": files written before it, whose bag
    # threshold is a constant; "area": a bag alarms iff a region's score reaches the threshold for
    # the bag's scored area, from a Gumbel fit of benign bag maxima (location, scale, in a power
    # of the score) at ``ref_area`` px^2. Defaults keep older files loading.
    alarm_rule: Literal["legacy", "area"] = "legacy"
    alarm_power: float = 1.0  # the fit is in score ** power (0: log score)
    alarm_loc: float = 0.0
    alarm_scale: float = 0.0
    ref_area: float = 0.0
    stride: int = 0  # screening stride the bags were scored at (0: not recorded)
    version: int = 0  # threshold version, +1 per calibration written; audit rows carry it
    n_alarmed: int = 0  # calibration bags that alarmed, each left out of its own fit
    far_lo: float = 0.0  # 95 % Clopper-Pearson interval of n_alarmed / n_scans
    far_hi: float = 1.0
    source: str = ""  # what the bags were: "benign scans" or "audit: N cleared bags"
    # the largest calibration bag's scored area, px^2 (0: not recorded): beyond the calibrated range a
    # scan is screened as bag-sized sections (alarm.section_plan), never by an extrapolated threshold
    area_max: float = 0.0


T = TypeVar("T")


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a config dataclass, refusing unknown keys with a clear message."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    return cls(**data)


@dataclass(frozen=True)
class RunConfig:
    """What ``xscreen train --config FILE`` runs; the training wizard writes the same file."""

    benign: tuple[str, ...] = ()
    val: tuple[str, ...] = ()
    threat: tuple[str, ...] = ()
    output: str = "model.xsm"
    name: str = ""
    description: str = ""
    preprocess: Preprocess = Preprocess()
    patch: PatchConfig = PatchConfig()
    net: NetConfig = NetConfig()
    train: TrainConfig = TrainConfig()

    def save(self, path: str | Path) -> None:
        from xscreen.atomic import atomic_write_text

        atomic_write_text(Path(path), json.dumps(to_dict(self), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read config file: {exc}") from exc
        sub = {"preprocess": Preprocess, "patch": PatchConfig, "net": NetConfig, "train": TrainConfig}
        try:
            for key, kls in sub.items():
                if key in raw:
                    raw[key] = from_dict(kls, raw[key])
            for key in ("benign", "val", "threat"):
                if key in raw:
                    raw[key] = tuple(raw[key])
            return from_dict(cls, raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: invalid config: {exc}") from exc
