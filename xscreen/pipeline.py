"""``screen(scan, scorer, cfg) -> Screening``: the one path that the CLI, the GUI and tests share.

scan -> model input on the device (once) -> unfold view -> air mask -> batches of non-air patches
scored and scattered into per-pixel accumulators -> score grid, heat, residual, reconstruction ->
regions and the bag alarm (alarm.py: a bag alarms iff a region reaches its area's alarm threshold). ``screen_paths`` runs it over files and folders as a generator.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from xscreen.config import ScreenConfig
from xscreen.alarm import covered_area
from xscreen.cascade import Cascade, ResidualBlocks, cascade_cells, fill_grids, resolve_fraction
from xscreen.heatmap import Region, bag_alarm, find_regions
from xscreen import inpaint_gate
from xscreen.loss import pixel_score
from xscreen.patches import StitchAccumulator, air_mask, air_value, grid_to_pixels, padded_buffer, tile_padded
from xscreen.preprocess import WrongKind, model_input
from xscreen.scan import Scan, ScanError
from xscreen.scoring import Scorer
from xscreen.thresholds import Thresholds, bag_level, resolve_thresholds, scoring_id, threshold_version

__all__ = ["Screening", "ScreenResult", "ScreenFailure", "ScoreError", "Thresholds", "Timings", "collect_paths",
           "parse_shard", "resolve_thresholds", "screen", "screen_paths", "scoring_id", "threshold_version"]


class ScoreError(ValueError):
    """A scan whose anomaly scores are not all finite: an error for that bag, never a clear."""


@dataclass
class Timings:
    """Seconds per stage. ``load``: file read (screen_paths) + model input + transfer to device."""

    load: float = 0.0
    tile: float = 0.0
    score: float = 0.0
    stitch: float = 0.0
    regions: float = 0.0
    total: float = 0.0


@dataclass
class Screening:
    """Everything the GUI, reports and CLI show about one screened scan. Grids are (rows, cols)
    over patch origins (row * stride, col * stride); maps are (H, W) in scan pixels."""

    scan_id: str
    path: str | None
    sha256: str | None
    kind: str
    width: int
    height: int
    model_id: str
    model_checksum: str
    threshold: float  # raw review level: regions are drawn from it (calibrated, or the override)
    threshold_far: float | None  # its calibrated patch false-alarm rate (None for an override)
    scan_threshold: float  # this bag's alarm threshold on region scores (alarm.py: area-adjusted)
    scan_aggregation: str
    stride: int
    patch_size: int
    score_grid: np.ndarray  # (rows, cols) float32 raw A, 0 for air
    recon_grid: np.ndarray  # (rows, cols) float32 R per patch, 0 for air
    latent_grid: np.ndarray  # (rows, cols) float32 L per patch, 0 for air
    air_grid: np.ndarray  # (rows, cols) bool
    heat: np.ndarray  # (H, W) float32 rel score, mean of covering patches
    residual: np.ndarray | None  # (H, W) float32 mean|x - x_hat| over channels (None: maps off)
    reconstruction: np.ndarray | None  # (C, H, W) float32 model space [-1, 1] (None: maps off)
    regions: list[Region]  # "alarm" and "attention" regions, ranked by score
    scan_score: float  # the highest region (= non-air patch) score, 0 for an all-air scan
    alarm: bool  # the one rule: some region reaches scan_threshold
    device: str = "cpu"
    precision: str = "fp32"
    timings: Timings = field(default_factory=Timings)
    area: float = 0.0  # px^2 under the scored (non-air) patches: the alarm threshold is set for it
    alarm_rule: str = ""  # "area" (calibrated per bag area) or "constant" (override / legacy model)
    threshold_version: str = ""  # '<scoring id>.v<calibration version>': audit rows carry it
    alarm_far: float | None = None  # the rule's target benign bag alarm rate (None: an override)
    cascade: float = 0.0  # coarse-to-fine fraction (cascade.py), 0: every non-air patch scored
    gate: float = 0.0  # inpaint_gate.py ratio (0: off); outcome as the full grid, n_evaluated tells the work
    gate_fallback: bool = False  # the gate's bound failed on this bag, so every patch was scored
    n_evaluated: int = -1  # patches the model actually scored (-1: not recorded)
    # thresholds.bag_level: 1 = the whole bag under the rule; n > 1 = a scan beyond the calibrated
    # range of areas screened as n bag-sized sections; 0 = an empty tray (all air)
    sections: int = 1
    notices: list[str] = field(default_factory=list)  # what the operator must be told about this bag

    @property
    def n_patches(self) -> int:
        return 0 if self.air_grid is None else int(self.air_grid.size)

    @property
    def n_scored(self) -> int:
        return 0 if self.air_grid is None else int((~self.air_grid).sum())

    @property
    def n_alarm_regions(self) -> int:
        return sum(r.level == "alarm" for r in self.regions)

    @property
    def scan_rel(self) -> float:
        return self.scan_score / self.scan_threshold if self.scan_threshold > 0 else float("inf")

    def over_alarm(self, score: float) -> float:
        """A raw score on the one scale shown to people (issue 31): score ÷ this bag's alarm
        threshold ("× alarm", 1.00 = alarms); the review level lies at ``over_alarm(threshold)``."""
        return float(score) / self.scan_threshold if self.scan_threshold > 0 else float("inf")

    def to_summary(self, include_grid: bool = False) -> dict[str, Any]:
        """JSON/CSV-ready scalars and regions; with ``include_grid`` also the (rows, cols) score
        grid as nested lists, null for air (enough to redraw the heat map; no per-pixel maps)."""
        keys = ("scan_id", "path", "sha256", "kind", "width", "height", "model_id", "model_checksum",
                "threshold", "threshold_far", "scan_threshold", "scan_aggregation", "stride",
                "patch_size", "scan_score", "alarm", "device", "precision", "area", "alarm_rule",
                "threshold_version", "cascade", "n_evaluated", "sections", "notices")
        out: dict[str, Any] = {k: getattr(self, k) for k in keys}
        out.update(scan_rel=self.scan_rel, n_patches=self.n_patches, n_scored=self.n_scored,
                   n_regions=len(self.regions), n_alarm_regions=self.n_alarm_regions,
                   timings=asdict(self.timings),
                   regions=[asdict(r) for r in self.regions])
        if include_grid and self.score_grid is not None:
            grid = self.score_grid.astype(object)
            if self.air_grid is not None:
                grid[self.air_grid] = None
            out["score_grid"] = [[None if v is None else float(v) for v in row] for row in grid]
        return out


def _sha256(path: Path | None) -> str | None:
    """Hash of the scan's file (a TIFF pair's stem hashes its _high file); None for in-memory scans."""
    if path is None:
        return None
    from xscreen.scan import file_sha256

    try:
        return file_sha256(path)
    except ScanError:
        return None


@dataclass(frozen=True)
class ScreenProgress:
    """Patches scored so far in one scan (reported after every batch)."""

    done: int
    total: int


def screen(scan: Scan, scorer: Scorer, cfg: ScreenConfig = ScreenConfig(), *,
           load_seconds: float = 0.0) -> Screening:
    """Screen one scan. Raises ValueError when the scan's kind is not the model's."""
    for item in screen_steps(scan, scorer, cfg, load_seconds=load_seconds):
        pass
    return item  # the last item is the Screening


def screen_steps(scan: Scan, scorer: Scorer, cfg: ScreenConfig = ScreenConfig(), *,
                 load_seconds: float = 0.0) -> Iterator[ScreenProgress | Screening]:
    """``screen`` as a generator: a ScreenProgress after every scored batch, the Screening last. A
    consumer that stops pulling (the GUI's Cancel) stops the work within one batch."""
    th = resolve_thresholds(scorer, cfg)
    t = Timings(load=load_seconds)
    t0 = time.perf_counter()
    tiling = _model_tiling(scan, scorer, cfg.stride)
    t.load += _lap(t0, scorer)
    t1 = time.perf_counter()
    air = air_mask(tiling, cfg.air_threshold, scorer.preprocess) if cfg.skip_air else \
        torch.zeros(tiling.grid, dtype=torch.bool, device=scorer.device)
    air_np = air.cpu().numpy()
    area = covered_area(~air_np, scorer.patch_size, cfg.stride, scan.height, scan.width)
    level = bag_level(th, area)
    alarm_at = level.threshold
    review = min(th.patch, alarm_at) if cfg.attention else alarm_at  # attention lies below the alarm
    t.tile = _lap(t1, scorer)
    estimate = ResidualBlocks.usable(scorer.patch_size, cfg.stride, scorer.lam, scorer.window, scorer.inpaint)
    fraction = resolve_fraction(cfg.cascade, estimate)
    plan = Cascade(fraction) if fraction else None
    # "auto" keeps what the calibrated levels decide; with an override (calibration screens with
    # stand-in thresholds and reads every patch score) it scores every patch; a ratio given applies
    overridden = cfg.threshold is not None or cfg.scan_threshold is not None
    gate = 0.0 if plan is not None or (overridden and cfg.gate == inpaint_gate.AUTO) else \
        inpaint_gate.gate_for(cfg.gate, scorer)
    grids, recon, residual, n_scored = yield from _score_stream(tiling, air, scorer, t, plan, review, cfg.maps,
                                                                estimate, gate)
    fell_back = bool(grids.pop()) if gate else False
    t3 = time.perf_counter()
    if not cfg.maps:
        tiling = tiling.geometry_only()  # the padded scan is no longer needed: free it before the heat map
    score_grid, recon_grid, latent_grid = (g.reshape(tiling.grid).cpu().numpy() for g in grids)
    _check_finite(score_grid[~air_np])
    live = score_grid[~air_np]
    heat = grid_to_pixels(torch.from_numpy(score_grid / review).to(scorer.device), tiling)
    regions = find_regions(score_grid, review, tiling, cfg.min_region_patches, alarm_threshold=alarm_at)
    s_score = float(live.max()) if live.size else 0.0
    t.regions = time.perf_counter() - t3
    t.total = load_seconds + time.perf_counter() - t0
    yield Screening(
        scan_id=scan.scan_id, path=str(scan.path) if scan.path else None, sha256=_sha256(scan.path),
        kind=scan.kind, width=scan.width, height=scan.height, model_id=scorer.model_id,
        model_checksum=scorer.checksum, threshold=review, threshold_far=th.patch_far,
        scan_threshold=alarm_at, scan_aggregation=th.aggregation, stride=cfg.stride,
        patch_size=scorer.patch_size, score_grid=score_grid, recon_grid=recon_grid,
        latent_grid=latent_grid, air_grid=air_np, heat=heat.cpu().numpy(),
        residual=None if residual is None else residual.cpu().numpy(),
        reconstruction=None if recon is None else recon.cpu().numpy(), regions=regions,
        scan_score=s_score, alarm=bag_alarm(regions), device=str(scorer.device),
        precision=scorer.precision.name, timings=t, area=area, alarm_rule=th.rule.kind,
        threshold_version=threshold_version(scorer, cfg.stride, th.version),
        alarm_far=th.rule.far or None, cascade=fraction, n_evaluated=n_scored, sections=level.sections,
        gate=gate, gate_fallback=fell_back,
        notices=[level.notice] if level.notice else [])


def _check_finite(scores: np.ndarray) -> None:
    """NaN compares False with every threshold, so a NaN score would read as "no alarm"."""
    bad = int(np.count_nonzero(~np.isfinite(scores)))
    if bad:
        raise ScoreError(f"{bad} of {scores.size} patch scores are not finite (NaN or infinite): "
                         "the model or the scan is broken; this bag is not cleared")


def _model_tiling(scan: Scan, scorer: Scorer, stride: int):
    """The scan's model input written straight into the air-padded buffer that is tiled: one
    full-size float copy of the scan (issue 17: an 8000 x 3000 dual scan is 192 MB per copy)."""
    pre = scorer.preprocess
    _, h, w = scan.channels.shape
    padded = padded_buffer(pre.channels, h, w, scorer.patch_size, stride, air_value(pre))
    model_input(scan, pre, out=padded[:, :h, :w].numpy())
    return tile_padded(padded.to(scorer.device), scorer.patch_size, stride, h, w)


def _score_stream(tiling, air: torch.Tensor, scorer: Scorer, t: Timings, plan: Cascade | None = None,
                  review: float = 0.0, maps: bool = True, estimate: bool = False, gate: float = 0.0):
    """Score non-air patches batch by batch (all of them, or the cells ``plan`` picks: cascade.py,
    seeded from the coarse residual when ``estimate``), yielding a ScreenProgress after each; returns
    ((scores, R, L) flat (N,), recon (C,H,W), resid (H,W), number of patches scored); recon and resid
    are None when ``maps`` is off."""
    dev = scorer.device
    grids = [torch.zeros(tiling.n_patches, dtype=torch.float32, device=dev) for _ in range(3)]
    acc = StitchAccumulator(tiling) if maps else None
    scored = torch.zeros(tiling.grid, dtype=torch.bool, device=dev)
    progress = [0, 0]  # done, known total

    # the coarse pass's residual, where it estimates the other patches' scores
    blocks = ResidualBlocks(tiling.grid, tiling.size, tiling.stride, dev) if plan is not None and estimate else None

    def run(cells: torch.Tensor, keep_residual: bool = False):
        todo = torch.nonzero((cells & ~scored).reshape(-1)).reshape(-1)
        progress[1] += int(todo.numel())
        for chunk in todo.split(scorer.batch_size) if todo.numel() else ():
            ts = time.perf_counter()
            batch = tiling.gather(chunk)
            ps = scorer.score(batch, keep_reconstructions=maps or keep_residual)
            if keep_residual:
                blocks.add(chunk, pixel_score(batch, ps.reconstructions.to(batch.device), scorer.recon,
                                              scorer.density, scorer.kind))
            for g, v in zip(grids, (ps.scores, ps.recon_error, ps.latent_error)):
                g[chunk] = v.to(dev, torch.float32)
            scored.view(-1)[chunk] = True
            t.score += time.perf_counter() - ts
            if acc is not None:
                ts = time.perf_counter()
                acc.add(chunk, batch, ps.reconstructions)
                t.stitch += time.perf_counter() - ts
            progress[0] += int(chunk.numel())
            yield ScreenProgress(*progress)

    live = ~air
    if plan is None and gate:
        out = yield from _gated(tiling, air, scorer, t, review, gate, run, acc, grids, scored, progress)
        return out
    if plan is None:
        yield from run(live)
    else:
        coarse = yield from cascade_cells(plan, run, live, scored, grids[0].view(tiling.grid),
                                          tiling.size, tiling.stride, review, blocks)
        filled = fill_grids([g.view(tiling.grid) for g in grids], scored, coarse, tiling.size, tiling.stride,
                            None if blocks is None else blocks.estimate(), live)
        grids = [g.reshape(-1) for g in filled]
    recon = residual = None
    if acc is not None:
        ts = time.perf_counter()
        # cells the cascade skipped do not count in the blending weights (air counts, as x_hat = x)
        recon, residual = acc.result(None if plan is None else (scored | air).float())
        t.stitch += _lap(ts, scorer)
    return grids, recon, residual, int(scored.sum())


def _gated(tiling, air, scorer: Scorer, t: Timings, review: float, gate: float, run, acc, grids, scored, progress):
    """``_score_stream`` for inpainted scores with the gate on (inpaint_gate.py): plain coarse pass,
    exact scores where they can matter. Returns as ``_score_stream`` with the fallback flag appended
    to the grids list."""
    blocks = inpaint_gate.WindowBlocks(tiling.grid, tiling.size, tiling.stride, scorer.window, scorer.device)

    def proxy(cells: torch.Tensor, stitch: bool = False):
        todo = torch.nonzero(cells.reshape(-1)).reshape(-1)
        progress[1] += int(todo.numel())
        for chunk in todo.split(scorer.batch_size * max(1, scorer.inpaint) ** 2) if todo.numel() else ():
            ts = time.perf_counter()
            batch = tiling.gather(chunk)
            x_hat = scorer.reconstruct(batch)
            blocks.add(chunk, *inpaint_gate.plain_residual_parts(batch, x_hat, scorer.recon, scorer.kind,
                                                                  scorer.density))
            t.score += time.perf_counter() - ts
            if stitch:
                acc.add(chunk, batch, x_hat)
            progress[0] += int(chunk.numel())
            yield ScreenProgress(*progress)

    live, shape = ~air, tiling.grid
    score = grids[0].view(shape)
    upper, coarse, fell = yield from inpaint_gate.gated_cells(
        run, proxy, live, scored, score, grids[1].view(shape), tiling.size, tiling.stride, review, blocks,
        scorer.density, gate,
        chunk=scorer.batch_size)
    shown = inpaint_gate.stand_in(upper, scored, live, score, review)
    grids[1].view(shape).copy_(torch.where(live & ~scored, shown, grids[1].view(shape)))
    grids[0].view(shape).copy_(shown)
    recon = residual = None
    if acc is not None:  # the maps: plain reconstructions where no exact one covers (same coarse cells)
        rest = coarse & ~scored
        yield from proxy(rest, stitch=True)
        ts = time.perf_counter()
        recon, residual = acc.result((scored | air | rest).float())
        t.stitch += _lap(ts, scorer)
    return grids + [fell], recon, residual, int(scored.sum())


def _lap(start: float, scorer: Scorer) -> float:
    if scorer.device.type == "cuda":
        torch.cuda.synchronize(scorer.device)  # stage timings must include queued kernels
    return time.perf_counter() - start


# --- batch screening ---------------------------------------------------------------------------
@dataclass
class ScreenResult:
    path: Path
    scan: Scan
    screening: Screening


@dataclass
class ScreenFailure:
    path: Path
    fault: str  # "<file>: <fault>"
    wrong_kind: WrongKind | None = None  # set when the scan is of another kind than the model's


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' (0 <= i < n) -> (i, n)."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like i/n, got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard {text!r}: need 0 <= i < n")
    return i, n


def collect_paths(paths: Iterable[str | Path], shard: tuple[int, int] = (0, 1)) -> list[Path]:
    """Files as given, folders expanded recursively (TIFF pairs grouped), sorted, de-duplicated,
    then shard i of n = every n-th file from the i-th: disjoint, complete, deterministic."""
    from xscreen.scan import list_scans

    found: set[Path] = set()
    for p in map(Path, paths):
        found.update(list_scans(p, recursive=True) if p.is_dir() else [p])
    i, n = shard
    return [p for k, p in enumerate(sorted(found, key=str)) if k % n == i]


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (numpy's MemoryError, torch's CPU allocator or CUDA
    out-of-memory), which is a fault of one too-large bag, not of the batch."""
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def screen_paths(paths: Iterable[str | Path], scorer: Scorer, cfg: ScreenConfig = ScreenConfig(),
                 shard: tuple[int, int] = (0, 1), *,
                 progress: bool = False) -> Iterator[ScreenResult | ScreenFailure | ScreenProgress]:
    """Yield one result or failure per scan file; bad files are reported and skipped. ``progress``:
    also the current scan's ScreenProgress after every batch (the CLI's bar, like the GUI's)."""
    from xscreen.scan import load_scan

    for path in collect_paths(paths, shard):
        t0 = time.perf_counter()
        try:
            scan = load_scan(path)
            for result in screen_steps(scan, scorer, cfg, load_seconds=time.perf_counter() - t0):
                if progress and isinstance(result, ScreenProgress):
                    yield result
        except ScanError as exc:
            yield ScreenFailure(path, str(exc))
        except (ValueError, OSError) as exc:
            yield ScreenFailure(path, f"{path}: {exc}", exc if isinstance(exc, WrongKind) else None)
        except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
            if not out_of_memory(exc):
                raise  # a bug, not this bag: let it surface
            yield ScreenFailure(path, f"{path}: out of memory while screening this scan; it is not cleared "
                                      "(screen it alone, or on a machine with more memory)")
        else:
            yield ScreenResult(path, scan, result)
