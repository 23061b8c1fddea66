"""The training wizard's logic without Qt: scan inventory, patch estimates, page gates, run config.

Every page of the GUI's ``training_wizard`` is enabled by ``page_errors(state, page) == []``, so the
gating rules are tested here without a display.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from xscreen.config import (D_EVERY_MAX, DENSITY_MAX, PLAIN_SCORE, NetConfig, PatchConfig, Preprocess, RunConfig,
                            TrainConfig, score_defaults)

PAGES = ("data", "patches", "model", "train", "calibrate", "save")
MIN_SCANS = 3  # at least two for training and one held out for validation/calibration
MIN_PATCHES = 64
PATCH_SIZES = (32, 64, 128)
ESTIMATE_SAMPLE = 8  # scans read to estimate the patch count; the rest are extrapolated by area

# Size presets: "paper" is the published model; the smaller ones trade accuracy for CPU time and
# score with R alone (λ 1, benchmarks/RESULTS.md, issue 12). D's batches: the paper's everywhere
# (joint batches did not win on the benign-only criterion; see TrainConfig.d_batch). The score form
# follows the data's kind (config.SCORE_DEFAULTS, issue 29), except "paper", which keeps the plain score.
PRESETS: dict[str, dict[str, float | str]] = {
    "fast": {"ngf": 16, "ndf": 16, "epochs": 3, "batch_size": 64, "lam": 1.0, "d_batch": "separate", "d_every": 1},
    "standard": {"ngf": 32, "ndf": 32, "epochs": 10, "batch_size": 64, "lam": 1.0, "d_batch": "separate",
                 "d_every": 1},
    # the paper's configuration, kept reachable as it was published (λ 0.9, ngf 64, 15 epochs,
    # D on real and reconstructed batches separately as in the reference code)
    "paper": {"ngf": 64, "ndf": 64, "epochs": 15, "batch_size": 64, "lam": 0.9, "d_batch": "separate",
              "d_every": 1},
}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


@dataclass(frozen=True)
class ScanInfo:
    path: Path
    kind: str
    width: int
    height: int


@dataclass(frozen=True)
class Inventory:
    """What the chosen benign inputs hold: readable scans by kind, and unreadable files with reasons."""

    scans: tuple[ScanInfo, ...] = ()
    unreadable: tuple[tuple[Path, str], ...] = ()

    @property
    def kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.scans:
            out[s.kind] = out.get(s.kind, 0) + 1
        return out

    @property
    def kind(self) -> str | None:
        kinds = self.kinds
        return next(iter(kinds)) if len(kinds) == 1 else None


@dataclass(frozen=True)
class WizardState:
    benign: tuple[Path, ...] = ()
    threat: Path | None = None
    inventory: Inventory = Inventory()
    patch: PatchConfig = PatchConfig()
    patch_estimate: int = 0
    preset: str = "standard"
    net: NetConfig = NetConfig(ngf=32, ndf=32)
    train: TrainConfig = TrainConfig(epochs=10)
    material: bool = False  # Preprocess.material: the dual-energy material channel (issue 12)
    trained_model: Path | None = None
    training: bool = False
    score_kind: str = ""  # the data kind the score options were last set for (by a preset or the data)
    name: str = ""
    description: str = ""


def expand_inputs(paths: Iterable[Path]) -> list[Path]:
    """Files stay, folders become the scans in them (recursively; TIFF pairs grouped), sorted."""
    from xscreen.pipeline import collect_paths

    return collect_paths(paths)


def take_inventory(paths: Iterable[Path]) -> Iterator[tuple[int, int, Inventory]]:
    """Yield (done, total, inventory so far) while reading every scan once; unreadable ones listed."""
    from xscreen.scan import ScanError, load_scan

    files = expand_inputs(paths)
    scans: list[ScanInfo] = []
    bad: list[tuple[Path, str]] = []
    for i, f in enumerate(files):
        try:
            s = load_scan(f)
            scans.append(ScanInfo(f, s.kind, s.width, s.height))
        except ScanError as exc:
            bad.append((f, exc.fault))
        yield i + 1, len(files), Inventory(tuple(scans), tuple(bad))
    if not files:
        yield 0, 0, Inventory()


def count_patches(scan, patch: PatchConfig) -> tuple[int, int]:
    """(kept, total) patches of one scan on the patch store's own grid; air patches are not kept."""
    from xscreen.dataset import store_grid

    grid = store_grid(scan, patch)
    kept = int((~grid.air).sum()) if patch.skip_air else len(grid.air)
    return kept, len(grid.air)


