"""Recalibrating for a site from the operators' cleared bags (issue 13, 'Done when').

A "site" is simulated as benign synthetic bags seen through another detector: every transmission
T becomes T ** GAMMA (a harder spectrum / another gain curve) with extra Gaussian counting noise.
The shipped model (calibrated on the unshifted generator) is run on SITE_AUDIT bags as an operator
would: each one is screened, cleared (they are all benign) and logged with ``audit.machine_fields``.
``xscreen model calibrate --from-audit`` then writes a site version of the model, and both models'
benign alarm rates are measured on SITE_TEST other site bags, against the interval the
recalibration states. The test bags are screened once; the rule is applied to their stored
highest score and area, exactly as ``pipeline.screen`` would (same weights, λ and stride).

    OMP_NUM_THREADS=1 python benchmarks/site_recalibration.py [--audit-bags 40] [--test-bags 200]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from xscreen import paths
from xscreen.alarm import rule_for
from xscreen.audit import AuditLog, Decision, machine_fields
from xscreen.checkpoint import read_meta
from xscreen.config import ScreenConfig
from xscreen.metrics import clopper_pearson
from xscreen.pipeline import ScreenResult, screen_paths
from xscreen.scan import Scan, load_scan, save_h5
from xscreen.scoring import Scorer

GAMMA, NOISE = 1.25, 0.01  # the site's detector: T -> T ** GAMMA, + N(0, NOISE * i0) counts


def site_bags(out: Path, n: int, seed: int) -> Path:
    """n benign synth bags (``xscreen synth --seed``) re-imaged by the site's detector, as HDF5."""
    raw = out / f"raw{seed}"
    subprocess.run([sys.executable, "-m", "xscreen", "synth", str(raw), "--benign", str(n), "--seed", str(seed)],
                   check=True, capture_output=True)
    rng = np.random.default_rng(seed)
    dest = out / f"site{seed}"
    dest.mkdir()
    for p in sorted((raw / "benign").glob("*.h5")):
        scan = load_scan(p)
        t = np.clip(scan.channels.astype(np.float64) / scan.i0, 1e-6, 1.0) ** GAMMA
        counts = t * scan.i0 + rng.normal(0.0, NOISE * scan.i0, t.shape)
        ch = np.clip(counts, 0, 65535).astype(np.uint16)
        save_h5(Scan(scan_id=p.stem, kind="dual", channels=ch, i0=scan.i0), dest / p.name)
    return dest


def screened(folder: Path, model: Path) -> list:
    scorer = Scorer(model, device="cpu")
    return [r.screening for r in screen_paths([folder], scorer, ScreenConfig(stride=32))
            if isinstance(r, ScreenResult)]


def alarm_rate(model: Path, screenings: list) -> tuple[int, int]:
    cal = read_meta(model)[0].calibration
    rule = rule_for(cal, 32)
    return sum(s.scan_score >= rule.threshold(s.area) for s in screenings), len(screenings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audit-bags", type=int, default=40)
    ap.add_argument("--test-bags", type=int, default=200)
    ap.add_argument("--model", type=Path, default=paths.default_model())
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        audit_set = screened(site_bags(tmp, args.audit_bags, 7007), args.model)
        test_set = screened(site_bags(tmp, args.test_bags, 8008), args.model)
        db = tmp / "audit.sqlite"
        with AuditLog(db) as log:
            for i, s in enumerate(audit_set):
                log.record(Decision("op", s.scan_id, f"{i:064x}", s.model_id, s.threshold, "clear", 3.0,
                                    **machine_fields(s)))
        site = tmp / "site.xsm"
        res = subprocess.run([sys.executable, "-m", "xscreen", "model", "calibrate", str(args.model),
                              "--from-audit", str(db), "--out", str(site)], capture_output=True, text=True)
        print(res.stdout + res.stderr)
        cal = read_meta(site)[0].calibration
        target = cal.scan_far
        for name, model in (("shipped", args.model), ("recalibrated", site)):
            k, n = alarm_rate(model, test_set)
            ci = clopper_pearson(k, n)
            print(f"{name:12s} benign site bags alarmed {k}/{n} = {k / n:.1%} (95 % {ci.lo:.1%}-{ci.hi:.1%}); "
                  f"target {target:.0%}")
        print(f"stated interval of the recalibration ({cal.n_scans} cleared bags): "
              f"{cal.far_lo:.1%}-{cal.far_hi:.1%}; audit bags alarmed under the shipped model: "
              f"{sum(s.alarm for s in audit_set)}/{len(audit_set)}")


if __name__ == "__main__":
    main()
