"""Physically grounded synthetic dual-energy bags, with and without threats, and datasets of them.

A scene is accumulated as per-material areal-density maps (M, H, W) g/cm^2 (``synth.draw``), then
imaged in one pass (``physics.transmission``): Beer-Lambert over a sandwich detector's
polychromatic spectrum, detector blur, Poisson photon noise on I0 = 60 000 counts plus electronic
noise, uint16 out with bright = air. Everything is drawn from ``np.random.default_rng(seed)``, so a
seed gives the same bag bit for bit.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from xscreen.atomic import atomic_write_bytes, atomic_write_text
from xscreen.physics import transmission
from xscreen.scan import Scan
from xscreen.synth.draw import Canvas, Pose, ellipse, line, polygon, rect
from xscreen.synth.items import BENIGN
from xscreen.synth.threats import THREAT_TYPES, THREATS

I0 = 60000.0  # open-beam counts per pixel
ELECTRONIC_NOISE = 6.0  # counts, rms
BLUR_SIGMA = 0.6  # px, scintillator light spread
THREAT_MIX = ("handgun", "handgun", "knife", "knife", "gun_part", "ied", "ied")  # draw frequencies


@dataclass(frozen=True)
class ThreatInfo:
    type: str
    box: tuple[int, int, int, int]  # (x, y, w, h) px, tight around the threat's mask


@dataclass
class SynthBag:
    scan: Scan  # dual, channels (2, H, W) uint16 [high, low]
    mask: np.ndarray  # (H, W) uint8: 0 background, k = pixels of threat k (1-based, order of ``threats``)
    threats: list[ThreatInfo] = field(default_factory=list)


@dataclass(frozen=True)
class SynthProgress:
    done: int
    total: int
    stem: str
    label: str  # "benign" | "threat"
    path: Path


def synth_bag(seed: int, *, threat: bool = False, width: int | None = None) -> SynthBag:
    """One bag: scan.channels (2, H, W) uint16 [high, low], mask (H, W) uint8.

    ``width`` = W px in [64, 4000] (default: random 500-1000); H is 0.6-0.8 of it.
    """
    rng = np.random.default_rng(seed)
    width = int(rng.integers(500, 1001)) if width is None else int(width)
    if not 64 <= width <= 4000:
        raise ValueError(f"width must be within 64..4000 px (got {width})")
    height = max(64, int(round(width * rng.uniform(0.6, 0.8))))
    bag_cm = rng.uniform(55, 75)
    cv = Canvas(height, width, pitch_cm=bag_cm / (0.88 * width))
    outer, box = _bag_box(cv, rng)
    _fill(cv, rng, box)
    kinds = _add_threats(cv, rng, box) if threat else []
    _clip_to_bag(cv, outer)
    # Boxes from the final mask: after clipping, and after a later threat may have covered a few
    # pixels of an earlier one (overlapping pixels carry the later threat's number).
    infos = [ThreatInfo(kind, _box(cv.mask == k)) for k, kind in enumerate(kinds, start=1)]
    _bag_shell(cv, rng, outer)
    counts = _image(cv.areal, rng)
    meta = {"generator": "xscreen.synth", "seed": int(seed), "threat": bool(threat),
            "threat_types": [t.type for t in infos]}
    scan = Scan(scan_id=f"synth-{seed}", kind="dual", channels=counts, i0=I0, path=None,
                pixel_pitch_mm=10.0 * cv.pitch_cm, metadata=meta)
    return SynthBag(scan=scan, mask=cv.mask, threats=infos)


def _bag_box(cv: Canvas, rng: np.random.Generator):
    """Outer bag rectangle and the inner box where contents go, both (x0, y0, x1, y1) px."""
    mx, my = 0.06 * cv.width, rng.uniform(0.06, 0.1) * cv.height
    inset = 2.5 / cv.pitch_cm
    outer = (mx, my, cv.width - mx, cv.height - my)
    return outer, (outer[0] + inset, outer[1] + inset, outer[2] - inset, outer[3] - inset)


def _clip_to_bag(cv: Canvas, outer) -> None:
    """Contents stop at the bag wall: zero density and threat mask outside it."""
    x0, y0, x1, y1 = (int(round(v)) for v in outer)
    keep = np.zeros((cv.height, cv.width), bool)
    keep[y0:y1, x0:x1] = True
    cv.areal[:, ~keep] = 0.0
    cv.mask[~keep] = 0


def _bag_shell(cv: Canvas, rng: np.random.Generator, outer) -> None:
    """Fabric shell, rim, zips, trolley rods, wheels around the outer box (x0, y0, x1, y1) px."""
    w = cv.width
    x0, y0, x1, y1 = outer
    corners = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    polygon(cv, corners, "pe", rng.uniform(0.25, 0.45))  # fabric, top and bottom
    line(cv, Pose(0, 0, 0, 1.0), corners, 1.5 / cv.pitch_cm, "pe", 1.2, "round", closed=True)  # rim piping
    inset = 2.5 / cv.pitch_cm
    zip_path = corners + np.array([(inset, inset), (-inset, inset), (-inset, -inset), (inset, -inset)])
    _zip(cv, zip_path, rng)
    rods_y = (y0 + (y1 - y0) * 0.3, y0 + (y1 - y0) * 0.7)
    rod_side = rng.random() < 0.5
    for ry in rods_y:  # telescopic trolley tubes along the bag, aluminium with steel joints
        xa, xb = (x0 + 0.02 * w, x0 + 0.75 * (x1 - x0)) if rod_side else (x1 - 0.75 * (x1 - x0), x1 - 0.02 * w)
        line(cv, Pose(0, 0, 0, 1.0), [(xa, ry), (xb, ry)], 3.0 / cv.pitch_cm, "al", 1.6, "tube")
        for xj in (xa, (xa + xb) / 2, xb):  # steel collars where the tube sections telescope
            rect(cv, Pose(xj, ry, 0, cv.pitch_cm), 0, 0, 1.2, 2.6, "fe", 0.5, "round")
    for wy in (y0 + 2 / cv.pitch_cm, y1 - 2 / cv.pitch_cm):  # wheels with steel axles
        wx = x1 - 3 / cv.pitch_cm if rod_side else x0 + 3 / cv.pitch_cm
        ellipse(cv, Pose(wx, wy, 0, cv.pitch_cm), 0, 0, 3.0, 3.0, "pe", 4.0)
        ellipse(cv, Pose(wx, wy, 0, cv.pitch_cm), 0, 0, 0.5, 0.5, "fe", 4.0)


def _zip(cv: Canvas, path_px: np.ndarray, rng: np.random.Generator) -> None:
    """Metal zip teeth every ~4 mm around the closed path, and the slider."""
    mat = rng.choice(["cu", "fe"])
    closed = np.vstack([path_px, path_px[:1]])
    seg = np.diff(closed, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    s = np.arange(0, lengths.sum(), 0.4 / cv.pitch_cm)
    cum = np.concatenate([[0], np.cumsum(lengths)])
    pts = np.stack([np.interp(s, cum, closed[:, 0]), np.interp(s, cum, closed[:, 1])], 1)
    p0 = Pose(0, 0, 0, 1.0)
    for a, b in zip(pts[0::2], pts[1::2]):
        line(cv, p0, [a, b], 0.35 / cv.pitch_cm, mat, 0.3, "flat")
    k = int(rng.integers(0, len(pts)))
    rect(cv, Pose(*pts[k], 0, cv.pitch_cm), 0, 0, 2.5, 1.2, "fe", 1.5)


def _random_pose(cv: Canvas, rng: np.random.Generator, box, margin: float = 0.08) -> Pose:
    x0, y0, x1, y1 = box
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    return Pose(rng.uniform(x0 + mx, x1 - mx), rng.uniform(y0 + my, y1 - my), rng.uniform(0, 2 * np.pi),
                cv.pitch_cm, rng.uniform(0.85, 1.15), bool(rng.random() < 0.5))


def _fill(cv: Canvas, rng: np.random.Generator, box) -> None:
    """8-25 overlapping benign items, clothes most often, placed anywhere inside the bag."""
    names = list(BENIGN)
    freq = np.array([BENIGN[n][1] for n in names])
    for name in rng.choice(names, size=int(rng.integers(8, 26)), p=freq / freq.sum()):
        BENIGN[name][0](cv, _random_pose(cv, rng, box), rng)


def _add_threats(cv: Canvas, rng: np.random.Generator, box) -> list[str]:
    """1-2 threats (types returned in mask order 1, 2) at random pose and scale, 15+ cm apart so one
    never hides the other's mask; 40 % get a benign item laid on top of them (occlusion)."""
    kinds: list[str] = []
    centres: list[tuple[float, float]] = []
    for k in range(1, int(rng.integers(1, 3)) + 1):
        kind = str(rng.choice(THREAT_MIX))
        for _ in range(20):
            pose = _random_pose(cv, rng, box, margin=0.2)
            if all(np.hypot(pose.cx - x, pose.cy - y) * cv.pitch_cm > 15 for x, y in centres):
                break
        cv.tag = k
        THREATS[kind](cv, pose, rng)
        cv.tag = 0
        if rng.random() < 0.4:
            name = str(rng.choice(["clothes", "book", "cable", "charger"]))
            BENIGN[name][0](cv, Pose(pose.cx, pose.cy, rng.uniform(0, 6.3), cv.pitch_cm), rng)
        kinds.append(kind)
        centres.append((pose.cx, pose.cy))
    return kinds


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return (0, 0, 0, 0)
    return (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))


