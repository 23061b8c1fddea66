"""The site acceptance test (issue 29): how well a model protects *this* site, without real threats.

FTIs from a TIP library are projected (``tip.random_tip``: Beer-Lambert, placement inside the bag,
seeded) into the site's own benign bags; every TIP image is screened by ``pipeline.screen`` at the
model's calibrated thresholds. Per category: instances *flagged* (a patch that sees the FTI belongs
to an alarm region of a bag that alarms under the one alarm rule: what the operator is shown) and
instances at the review level, each with its exact 95 % interval, beside the benign bags' own alarm
rate. FTIs that trained a known-threat head are kept out by id (``exclude_ids``): measuring a head on
the threats it learnt would flatter it.

The draw is reproducible: TIP image k of bag i uses ``default_rng([seed, i, k])``.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from xscreen.config import ScreenConfig
from xscreen.evaluate import truth
from xscreen.evaluate.core import EvalProgress, _alarm_cells, _origins
from xscreen.metrics import RateInterval, clopper_pearson
from xscreen.pipeline import ScreenFailure, ScreenResult, Screening, collect_paths, screen, screen_paths
from xscreen.scan import ScanError
from xscreen.scoring import Scorer
from xscreen.tip import Library, TipError, load_library, random_tip

WIDE_BELOW = 30  # fewer benign bags than this: the intervals are wide, and the report says so
MAX_ID_FILE_BYTES = 4 << 20


@dataclass(frozen=True)
class TipAcceptConfig:
    screen: ScreenConfig = ScreenConfig()
    per_bag: int = 1  # TIP images per benign bag
    seed: int = 0
    overlap: float = 0.1  # share of a patch the FTI must cover for the patch to see it
    confidence: float = 0.95
    categories: tuple[str, ...] = ()  # () = every category in the library
    exclude_ids: frozenset[str] = frozenset()  # FTIs kept out (e.g. those a known-threat head trained on)


@dataclass(frozen=True)
class Interval:
    k: int
    n: int
    rate: float | None
    lo: float
    hi: float

    @classmethod
    def of(cls, k: int, n: int, confidence: float) -> "Interval":
        ci: RateInterval = clopper_pearson(k, n, confidence)
        return cls(k, n, k / n if n else None, ci.lo, ci.hi)

    def text(self) -> str:
        if self.rate is None:
            return f"{self.k}/{self.n}"
        return f"{self.k}/{self.n} = {100 * self.rate:.1f} % [{100 * self.lo:.1f}, {100 * self.hi:.1f}]"


@dataclass(frozen=True)
class CategoryAccept:
    category: str
    instances: int
    flagged: Interval  # inside an alarm region of an alarmed bag
    review: Interval  # some patch that sees it reaches the review level
    bags_alarmed: Interval  # TIP images whose bag alarms at all (anywhere)


@dataclass
class TipAcceptResult:
    model_id: str
    library: str
    n_library_ftis: int
    n_excluded: int  # library FTIs kept out by id
    n_benign_bags: int
    per_bag: int
    seed: int
    confidence: float
    benign_alarm: Interval
    categories: list[CategoryAccept]
    warnings: list[str]
    failures: list[str]
    seconds: float
    fti_ids_used: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def category(self, name: str) -> CategoryAccept:
        return next(c for c in self.categories if c.category == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        pc = f"{100 * self.confidence:g} %"
        lines = [f"# Site acceptance test of `{self.model_id}`", "",
                 f"TIP library `{self.library}`: {self.n_library_ftis} FTIs, {self.n_excluded} kept out by id; "
                 f"{self.n_benign_bags} benign bags of this site, {self.per_bag} TIP image(s) each (seed "
                 f"{self.seed}); {len(self.failures)} unreadable or without room.", "",
                 f"Benign bags that alarm: {self.benign_alarm.text()} ({pc} interval)", "",
                 f"| category | TIP images | in alarm region ({pc} interval) | at review level | bag alarmed |",
                 "|---|---|---|---|---|"]
        lines += [f"| {c.category} | {c.instances} | {c.flagged.text()} | {c.review.text()} | "
                  f"{c.bags_alarmed.text()} |" for c in self.categories]
        lines += [f"\nwarning: {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"


@dataclass
class _Tally:
    benign: list[bool] = field(default_factory=list)
    rows: list[tuple[str, bool, bool, bool]] = field(default_factory=list)  # category, flagged, review, alarm
    failures: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)


def read_id_file(path: str | Path) -> frozenset[str]:
    """FTI ids to keep out: a text file (one id a line, '#' comments), a JSON list, or a JSON object
    with ``fti_ids`` (a known-threat manifest). ValueError naming the file and the fault."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_ID_FILE_BYTES:
            raise ValueError(f"{path}: larger than {MAX_ID_FILE_BYTES} bytes: not an id list")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the id list ({exc})") from exc
    if text.lstrip()[:1] in ("[", "{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        ids = doc.get("fti_ids") if isinstance(doc, dict) else doc
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"{path}: expected a list of FTI id strings (or an object with 'fti_ids')")
    else:
        ids = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    return frozenset(i for i in ids if i)


