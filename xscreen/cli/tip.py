"""``xscreen tip build|import|list|project|stats``: the threat image projection (TIP) library and tools."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xscreen.tip.fti import CATEGORIES


def _box(text: str) -> tuple[int, int, int, int]:
    try:
        parts = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not X,Y,W,H in whole pixels") from None
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"'{text}' is not X,Y,W,H")
    return parts  # type: ignore[return-value]


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 < v < 1e6:
        raise argparse.ArgumentTypeError(f"must be above 0 (got {text})")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tip", help="threat image projection: build, import, list, project, statistics",
                       description="Threat image projection (TIP): a library of fictional threat images (FTIs) "
                       "and their projection into bags; operator TIP statistics from the audit database.")
    tsub = p.add_subparsers(dest="tip_command", metavar="ACTION", required=True)
    _add_build(tsub)
    _add_import(tsub)
    ls = tsub.add_parser("list", help="one line per FTI: id, category, kind, source, size, name")
    ls.add_argument("lib")
    ls.set_defaults(func=run_list)
    _add_project(tsub)
    st = tsub.add_parser("stats", help="per operator and category: hit rate, false alarms, d', event counts")
    st.add_argument("--audit", required=True, help="audit database (read only)")
    st.add_argument("--csv", help="also write the table as CSV")
    st.add_argument("--html", help="also write the table as HTML")
    st.add_argument("--min-events", type=int, default=100, help="warn below this many TIP events (100)")
    st.set_defaults(func=run_stats)


def _add_build(tsub: argparse._SubParsersAction) -> None:
    b = tsub.add_parser("build", help="generate a library from the product's physics (every category)")
    b.add_argument("lib", help="library folder (created, or added to)")
    b.add_argument("--per-category", type=int, default=10, help="FTIs per category (default 10)")
    b.add_argument("--seed", type=int, default=0, help="seed: same seed, same FTIs (default 0)")
    b.add_argument("--pitch-mm", type=_positive, default=1.0, help="FTI pixel pitch in mm (default 1.0)")
    b.set_defaults(func=run_build)


def _add_import(tsub: argparse._SubParsersAction) -> None:
    i = tsub.add_parser("import", help="add a threat scanned alone in an empty tray (or an annotated RGB crop)",
                        description="Transmission = scan / tray level (a scan of the empty tray with --tray, "
                        "else the background's median), cropped and masked to the object. An RGB pseudo-colour "
                        "export gives an APPROXIMATE transmission (display value / background): usable only "
                        "for RGB scans of the same look.")
    i.add_argument("lib", help="library folder (created, or added to)")
    i.add_argument("scan", help="scan of the threat alone (any scan format)")
    i.add_argument("--category", required=True, choices=CATEGORIES)
    i.add_argument("--name", help="display name (default: the file's stem)")
    i.add_argument("--box", type=_box, help="X,Y,W,H crop around the threat, in scan pixels")
    i.add_argument("--tray", help="scan of the empty tray (same size) to divide by")
    i.add_argument("--mask", help="annotation image: non-zero = the threat (same size as the scan)")
    i.add_argument("--pitch-mm", type=_positive, help="pixel pitch, if the scan records none")
    i.add_argument("--threshold", type=_positive, default=0.03, help="attenuation that counts as object (0.03)")
    i.set_defaults(func=run_import)


def _add_project(tsub: argparse._SubParsersAction) -> None:
    pr = tsub.add_parser("project", help="project a random FTI into a scan; writes the scan and its placement JSON")
    pr.add_argument("lib")
    pr.add_argument("scan")
    pr.add_argument("--out", required=True, help="projected scan file (.h5 for dual energy, .png/.tif otherwise); "
                    "OUT.tip.json gets the FTI id, category, placement and box, OUT.mask.png the footprint")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--category", action="append", choices=CATEGORIES, help="restrict to a category (repeatable)")
    pr.add_argument("--fti", help="project this FTI id instead of a random one")
    pr.add_argument("--pitch-mm", type=_positive, help="the scan's pixel pitch, if it records none")
    pr.add_argument("--no-hardening", action="store_true", help="multiply transmissions even for generated "
                    "FTIs (default: rendered exactly over a cellulose equivalent of the bag, beam hardening included)")
    pr.set_defaults(func=run_project)


def _fail(exc: BaseException) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 1


def _errors():
    from xscreen.scan import ScanError
    from xscreen.tip.fti import TipError
    return (TipError, ScanError, OSError)


def run_build(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from xscreen.tip.generate import iter_build
    total = args.per_category * len(CATEGORIES)
    try:
        lib = None
        with tqdm(total=total, unit="FTI", desc="tip build", file=sys.stderr) as bar:
            for lib in iter_build(args.lib, per_category=args.per_category, seed=args.seed, pitch_mm=args.pitch_mm):
                bar.update(1)
    except _errors() as exc:
        return _fail(exc)
    print(f"{args.lib}: {len(lib) if lib else 0} FTIs ({', '.join(lib.categories()) if lib else ''})")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from xscreen.scan import load_scan
    from xscreen.tip.importer import import_tray_scan
    from xscreen.tip.library import open_or_create
    try:
        scan = load_scan(args.scan)
        tray = load_scan(args.tray) if args.tray else None
        mask = load_scan(args.mask).channels[0] > 0 if args.mask else None
        fti = import_tray_scan(scan, category=args.category, name=args.name or Path(args.scan).stem, box=args.box,
                               tray=tray, mask=mask, pitch_mm=args.pitch_mm, threshold=args.threshold)
        lib = open_or_create(args.lib)
        added = lib.add(fti)
    except _errors() as exc:
        return _fail(exc)
    note = " (approximate: from a colour export)" if fti.source == "rgb-crop" else ""
    print(f"{fti.fti_id} {fti.category} {'added' if added else 'already in the library'}{note}")
    return 0


def _text(s: str) -> str:
    """Names come from files: no control characters reach the terminal."""
    return "".join(c if c.isprintable() else "?" for c in s)


def run_list(args: argparse.Namespace) -> int:
    from xscreen.tip.library import load_library
    try:
        lib = load_library(args.lib)
    except _errors() as exc:
        return _fail(exc)
    for f in lib.ftis:
        print(f"{f.fti_id}  {f.category:<8} {f.kind:<4} {f.source:<8} {f.width}x{f.height}px "
              f"@{f.pitch_mm:g}mm  {_text(f.name)}")
    return 0


def run_project(args: argparse.Namespace) -> int:
    import numpy as np

    from xscreen.scan import load_scan, save_scan
    from xscreen.tip.library import load_library
    from xscreen.tip.pick import random_tip
    from xscreen.tip.project import project
    from xscreen.tip.schedule import schedule
    out = Path(args.out)
    try:
        lib = load_library(args.lib)
        scan = load_scan(args.scan)
        rng = np.random.default_rng(args.seed)
        hardening = False if args.no_hardening else None
        if args.fti:
            fti = lib.get(args.fti)
            res = project(scan, fti, schedule(scan, fti, rng, pitch_mm=args.pitch_mm), rng=rng, hardening=hardening)
        elif hardening is None:
            tip = random_tip(scan, lib, rng, categories=args.category, pitch_mm=args.pitch_mm)
            res, fti = tip.projected, tip.fti
        else:
            fti = lib.pick(rng, args.category, kind=scan.kind)
            res = project(scan, fti, schedule(scan, fti, rng, pitch_mm=args.pitch_mm), rng=rng, hardening=False)
        placement = res.placement
        save_scan(res.scan, out)
        _write_sidecars(out, res, fti, Path(args.scan).name, args.seed)
    except _errors() as exc:
        return _fail(exc)
    print(f"{out}: FTI {fti.fti_id} ({fti.category}) at ({placement.cx:.0f}, {placement.cy:.0f}), "
          f"{placement.angle_deg:.0f} deg{' flipped' if placement.flip else ''}, scale {placement.scale:.3f}")
    return 0


def _write_sidecars(out: Path, res, fti, source: str, seed: int) -> None:
    import cv2
    import numpy as np

    from xscreen.atomic import atomic_write_bytes, atomic_write_text
    stem = out.with_suffix("")
    ok, png = cv2.imencode(".png", res.mask.astype(np.uint8) * 255)
    if not ok:
        raise OSError(f"{stem}.mask.png: could not encode the mask")
    atomic_write_bytes(Path(f"{stem}.mask.png"), png.tobytes())
    doc = {"fti_id": fti.fti_id, "category": fti.category, "fti_name": fti.name, "source_scan": source,
           "seed": seed, "placement": res.placement.to_dict(), "box": list(res.box),
           "mask_pixels": int(res.mask.sum()), "mask_png": f"{stem.name}.mask.png"}
    atomic_write_text(Path(f"{stem}.tip.json"), json.dumps(doc, indent=1))


def run_stats(args: argparse.Namespace) -> int:
    from xscreen.audit import AuditError
    from xscreen.tip.stats import tip_stats
    from xscreen.tip.stats_out import stats_csv, stats_html, stats_table
    try:
        rows = audit_rows(Path(args.audit))
        stats = tip_stats(rows, min_events=args.min_events)
        if args.csv:
            from xscreen.atomic import atomic_write_text
            atomic_write_text(args.csv, stats_csv(stats))
        if args.html:
            from xscreen.atomic import atomic_write_text
            atomic_write_text(args.html, stats_html(stats))
    except (AuditError, OSError) as exc:
        return _fail(exc)
    print(stats_table(stats))
    return 0


def audit_rows(db: Path) -> list[dict]:
    """Rows of an audit database (bag decisions and TIP events) as plain dicts, read through
    ``AuditLog(db, create=False)``: read-only, any schema version, foreign or truncated files refused."""
    from xscreen import audit
    with audit.AuditLog(db, create=False) as log:
        return log.rows()