def estimate_patches(inventory: Inventory, patch: PatchConfig) -> int:
    """Patch count over all scans: exact on a sample of scans, extrapolated by pixel area."""
    from xscreen.scan import ScanError, load_scan

    if not inventory.scans:
        return 0
    step = max(1, len(inventory.scans) // ESTIMATE_SAMPLE)
    sample = inventory.scans[::step][:ESTIMATE_SAMPLE]
    kept, area = 0, 0
    for info in sample:
        try:
            kept += count_patches(load_scan(info.path), patch)[0]
        except ScanError:
            continue
        area += info.width * info.height
    total_area = sum(s.width * s.height for s in inventory.scans)
    return int(round(kept * total_area / area)) if area else 0


def preset_score(preset: str, kind: str) -> dict[str, float]:
    """The score options a preset gives data of ``kind``: the paper's plain score for "paper", else
    the kind's default (config.SCORE_DEFAULTS)."""
    d = PLAIN_SCORE if preset == "paper" else score_defaults(kind)
    return {k: (float(v) if k == "density" else int(v)) for k, v in d.items()}


def apply_preset(state: WizardState, preset: str) -> WizardState:
    p = PRESETS[preset]
    kind = data_kind(state)
    net = dataclasses.replace(state.net, ngf=int(p["ngf"]), ndf=int(p["ndf"]))
    train = dataclasses.replace(state.train, epochs=int(p["epochs"]), batch_size=int(p["batch_size"]),
                                lam=float(p["lam"]), d_batch=str(p["d_batch"]), d_every=int(p["d_every"]),
                                **preset_score(preset, kind))
    return dataclasses.replace(state, preset=preset, net=net, train=train, score_kind=kind)


def with_inventory(state: WizardState, inventory: Inventory) -> WizardState:
    """``state`` with the scanned ``inventory``; when it settles the data's kind to another one than
    the score options were set for, the preset's score options for that kind replace them (options
    the user edited for the same kind stay)."""
    new = dataclasses.replace(state, inventory=inventory)
    kind = inventory.kind
    if kind is None or kind == state.score_kind:
        return new
    train = dataclasses.replace(new.train, **preset_score(state.preset, kind))
    return dataclasses.replace(new, train=train, score_kind=kind)


def page_errors(state: WizardState, page: str) -> list[str]:
    """Why Next is disabled on ``page`` (empty list: the page is complete)."""
    checks = {"data": _data_errors, "patches": _patch_errors, "model": _model_errors,
              "train": _train_errors, "calibrate": _calibrate_errors, "save": _save_errors}
    return checks[page](state)


def _data_errors(s: WizardState) -> list[str]:
    inv = s.inventory
    if not s.benign:
        return ["choose at least one folder or file of benign scans"]
    errors = []
    if len(inv.kinds) > 1:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(inv.kinds.items()))
        errors.append(f"mixed scan kinds ({kinds}): a model is trained for one kind; choose one")
    if len(inv.scans) < MIN_SCANS:
        errors.append(f"{len(inv.scans)} readable scan(s): at least {MIN_SCANS} are needed "
                      "(some for training, some held out for calibration)")
    if s.threat is not None and not Path(s.threat).is_dir():
        errors.append(f"threat folder {s.threat} does not exist")
    elif s.threat is not None:
        errors += overlap_errors(Path(s.threat), s.benign)
    return errors


def overlap_errors(evaluation: Path, benign: Iterable[Path]) -> list[str]:
    """The evaluation folder must hold none of the training scans: the same folder, one inside the
    other, or the benign inputs inside it (an 'xscreen synth' folder's benign/ half) - a model
    scored on its own training bags looks better than it is."""
    ev = Path(evaluation).resolve()
    for b in benign:
        p = Path(b).resolve()
        if p == ev or p.is_relative_to(ev) or ev.is_relative_to(p):
            return [f"the evaluation folder {evaluation} overlaps the benign training data ({b}): "
                    "choose a folder of other scans (or leave it empty)"]
    return []


def _patch_errors(s: WizardState) -> list[str]:
    p, errors = s.patch, []
    if p.size not in PATCH_SIZES:
        errors.append(f"patch size must be one of {PATCH_SIZES}")
    if not 8 <= p.stride <= p.size:
        errors.append(f"stride must be between 8 and the patch size ({p.size})")
    if not 0.0 < p.air_threshold <= 1.0:
        errors.append("air threshold must be in (0, 1]")
    if s.patch_estimate < MIN_PATCHES:
        errors.append(f"about {s.patch_estimate} patches: at least {MIN_PATCHES} are needed; "
                      "add scans, lower the stride or raise the air threshold")
    return errors