def kept_library(library: Library, exclude: Iterable[str], categories: tuple[str, ...] = ()) -> Library:
    """A copy of ``library`` without the excluded ids (and only ``categories`` when given)."""
    out = set(exclude)
    keep = [f for f in library.ftis if f.fti_id not in out and (not categories or f.category in categories)]
    if not keep:
        raise ValueError(f"{library.path}: no FTI left after keeping out {len(out)} id(s)"
                         + (f" and keeping categories {', '.join(categories)}" if categories else ""))
    return Library(library.path, keep)


def _seen(s: Screening, mask: np.ndarray, overlap: float) -> np.ndarray:
    """(rows * cols,) bool: non-air patches that see the FTI footprint ``mask`` (H, W)."""
    origins = _origins(s)
    hit = truth.threat_patches(mask.astype(np.uint8), origins, s.patch_size, overlap)
    return hit & ~s.air_grid.ravel()


def _tip_bag(tally: _Tally, scan, lib: Library, scorer: Scorer, cfg: TipAcceptConfig, i: int) -> None:
    for k in range(cfg.per_bag):
        rng = np.random.default_rng([cfg.seed, i, k])
        try:
            tip = random_tip(scan, lib, rng, categories=cfg.categories or None)
        except TipError as exc:
            tally.failures.append(str(exc))
            continue
        s = screen(tip.projected.scan, scorer, cfg.screen)
        seen = _seen(s, tip.projected.mask, cfg.overlap)
        scores = s.score_grid.ravel()
        flagged = bool((_alarm_cells(s) & seen).any())
        review = bool((scores[seen] >= s.threshold).any())
        tally.rows.append((tip.fti.category, flagged, review, bool(s.alarm)))
        tally.used.add(tip.fti.fti_id)


def _scorer(model: Any, cfg: ScreenConfig) -> tuple[Scorer, ScreenConfig]:
    scorer = model if isinstance(model, Scorer) else Scorer(model, cfg.device, cfg.precision, cfg.batch_size)
    if scorer.threshold is None and cfg.threshold is None:
        raise ValueError(f"{getattr(scorer, 'model_id', model)}: the model is not calibrated: the site acceptance "
                         "test needs its alarm thresholds (xscreen calibrate first, or give --threshold)")
    return scorer, replace(cfg, gate=0.0)  # the exact score everywhere, as evaluate does


