"""Which of the files given to ``xscreen train`` are trained on, and why the others are not.

The training wizard's inventory (``wizard.take_inventory``) reads every file once; the CLI uses
the same check, so a folder with one unreadable or implausible file (an all-zero mask PNG next to
the bags of an ``xscreen synth`` output, a truncated TIFF) is trained on without it, the skipped
files listed with the reason; so are bags that the set's own labels.csv marks as threats. Only an
input with nothing usable left is refused.
"""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from xscreen.wizard import Inventory, take_inventory


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


@dataclass(frozen=True)
class TrainingInputs:
    """The scans to train (and validate) on, all of one kind, and every file left out."""

    benign: tuple[Path, ...]
    val: tuple[Path, ...]
    kind: str
    skipped: tuple[Skipped, ...]


class NothingToTrainOn(ValueError):
    """No usable scan is left after skipping; the message names the fault when there is one."""


def check_inputs(benign: Iterable[str], val: Iterable[str], quiet: bool = False) -> TrainingInputs:
    """Read every benign (and --val) file once; keep the readable ones of the majority kind."""
    inv_b, gone_b = _inventory(benign, "checking benign", quiet)
    kind = _majority_kind(inv_b, gone_b)
    keep_b, off_b = _of_kind(inv_b, kind)
    val = tuple(val)
    keep_v: list[Path] = []
    off_v: list[Skipped] = []
    gone_v: list[Skipped] = []
    if val:
        inv_v, gone_v = _inventory(val, "checking val", quiet)
        keep_v, off_v = _of_kind(inv_v, kind)
        if not keep_v:
            raise _nothing("--val", gone_v + off_v)
    return TrainingInputs(tuple(keep_b), tuple(keep_v), kind, tuple(gone_b + off_b + gone_v + off_v))


def print_summary(inputs: TrainingInputs) -> None:
    for s in inputs.skipped:
        print(f"skipped {s.path}: {s.reason}", file=sys.stderr)
    val = f", {len(inputs.val)} for validation" if inputs.val else ""
    print(f"training on {len(inputs.benign)} {inputs.kind} scan(s){val}; {len(inputs.skipped)} file(s) "
          f"skipped", file=sys.stderr)


def _inventory(items: Iterable[str], label: str, quiet: bool) -> tuple[Inventory, list[Skipped]]:
    """The wizard's inventory of the existing inputs; inputs that name nothing are skipped here,
    since the inventory would report them as a file that failed to load."""
    from tqdm import tqdm

    from xscreen.scan import list_scans, pair_files

    items = [Path(p) for p in items]
    present, gone = [], []
    for p in items:
        if p.is_dir() and not list_scans(p, recursive=True):
            gone.append(Skipped(p, "folder holds no scan files"))
        elif p.exists() or any(pair_files(p)):
            present.append(p)
        else:
            gone.append(Skipped(p, "no such file or folder"))
    inv = Inventory()
    with tqdm(desc=label, unit="file", disable=quiet, file=sys.stderr) as bar:
        for done, total, inv in take_inventory(present):
            bar.total = total
            bar.update(done - bar.n)
    inv, threats = _without_labelled_threats(inv, items)
    return inv, gone + [Skipped(p, fault) for p, fault in inv.unreadable] + threats


def _without_labelled_threats(inv: Inventory, items: list[Path]) -> tuple[Inventory, list[Skipped]]:
    """Drop bags that the set's own labels.csv marks as threats: ``xscreen synth OUT`` puts threat
    bags next to benign ones, and a benign model trained on them learns the threats as normal."""
    from xscreen.evaluate.annotations import scan_keys
    from xscreen.evaluate.truth import read_labels_csv
    from xscreen.scan import ScanError

    threat_types: dict[str, tuple[Path, list[str]]] = {}
    for folder in {f for p in items if p.is_dir() for f in (p, p.parent)}:
        try:
            labels = read_labels_csv(folder / "labels.csv")
        except ScanError:
            continue  # a labels file we cannot read is no reason to stop training
        threat_types.update({k: (folder / "labels.csv", v) for k, v in labels.items() if v})
    keep, skipped = [], []
    for s in inv.scans:
        hit = next((threat_types[k] for k in scan_keys(s.path) if k in threat_types), None)
        if hit is None:
            keep.append(s)
        else:
            skipped.append(Skipped(s.path, f"labelled a threat bag ({', '.join(hit[1])}) in {hit[0]}"))
    return Inventory(tuple(keep), inv.unreadable), skipped


def _majority_kind(inv: Inventory, gone: list[Skipped]) -> str:
    """A model is trained for one input kind; files of another kind are the odd ones out. A tie
    has no odd one out, so it is refused rather than guessed."""
    if not inv.scans:
        raise _nothing("benign", gone)
    ranked = Counter(s.kind for s in inv.scans).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(ranked))
        raise NothingToTrainOn(f"mixed scan kinds ({kinds}) in equal numbers: a model is trained for "
                               "one kind; give the scans of one kind")
    return ranked[0][0]


def _of_kind(inv: Inventory, kind: str) -> tuple[list[Path], list[Skipped]]:
    n = len(inv.scans)
    keep = [s.path for s in inv.scans if s.kind == kind]
    off = [Skipped(s.path, f"a {s.kind} image; training on the {kind} scans ({len(keep)} of {n} readable)")
           for s in inv.scans if s.kind != kind]
    return keep, off


def _nothing(what: str, skipped: list[Skipped]) -> NothingToTrainOn:
    if len(skipped) == 1:
        return NothingToTrainOn(f"{skipped[0].path}: {skipped[0].reason}")
    return NothingToTrainOn(f"no usable {what} scans: {len(skipped)} file(s) skipped" +
                            ("".join(f"\n  {s.path}: {s.reason}" for s in skipped)
                             if skipped else " (no scan files given)"))