def _image(areal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(M, H, W) g/cm^2 -> (2, H, W) uint16 detector counts [high, low] with blur and noise."""
    np.maximum(areal, 0.0, out=areal)
    t = transmission(areal)
    counts = np.empty(t.shape, np.uint16)
    for c in range(2):
        expected = cv2.GaussianBlur(t[c], (0, 0), BLUR_SIGMA) * np.float32(I0)
        # Photon noise: Gaussian with variance = mean (plus electronic) wherever the count is large
        # enough for that to be exact to well under a count; true Poisson for the few dark pixels.
        noisy = rng.standard_normal(expected.shape, dtype=np.float32)
        noisy *= np.sqrt(expected + np.float32(ELECTRONIC_NOISE ** 2))
        noisy += expected
        dark = expected < 50.0
        if dark.any():
            lam = expected[dark]
            noisy[dark] = rng.poisson(lam) + rng.normal(0.0, ELECTRONIC_NOISE, lam.shape)
        counts[c] = np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)
    return counts


def bag_seed(seed: int, label: str, index: int) -> int:
    """Seed of bag ``index`` of a dataset: independent streams per (dataset seed, label, index)."""
    return int(np.random.SeedSequence([int(seed), 1 if label == "threat" else 0, int(index)]).generate_state(1)[0])


def write_dataset(out: str | Path, n_benign: int, n_threat: int, seed: int, fmt: str = "h5",
                  width: int | None = None) -> Iterator[SynthProgress]:
    """Write ``n_benign`` + ``n_threat`` bags under ``out``, yielding after each one.

    Layout: out/benign/<stem>.h5, out/threat/<stem>.h5 (or <stem>_high.tif/_low.tif with fmt="tiff"),
    out/labels.csv (stem,label,threat_types with types joined by ';'), out/boxes/<stem>.json,
    out/masks/<stem>.png. labels.csv is (re)written when the generator finishes or is closed early,
    listing exactly the bags written.
    """
    if fmt not in ("h5", "tiff"):
        raise ValueError(f"unknown format '{fmt}' (choose h5 or tiff)")
    if n_benign < 0 or n_threat < 0 or n_benign + n_threat == 0:
        raise ValueError(f"need at least one bag and no negative counts (benign={n_benign}, threat={n_threat})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    jobs = [("benign", i) for i in range(n_benign)] + [("threat", i) for i in range(n_threat)]
    rows: list[tuple[str, str, str]] = []
    try:
        for done, (label, i) in enumerate(jobs, start=1):
            stem = f"{label}_{seed}_{i:05d}"
            bag = synth_bag(bag_seed(seed, label, i), threat=label == "threat", width=width)
            bag.scan.scan_id = stem
            path = _write_bag(out, label, stem, bag, fmt)
            rows.append((stem, label, ";".join(t.type for t in bag.threats)))
            yield SynthProgress(done, len(jobs), stem, label, path)
    finally:
        if rows:
            _write_labels(out / "labels.csv", rows)


def _write_bag(out: Path, label: str, stem: str, bag: SynthBag, fmt: str) -> Path:
    from xscreen import scan as scan_io  # writers live with the readers (scan.py)

    folder = out / label
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "h5":
        path = folder / f"{stem}.h5"
        scan_io.save_h5(bag.scan, path)
    else:
        path = folder / f"{stem}_high.tif"
        scan_io.save_tiff_pair(bag.scan, folder / stem)
    ok, png = cv2.imencode(".png", bag.mask)
    if not ok:
        raise RuntimeError(f"{stem}: could not encode the mask PNG")
    atomic_write_bytes(out / "masks" / f"{stem}.png", png.tobytes())
    boxes = {"stem": stem, "label": label, "width": bag.scan.width, "height": bag.scan.height,
             "threats": [{"id": k, "type": t.type, "box": list(t.box)} for k, t in enumerate(bag.threats, 1)]}
    atomic_write_text(out / "boxes" / f"{stem}.json", json.dumps(boxes, indent=1))
    return path


def _write_labels(path: Path, rows: list[tuple[str, str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["stem", "label", "threat_types"])
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
