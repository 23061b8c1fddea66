"""The one rule end to end: the pipeline, the reports (HTML, JSON/TDR, CSVs) and the audit fields
all say the same thing about a bag (issue 13), on a stub model with no training."""
import csv
import io
import json
import math
from dataclasses import replace

import pytest

from test_pipeline import clamp_scorer, dense_scan
from screen_fixtures import dual_scan
from xscreen.alarm import AreaFit, threshold_at
from xscreen.audit import AuditLog, Decision, machine_fields
from xscreen.config import Calibration, ScreenConfig
from xscreen.pipeline import screen
from xscreen.report import write_reports
from xscreen.report.tables import batch_summary_csv
from xscreen.scoring import Scorer


def area_scorer(alarm_at_ref: float, ref_area: float, review: float = 1e-6) -> Scorer:
    """The clamp stub with an area-rule calibration whose threshold at ``ref_area`` is ``alarm_at_ref``."""
    scale = 0.05 * alarm_at_ref
    loc = alarm_at_ref + scale * math.log(-math.log1p(-0.05))
    cal = Calibration(review, 0.01, alarm_at_ref, 0.05, alarm_rule="area", alarm_loc=loc, alarm_scale=scale,
                      ref_area=ref_area, stride=16, version=3, n_scans=40, n_alarmed=2)
    base = clamp_scorer()
    loaded = replace(base.loaded, meta=replace(base.loaded.meta, calibration=cal))
    return Scorer(loaded, device="cpu", precision="fp32")


def big_bag():
    """dense_scan's object and dense block, in a bag with twice the object height (more scored area)."""
    scan = dual_scan(200, 130, box=(10, 10, 100, 170))
    scan.channels[:, 30:50, 40:60] = int(scan.i0 * 1e-3)
    return scan


def probe_score() -> tuple[float, float]:
    s = screen(dense_scan(), clamp_scorer(), ScreenConfig(stride=16, threshold=1e-6))
    return s.scan_score, s.area


def test_threshold_follows_the_bag_area_and_the_regions_follow_the_threshold():
    top, area = probe_score()
    s = screen(dense_scan(), area_scorer(top * 1.02, area), ScreenConfig(stride=16))
    assert s.alarm_rule == "area" and s.area == area
    assert s.scan_threshold == pytest.approx(top * 1.02)
    assert not s.alarm and s.regions and {r.level for r in s.regions} == {"attention"}
    assert s.threshold_version.endswith(".v3") and len(s.threshold_version) == 15
    # the same bag content in a bag of twice the height: more area, a higher threshold
    big = screen(big_bag(), area_scorer(top * 1.02, area), ScreenConfig(stride=16))
    assert big.area > 1.5 * area and big.scan_threshold > s.scan_threshold
    alarmed = screen(dense_scan(), area_scorer(top * 0.98, area), ScreenConfig(stride=16))
    assert alarmed.alarm and alarmed.regions[0].level == "alarm"
    quiet = screen(dense_scan(), area_scorer(top * 1.02, area), ScreenConfig(stride=16, attention=False))
    assert quiet.regions == [] and not quiet.alarm