def tip_accept(model: Any, library: str | Path | Library, benign_dir: str | Path,
               cfg: TipAcceptConfig = TipAcceptConfig()) -> Iterator[EvalProgress | TipAcceptResult]:
    """Yield an EvalProgress per benign bag (split "tip"), then the TipAcceptResult."""
    t0 = time.perf_counter()
    full = library if isinstance(library, Library) else load_library(library)
    lib = kept_library(full, cfg.exclude_ids, cfg.categories)
    scorer, screen_cfg = _scorer(model, cfg.screen)
    cfg = replace(cfg, screen=screen_cfg)
    paths = collect_paths([benign_dir])
    if len(paths) < 2:
        raise ValueError(f"{benign_dir}: the site acceptance test needs at least 2 benign bags, found {len(paths)}")
    tally = _Tally()
    for i, item in enumerate(screen_paths(paths, scorer, screen_cfg)):
        fault = item.fault if isinstance(item, ScreenFailure) else ""
        if isinstance(item, ScreenResult):
            tally.benign.append(bool(item.screening.alarm))
            try:
                _tip_bag(tally, item.scan, lib, scorer, cfg, i)
            except ScanError as exc:
                fault = str(exc)
        if fault:
            tally.failures.append(fault)
        yield EvalProgress(i + 1, len(paths), str(item.path), "tip", not fault, fault)
    yield _result(tally, scorer, full, lib, cfg, time.perf_counter() - t0, benign_dir)


def _result(tally: _Tally, scorer: Scorer, full: Library, lib: Library, cfg: TipAcceptConfig,
            seconds: float, benign_dir) -> TipAcceptResult:
    c = cfg.confidence
    cats = []
    for name in lib.categories():
        rows = [r for r in tally.rows if r[0] == name]
        n = len(rows)
        cats.append(CategoryAccept(name, n, Interval.of(sum(r[1] for r in rows), n, c),
                                   Interval.of(sum(r[2] for r in rows), n, c),
                                   Interval.of(sum(r[3] for r in rows), n, c)))
    benign = Interval.of(sum(tally.benign), len(tally.benign), c)
    warnings = []
    if len(tally.benign) < WIDE_BELOW:
        warnings.append(f"only {len(tally.benign)} benign bags: the benign alarm rate's {100 * c:g} % interval "
                        f"is [{100 * benign.lo:.1f} %, {100 * benign.hi:.1f} %] wide, and each category's is as "
                        f"wide for its count; screen more of this site's benign bags for a usable figure")
    if tally.used and cfg.exclude_ids & tally.used:  # kept_library makes this impossible; a guard, not a case
        raise AssertionError("an excluded FTI was projected")
    return TipAcceptResult(
        model_id=scorer.model_id, library=str(full.path), n_library_ftis=len(full),
        n_excluded=sum(1 for f in full.ftis if f.fti_id in cfg.exclude_ids), n_benign_bags=len(tally.benign),
        per_bag=cfg.per_bag, seed=cfg.seed, confidence=c, benign_alarm=benign, categories=cats,
        warnings=warnings, failures=tally.failures, seconds=seconds, fti_ids_used=sorted(tally.used),
        settings={"benign": str(benign_dir), "stride": cfg.screen.stride, "overlap": cfg.overlap,
                  "categories": list(cfg.categories), "device": str(scorer.device),
                  "threshold_override": cfg.screen.threshold})


def run_tip_accept(model: Any, library, benign_dir, cfg: TipAcceptConfig = TipAcceptConfig(),
                   out: str | Path | None = None, on_progress=None) -> TipAcceptResult:
    """Drain ``tip_accept``; write results.json and results.md into ``out`` when given (atomically)."""
    from xscreen.atomic import atomic_write_text

    result = None
    for item in tip_accept(model, library, benign_dir, cfg):
        if isinstance(item, TipAcceptResult):
            result = item
        elif on_progress is not None:
            on_progress(item)
    assert result is not None
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        result.files = [str(out / "results.json"), str(out / "results.md")]
        atomic_write_text(out / "results.md", result.to_markdown())
        atomic_write_text(out / "results.json", result.to_json())
    return result
