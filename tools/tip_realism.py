"""The TIP realism page: projected bags beside directly simulated bags with the same threats.

For each FTI category: a bag is drawn (``tip.simulate.clutter_scene``), imaged, a generated FTI is
scheduled into it and projected (``tip.project``, noise re-applied) twice: as the plain product of
transmissions (what imported FTIs get) and rendered exactly (the default for generated FTIs); the
same object, at the same placement, is added to the bag's areal densities and the bag imaged
directly. All three are rendered in the operator's pseudo-colour side by side, with zooms on the
threat (product, direct), the realism numbers (``tip.realism``) and each projection's error against
the direct image (mean high-channel attenuation and material ratio a_low/a_high over the threat).

    /work/venv/bin/python tools/tip_realism.py [--out resources/readme/tip_realism.png] [--seed 0]
    /work/venv/bin/python tools/tip_realism.py --hardening-table   # beam-hardening error, steel plates
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from xscreen.atomic import atomic_write_bytes
from xscreen.materials import attenuation, render
from xscreen.tip import CATEGORIES, project, schedule, synth_fti
from xscreen.tip import simulate as sim
from xscreen.tip.generate import fti_seed
from xscreen.tip.realism import realism

PITCH = 1.2
W, H = 420, 300


def _errors(proj, direct, inner) -> tuple[float, float]:
    ap, ad = attenuation(proj), attenuation(direct)
    rp, rd = ap[1][inner].mean() / ap[0][inner].mean(), ad[1][inner].mean() / ad[0][inner].mean()
    return float(ap[0][inner].mean() / ad[0][inner].mean() - 1), float(rp / rd - 1)


def pair(category: str, seed: int) -> dict:
    """Projected (product, exact) and direct images of one threat in one bag, and their numbers."""
    scene = sim.clutter_scene(1000 + seed, W, H, pitch_mm=PITCH, items=8)
    bag = sim.image(scene.areal, np.random.default_rng(seed), pitch_mm=PITCH)
    fti = synth_fti(category, fti_seed(seed, category, 0), pitch_mm=1.0)
    place = schedule(bag, fti, np.random.default_rng(seed + 1))
    product = project(bag, fti, place, rng=np.random.default_rng(seed + 2), hardening=False)
    exact = project(bag, fti, place, rng=np.random.default_rng(seed + 2))
    direct = sim.image(sim.with_object(scene, fti, place), np.random.default_rng(seed + 3), pitch_mm=PITCH)
    inner = cv2.erode(exact.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return {"category": category, "product": product.scan, "exact": exact.scan, "direct": direct,
            "mask": exact.mask, "realism": realism(bag, product, fti), "fti": fti.fti_id,
            "err_product": _errors(product.scan, direct, inner), "err_exact": _errors(exact.scan, direct, inner)}


def _label(img: np.ndarray, text: str, y: int, scale: float = 0.45) -> None:
    cv2.putText(img, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(img, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def _zoom(rgb: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    cy, cx = int(ys.mean()), int(xs.mean())
    half = max(ys.max() - ys.min(), xs.max() - xs.min()) // 2 + 8
    pad = cv2.copyMakeBorder(rgb, half, half, half, half, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    crop = pad[cy:cy + 2 * half, cx:cx + 2 * half]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_NEAREST)


def panel(p: dict) -> np.ndarray:
    """One row: product | exact | direct | zoom product | zoom direct, labelled (RGB)."""
    a, e, b = (render(p[k], "pseudo") for k in ("product", "exact", "direct"))
    za, zb = _zoom(a, p["mask"], H), _zoom(b, p["mask"], H)
    row = np.full((H, 3 * W + 2 * H + 40, 3), 255, np.uint8)
    x = 0
    pa, pe = p["err_product"], p["err_exact"]
    for img, text in ((a, f"{p['category']}: PRODUCT {pa[0]:+.1%} / {pa[1]:+.1%}"),
                      (e, f"EXACT {pe[0]:+.1%} / {pe[1]:+.1%}"), (b, "DIRECT simulation"),
                      (za, "product, zoom"), (zb, "direct, zoom")):
        tile = img.copy()
        _label(tile, text, 16)
        row[:, x:x + tile.shape[1]] = tile
        x += tile.shape[1] + 10
    r = p["realism"]
    _label(row, f"realism (product): halo {r.halo:+.4f}  crop edge {r.box_edge:+.4f}  over air {r.over_air:.0%}  "
                f"scale {r.scale_error:+.1%}  noise {r.noise_ratio:.2f}  "
                f"{'OK' if not r.failures() else 'FAIL ' + ','.join(r.failures())}", H - 8, 0.42)
    return row


def _png(rgb: np.ndarray) -> bytes:
    """PNG bytes with a 256-colour palette: a quarter of the size, the look kept (pseudo-colour)."""
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(rgb).quantize(256, method=Image.Quantize.MEDIANCUT).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def hardening_table() -> str:
    """Markdown: error of the plain product and of the exact rendering against direct simulation, for
    a steel plate (80 x 120 px interior) over even cellulose layers, both channels' mean over the plate."""
    from xscreen.physics import MAT_INDEX, MATERIALS
    from xscreen.tip import Placement, fti_from_areal
    lines = ["| steel g/cm2 | cellulose g/cm2 | a_high direct | product: a_high | product: ratio | exact: a_high "
             "| exact: ratio |", "|---|---|---|---|---|---|---|"]
    for fe in (1.0, 3.0, 10.0):
        areal = np.zeros((len(MATERIALS), 100, 140), np.float32)
        areal[MAT_INDEX["fe"], 10:90, 10:130] = fe
        plate = fti_from_areal(areal, category="other", name="plate", pitch_mm=1.0)
        for cell in (2.0, 8.0, 20.0):
            scene = sim.slab_scene(260, 180, "cellulose", cell)
            bag = sim.image(scene.areal, np.random.default_rng(0))
            where = Placement(130, 90)
            direct = sim.image(sim.with_object(scene, plate, where), np.random.default_rng(2))
            errs = []
            for hardening in (False, None):
                proj = project(bag, plate, where, rng=np.random.default_rng(1), hardening=hardening)
                inner = cv2.erode(proj.mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
                errs += _errors(proj.scan, direct, inner)
            a_direct = attenuation(direct)[0][inner].mean()
            lines.append(f"| {fe:g} | {cell:g} | {a_direct:.2f} | " + " | ".join(f"{e:+.1%}" for e in errs) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="resources/readme/tip_realism.png")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the numbers as JSON")
    ap.add_argument("--hardening-table", action="store_true", help="print the beam-hardening table and stop")
    args = ap.parse_args(argv)
    if args.hardening_table:
        print(hardening_table())
        return 0
    pairs = [pair(cat, args.seed + 10 * k) for k, cat in enumerate(CATEGORIES)]
    rows = [panel(p) for p in pairs]
    title = np.full((36, rows[0].shape[1], 3), 255, np.uint8)
    _label(title, "TIP realism: projected (plain product of transmissions | exact rendering) vs DIRECT simulation of "
                  "the same threat in the same bag; errors vs direct: a_high / material ratio over the threat", 22, 0.5)
    page = np.vstack([title] + [np.vstack([r, np.full((8, r.shape[1], 3), 255, np.uint8)]) for r in rows])
    atomic_write_bytes(Path(args.out), _png(page))
    numbers = [{"category": p["category"], "fti": p["fti"], "product_a_high": p["err_product"][0],
                "product_ratio": p["err_product"][1], "exact_a_high": p["err_exact"][0],
                "exact_ratio": p["err_exact"][1], **p["realism"].to_dict()} for p in pairs]
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=1))
    for n in numbers:
        print(f"{n['category']:<9} product a_high {n['product_a_high']:+.3f} ratio {n['product_ratio']:+.3f} | exact "
              f"{n['exact_a_high']:+.3f} {n['exact_ratio']:+.3f} | halo {n['halo']:+.4f} "
              f"box {n['box_edge']:+.4f} over_air {n['over_air']:.3f} scale {n['scale_error']:+.3f} "
              f"noise {n['noise_ratio']:.2f} failures {n['failures']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