@pytest.mark.parametrize("factor, machine", [(1.02, "NO_ALARM"), (0.98, "ALARM")])
def test_every_output_states_the_same_machine_decision(tmp_path, factor, machine):
    top, area = probe_score()
    scan = dense_scan()
    s = screen(scan, area_scorer(top * factor, area), ScreenConfig(stride=16))
    write_reports(s, scan, tmp_path, ["html", "json", "csv"])
    doc = json.loads((tmp_path / "report.json").read_text())
    flags = {p["assessment"]["flag"] for p in doc["tdr"]["ptos"]}
    assert doc["tdr"]["machine_alarm_decision"] == machine == doc["tdr"]["alarm_decision"]
    assert ("THREAT" in flags) == (machine == "ALARM") and doc["screening"]["alarm"] == (machine == "ALARM")
    assert doc["tdr"]["number_of_alarm_objects"] == (1 if machine == "ALARM" else 0)
    assert doc["model"]["threshold_version"] == s.threshold_version
    html = (tmp_path / "report.html").read_text()
    assert f'class="badge {machine}"' in html
    assert ("ATTENTION" in html) == (machine == "NO_ALARM")
    patches = list(csv.DictReader(io.StringIO((tmp_path / "patches.csv").read_text())))
    assert {p["machine_decision"] for p in patches} == {machine}
    assert {p["level"] for p in patches if p["level"]} == {"alarm" if machine == "ALARM" else "attention"}
    summary = list(csv.DictReader(io.StringIO(batch_summary_csv([s]))))[0]
    assert summary["alarm"] == machine and summary["threshold_version"] == s.threshold_version
    with AuditLog(tmp_path / "audit.sqlite") as log:
        log.record(Decision("ann", s.scan_id, "f" * 64, s.model_id, s.threshold, "clear", 2.0,
                            **machine_fields(s)))
        row = log.rows()[0]
        assert log.verify().ok
    assert row["machine_alarm"] == (machine == "ALARM") and row["threshold_version"] == s.threshold_version
    assert row["bag_score"] == pytest.approx(s.scan_score) and row["bag_area"] == s.area


def test_the_area_fit_threshold_is_what_the_pipeline_applies():
    top, area = probe_score()
    scorer = area_scorer(top, area)
    cal = scorer.calibration
    fit = AreaFit(cal.alarm_power, cal.alarm_loc, cal.alarm_scale, cal.ref_area, 0.0)
    s = screen(big_bag(), scorer, ScreenConfig(stride=16))
    assert s.scan_threshold == pytest.approx(threshold_at(fit, 0.05, s.area))


def test_the_gui_rethreshold_keeps_the_levels_of_the_one_rule():
    from xscreen.gui import probe

    top, area = probe_score()
    s = screen(dense_scan(), area_scorer(top * 1.02, area), ScreenConfig(stride=16))
    assert [r.level for r in probe.rethreshold(s, 1.0)] == [r.level for r in s.regions] == ["attention"]
    # a lower display threshold shows more regions, never turns one into an alarm
    assert {r.level for r in probe.rethreshold(s, 0.5)} == {"attention"}


def test_a_saved_report_reloads_with_the_same_levels_and_decision(tmp_path):
    from xscreen.report.load import load_screening_json

    top, area = probe_score()
    scan = dense_scan()
    s = screen(scan, area_scorer(top * 1.02, area), ScreenConfig(stride=16))
    write_reports(s, scan, tmp_path, ["json"])
    back, _ = load_screening_json(tmp_path / "report.json")
    assert back.alarm == s.alarm is False and [r.level for r in back.regions] == ["attention"]
    assert back.threshold_version == s.threshold_version and back.area == s.area
    (tmp_path / "summary.json").write_text(json.dumps(s.to_summary()))
    again, _ = load_screening_json(tmp_path / "summary.json")
    assert [r.level for r in again.regions] == ["attention"] and again.alarm_rule == "area"


def test_scoring_id_changes_with_everything_a_score_depends_on_and_nothing_else():
    from xscreen.config import Preprocess, TrainConfig
    from xscreen.pipeline import scoring_id

    t, p = TrainConfig(), Preprocess()
    base = scoring_id("w", t, p, 32)
    assert base == scoring_id("w", replace(t, epochs=99, seed=7), p, 32)  # training-only settings
    for other in (scoring_id("v", t, p, 32), scoring_id("w", t, p, 16), scoring_id("w", t, p, 32, lam=0.5),
                  scoring_id("w", replace(t, recon="l2"), p, 32), scoring_id("w", replace(t, recon_window=4), p, 32),
                  scoring_id("w", replace(t, score_inpaint=2), p, 32),
                  scoring_id("w", t, Preprocess(a_max=8.0), 32)):
        assert other != base