def _model_errors(s: WizardState) -> list[str]:
    t, errors = s.train, []
    if t.epochs < 1:
        errors.append("at least one epoch")
    if t.batch_size < 2:
        errors.append("batch size must be at least 2 (BatchNorm needs two samples)")
    if not 0.0 <= t.lam <= 1.0:
        errors.append("λ must be in [0, 1]")
    if min(t.w_adv, t.w_con, t.w_lat) < 0:
        errors.append("loss weights must not be negative")
    if s.net.ngf < 4 or s.net.ndf < 4:
        errors.append("ngf and ndf must be at least 4")
    if not 0.0 <= t.input_mask <= 1.0:
        errors.append("the masked-input share must be in [0, 1]")
    if not 0 <= s.net.outer_skips_off <= 3:
        errors.append("skips off must be 0 to 3")
    if s.net.generator == "unetpp" and s.net.outer_skips_off:
        errors.append("UNet skips off applies to the unet generator only")
    if not 0 <= t.score_inpaint <= 4:
        errors.append("test-time inpainting grid must be 0 (off) to 4")
    if not 0.0 <= t.density <= DENSITY_MAX:
        errors.append(f"density prior weight must be 0 (off) to {DENSITY_MAX:g}")
    if not 1 <= t.d_every <= D_EVERY_MAX:
        errors.append(f"the discriminator must step every 1 to {D_EVERY_MAX} training steps")
    if t.recon_window and not 2 <= t.recon_window <= s.net.size:
        errors.append(f"residual window must be 0 (whole patch) or 2 to {s.net.size}")
    if s.material and data_kind(s) != "dual":
        errors.append(f"the material channel needs dual-energy scans; these are '{data_kind(s)}'")
    return errors


def _train_errors(s: WizardState) -> list[str]:
    if s.training:
        return ["training is running"]
    if s.trained_model is None or not Path(s.trained_model).is_file():
        return ["train a model first (or resume the last run)"]
    return []


def _calibrate_errors(s: WizardState) -> list[str]:
    t = s.train
    if not 0.0 < t.patch_far < 0.5 or not 0.0 < t.scan_far < 0.5:
        return ["false-alarm rates must be between 0 and 0.5"]
    return _train_errors(s)


def _save_errors(s: WizardState) -> list[str]:
    if not _NAME_RE.match(s.name or ""):
        return ["name: 1-64 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit"]
    return []


def model_net(state: WizardState) -> NetConfig:
    """The network the wizard will train: its widths with the data's patch size and channel count."""
    return dataclasses.replace(state.net, size=state.patch.size, channels=model_preprocess(state).channels)


def data_kind(state: WizardState) -> str:
    """The chosen data's scan kind ('dual' until an inventory says otherwise)."""
    return state.inventory.kind or "dual"


def model_preprocess(state: WizardState) -> Preprocess:
    """The input map the wizard will train with: the data's kind, the material channel if chosen
    (dual-energy data only: on other data the model page lists it as an error)."""
    kind = data_kind(state)
    return Preprocess(kind=kind, material=state.material and kind == "dual")


def to_run_config(state: WizardState, output: Path) -> RunConfig:
    """The config file the wizard saves; ``xscreen train --config FILE`` reruns it headless."""
    return RunConfig(
        # the readable scans, not the folders: unreadable files are skipped, and the config reruns
        # on exactly the scans the wizard trained on
        benign=tuple(str(s.path) for s in state.inventory.scans) or tuple(str(p) for p in state.benign),
        threat=(str(state.threat),) if state.threat else (),
        output=str(output), name=state.name, description=state.description,
        preprocess=model_preprocess(state), patch=state.patch,
        net=model_net(state),
        train=state.train,
    )


def safe_model_filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("_") + ".xsm"


def tiling_preview(rgb: np.ndarray, scan, patch: PatchConfig) -> np.ndarray:
    """(H, W, 3) uint8: the scan's rendering with the patch grid drawn and air patches shaded."""
    from xscreen.dataset import store_grid

    out = rgb.copy()
    st = patch.stride
    if patch.skip_air:
        grid = store_grid(scan, patch)
        for y, x in grid.origins[grid.air]:
            region = out[y:y + st, x:x + st]
            region[...] = (region * 0.45 + np.array([40, 40, 90]) * 0.55).astype(np.uint8)
    out[::st, :, :] = (0, 170, 255)
    out[:, ::st, :] = (0, 170, 255)
    return out
