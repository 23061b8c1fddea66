"""The lane loop: complete bags from an Inbox, screened through ``pipeline.screen_paths`` (the
generator ``xscreen screen`` uses) by the model of the bag's input kind, recorded and moved to done.

``run_lane`` is a generator (DESIGN.md: long jobs are generators): it yields an IntakeResult per
bag and an IntakeIdle after every empty poll, so a consumer that stops pulling stops the lane
within one poll or one bag. A bag of a kind no loaded model takes is stored with a notice.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from xscreen.config import ScreenConfig
from xscreen.intake.inbox import Arrival, Inbox, Record
from xscreen.intake.waker import Waker

# on_result(arrival, ScreenResult) -> output name: runs before the record is written, so a crash
# inside it screens the bag again on the next start (its outputs are keyed by content: rewritten)
OnResult = Callable[[Arrival, Any], str]
PRUNE_EVERY = 3600.0  # seconds between retention sweeps of the done folder


@dataclass
class IntakeResult:
    """One bag taken from the inbox. ``screening``/``scan`` are None for failed and stored bags."""

    arrival: Arrival
    record: Record
    screening: Any | None = None
    scan: Any | None = None

    @property
    def done_path(self) -> Path:
        """What to open to review the bag now (its first done file: a pair's _high half)."""
        return Path(self.record.done_files[0])


@dataclass(frozen=True)
class IntakeIdle:
    """Nothing complete right now; ``waiting``: files seen but not complete yet."""

    waiting: int


def guess_kind(path: Path) -> str:
    """'dual' | 'rgb' | 'gray' from the file's name and header (no pixels read); '' if unknown."""
    from xscreen.scan._tiff import pair_stem

    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5", ".hdf") or pair_stem(path) is not None:
        return "dual"
    try:
        if suffix in (".dcs", ".dcm", ".dicom"):
            import pydicom

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            if int(ds.get("NumberOfFrames") or 1) == 2:
                return "dual"  # the two energies of one bag in one object
            return "rgb" if int(ds.get("SamplesPerPixel") or 1) == 3 else "gray"
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tf:
                return "rgb" if tf.pages[0].samplesperpixel >= 3 else "gray"
        from PIL import Image

        with Image.open(path) as im:  # lazy: reads the header only
            return "rgb" if im.mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr") else "gray"
    except Exception:
        return ""  # the reader will say what is wrong with it


def load_scorers(models: list[str | Path] | None = None, device: str = "auto", precision: str = "auto"
                 ) -> dict[str, Any]:
    """A Scorer per input kind: the given model files, else the shipped ones (``default*`` first).
    Raises ModelError / OSError naming the file; two given models of one kind is a ValueError."""
    from xscreen.paths import models_dir
    from xscreen.scoring import Scorer

    explicit = models is not None and len(models) > 0
    if not explicit:
        shipped = sorted(p for p in models_dir().glob("*.xsm") if not p.name.startswith("."))
        models = sorted(shipped, key=lambda p: (not p.name.startswith("default"), p.name))
    out: dict[str, Any] = {}
    for m in models or []:
        scorer = Scorer(m, device=device, precision=precision)
        if scorer.kind in out:
            if explicit:
                raise ValueError(f"{m}: a second model for {scorer.kind} scans ({out[scorer.kind].model_id} "
                                 "is already loaded); give one model per input kind")
            continue
        out[scorer.kind] = scorer
    return out


def screen_arrival(inbox: Inbox, arrival: Arrival, scorers: Mapping[str, Any], cfg: ScreenConfig,
                   on_result: OnResult | None = None) -> IntakeResult | None:
    """Screen one bag, record it, move it to done. None when its record already exists (a restart
    after a crash between record and move, or the same bytes sent again): it is only moved."""
    from xscreen.pipeline import ScreenFailure, screen_paths

    if inbox.record_for(arrival.key) is not None:
        inbox.move_done(arrival)
        return None
    names = [f.name for f in arrival.files]
    kind = guess_kind(arrival.path)
    scorer = scorers.get(kind) if kind else (next(iter(scorers.values())) if len(scorers) == 1 else None)
    rec = Record(arrival.key, names, arrival.seen, 0.0, "stored", kind=kind)
    result = IntakeResult(arrival, rec)
    if scorer is None:
        rec.message = (f"no model for {kind} scans is loaded: stored unscreened" if kind else
                       "input kind unknown and several models loaded: stored unscreened")
    else:
        item = None
        try:
            for item in screen_paths([arrival.path], scorer, cfg):
                pass
        except Exception as exc:  # a bug must not stop the lane: this bag fails, loudly, the next is taken
            item = ScreenFailure(arrival.path, f"{arrival.path}: internal error while screening "
                                               f"({type(exc).__name__}: {exc})")
        if isinstance(item, ScreenFailure) or item is None:
            rec.status, rec.message = "failed", item.fault if item is not None else f"{arrival.path}: vanished"
        else:
            s = item.screening
            rec.status, rec.alarm, rec.model_id = "screened", bool(s.alarm), s.model_id
            rec.scan_score, rec.scan_rel, rec.kind = float(s.scan_score), float(s.scan_rel), s.kind
            result.screening, result.scan = s, item.scan
            if on_result is not None:
                rec.output = on_result(arrival, item)
    rec.finished = time.time()
    inbox.finish(arrival, rec)
    return result


def run_lane(inbox: Inbox, scorers: Mapping[str, Any], cfg: ScreenConfig = ScreenConfig(), *,
             poll: float = 0.5, on_result: OnResult | None = None, waker: Waker | None = None,
             max_bags: int | None = None) -> Iterator[IntakeResult | IntakeIdle]:
    """Forever (or ``max_bags``): each complete bag in arrival order -> IntakeResult; an empty poll
    -> IntakeIdle. ``poll`` also bounds how late a settled file is noticed without an event."""
    own = waker is None
    waker = waker or Waker(inbox.folder)
    step = min(poll, inbox.rules.settle / 4) if inbox.rules.settle > 0 else poll
    done, pruned = 0, time.monotonic()
    try:
        while max_bags is None or done < max_bags:
            if time.monotonic() - pruned > PRUNE_EVERY:  # a lane runs for months: retention applies as it runs
                inbox.prune()
                pruned = time.monotonic()
            arrivals = inbox.ready()
            for arrival in arrivals:
                result = screen_arrival(inbox, arrival, scorers, cfg, on_result)
                if result is not None:
                    done += 1
                    yield result
                    if max_bags is not None and done >= max_bags:
                        return
            if not arrivals:
                yield IntakeIdle(len(inbox.candidates()))
                waker.wait(max(step, 0.02))
    finally:
        if own:
            waker.close()
