"""report: every format for a synthetic threat bag, schema validity, escaping, atomic writes."""
import csv
import json

import jsonschema
import numpy as np
import pytest

from xscreen.audit import Decision
from xscreen.heatmap import GridGeometry, find_regions
from xscreen.pipeline import Screening, Timings
from xscreen.preprocess import model_input
from xscreen.config import Preprocess
from xscreen.report import (FORMATS, assessment_probability, failure_row, load_schema, parse_formats,
                            summary_row, write_batch_summary, write_reports, write_session_report)
from xscreen.scan import Scan

SIZE, STRIDE, H, W = 32, 16, 160, 256
THRESHOLD = 0.2
HOT = {(2, 3): 0.5, (2, 4): 0.3, (3, 3): 0.25, (6, 11): 0.9, (1, 13): 0.21}  # 3 regions, 5 patches


def threat_scan(scan_id="bag-001", seed=0) -> Scan:
    """Dual-energy bag: cluttered benign body, two dense blocks where HOT puts the flags."""
    rng = np.random.default_rng(seed)
    t = np.ones((2, H, W), np.float32)
    t[:, 16:150, 8:248] = rng.uniform(0.35, 0.8, (2, 134, 240))
    t[:, 36:80, 52:96] = 0.05  # threat 1 at cells (2..3, 3..4)
    t[:, 100:128, 180:208] = 0.02  # threat 2 at cell (6, 11)
    return Scan(scan_id, "dual", (t * 60000).astype(np.uint16), 60000.0)


def make_screening(scan: Scan, hot=HOT, threshold=THRESHOLD) -> Screening:
    """A real Screening with a chosen score grid: regions by heatmap.find_regions, heat as the
    mean of covering patches (the pipeline's definition)."""
    rows, cols = (H - SIZE) // STRIDE + 1, (W - SIZE) // STRIDE + 1
    grid = np.full((rows, cols), 0.05, np.float32)
    for (r, c), v in hot.items():
        grid[r, c] = v
    air = np.zeros_like(grid, bool)
    air[0, :] = True
    grid[air] = 0.0
    heat, cover = np.zeros((H, W), np.float32), np.zeros((H, W), np.float32)
    for r in range(rows):
        for c in range(cols):
            heat[r * STRIDE:r * STRIDE + SIZE, c * STRIDE:c * STRIDE + SIZE] += grid[r, c] / threshold
            cover[r * STRIDE:r * STRIDE + SIZE, c * STRIDE:c * STRIDE + SIZE] += 1
    x = model_input(scan, Preprocess("dual"))
    recon = np.clip(x + np.random.default_rng(1).normal(0, 0.05, x.shape), -1, 1).astype(np.float32)
    recon[:, 36:80, 52:96] = x[:, 40:84, 120:164]  # the model "paints" benign texture over the threat
    regions = find_regions(grid, threshold, GridGeometry(SIZE, STRIDE, H, W))
    return Screening(
        scan_id=scan.scan_id, path=f"/data/{scan.scan_id}.h5", sha256="ab" * 32, kind="dual",
        width=W, height=H, model_id="tiny-0123456789ab", model_checksum="cd" * 32,
        threshold=threshold, threshold_far=0.01, scan_threshold=0.3, scan_aggregation="max",
        stride=STRIDE, patch_size=SIZE, score_grid=grid, recon_grid=grid * 0.9,
        latent_grid=grid * 0.1, air_grid=air, heat=heat / np.maximum(cover, 1),
        residual=np.abs(x - recon).mean(axis=0), reconstruction=recon, regions=regions,
        scan_score=float(grid.max()), alarm=bool(grid.max() >= 0.3),
        timings=Timings(0.01, 0.002, 0.2, 0.01, 0.001, 0.25))


@pytest.fixture
def bag():
    scan = threat_scan()
    return scan, make_screening(scan)


def decision(d="suspect", operator="ana"):
    return Decision(operator, "bag-001", "ab" * 32, "tiny-0123456789ab", THRESHOLD, d, 4.5, [1, 2],
                    "2026-11-28T13:00:00.000+00:00")


def test_all_formats_with_right_counts(tmp_path, bag):
    scan, s = bag
    assert len(s.regions) == 3  # the fixture's premise
    paths = write_reports(s, scan, tmp_path / "out")
    assert [p.name for p in paths] == ["report.html", "report.pdf", "patches.csv", "report.json"]
    rows = list(csv.DictReader((tmp_path / "out" / "patches.csv").open()))
    assert len(rows) == len(HOT) == 5
    by_cell = {(int(r["patch_row"]), int(r["patch_col"])): r for r in rows}
    top = by_cell[(6, 11)]
    assert (top["rank"], top["x"], top["y"], top["w"], top["h"]) == ("1", "176", "96", "32", "32")
    assert float(top["score_x_alarm"]) == pytest.approx(0.9 / 0.3, rel=1e-5)  # ÷ the bag's alarm threshold
    assert {r["rank"] for r in rows} == {"1", "2", "3"} and top["machine_decision"] == "ALARM"
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["tdr"]["number_of_alarm_objects"] == 3 and len(doc["tdr"]["ptos"]) == 3
    assert doc["tdr"]["ptos"][0]["bounding_box"] == {"x": 176, "y": 96, "width": 32, "height": 32,
                                                    "units": "pixel"}
    assert doc["tdr"]["report_type"] == "MACHINE" and doc["tdr"]["alarm_decision"] == "ALARM"
    assert doc["screening"]["score_grid"][0][0] is None  # air
    html = (tmp_path / "out" / "report.html").read_text()
    # scan, heat map, colour scale, and 4 crops per region
    assert html.count('class="region"') == 3 and html.count("data:image/png;base64,") == 3 + 3 * 4
    pdf = (tmp_path / "out" / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF") and len(pdf) > 20_000
    assert not list((tmp_path / "out").glob(".*"))  # no temp files left behind


def test_json_validates_against_schema(tmp_path, bag):
    scan, s = bag
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for d in (None, decision("clear")):
        write_reports(s, scan, tmp_path, formats=("json",), decision=d, app_meta={"host": "lane 3"})
        doc = json.loads((tmp_path / "report.json").read_text())
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert doc["tdr"]["report_type"] == "OPERATOR" and doc["tdr"]["alarm_decision"] == "NO_ALARM"
    assert doc["tdr"]["machine_alarm_decision"] == "ALARM" and doc["app"]["extra"] == {"host": "lane 3"}
    doc["tdr"]["ptos"][0]["threat_category"] = "EXPLOSIVE"  # the schema is not a rubber stamp
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def test_no_regions_no_alarm(tmp_path):
    scan = threat_scan()
    s = make_screening(scan, hot={})
    write_reports(s, scan, tmp_path)
    assert (tmp_path / "patches.csv").read_text().count("\n") == 1  # header only
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["tdr"]["ptos"] == [] and doc["tdr"]["alarm_decision"] == "NO_ALARM"
    assert "No region reached the threshold" in (tmp_path / "report.html").read_text()
    jsonschema.validate(doc, load_schema(), cls=jsonschema.Draft202012Validator)


def test_html_and_pdf_escape_hostile_names(tmp_path):
    evil = "<script>alert(1)</script>"
    scan = threat_scan(scan_id=evil)
    s = make_screening(scan)
    d = Decision('<b onmouseover="x">eve</b>', evil, "", "m", THRESHOLD, "suspect", 1.0)
    write_reports(s, scan, tmp_path, formats=("html", "pdf", "csv"), decision=d)
    html = (tmp_path / "report.html").read_text()
    assert "<script>" not in html and "<b onmouseover" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b onmouseover=&quot;x&quot;&gt;eve&lt;/b&gt;" in html
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF-")  # reportlab markup not parsed


def test_csv_formula_injection_is_neutralised(tmp_path):
    scan = threat_scan(scan_id="=HYPERLINK(\"http://x\")")
    write_reports(make_screening(scan), scan, tmp_path, formats=("csv",))
    rows = list(csv.DictReader((tmp_path / "patches.csv").open()))
    assert rows[0]["scan_id"].startswith("'=")


def test_operator_decision_appears_everywhere(tmp_path, bag):
    scan, s = bag
    write_reports(s, scan, tmp_path, decision=decision("unresolved", "bo"))
    rows = list(csv.DictReader((tmp_path / "patches.csv").open()))
    assert {(r["decision"], r["operator"]) for r in rows} == {("unresolved", "bo")}
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["tdr"]["alarm_decision"] == "UNKNOWN" and doc["tdr"]["operator"]["name"] == "bo"
    assert "UNRESOLVED" in (tmp_path / "report.html").read_text()


def test_csv_and_json_need_no_scan_but_html_does(tmp_path, bag):
    _, s = bag
    assert len(write_reports(s, None, tmp_path, formats="csv,json")) == 2
    with pytest.raises(ValueError, match="need the scan image"):
        write_reports(s, None, tmp_path, formats=("html",))


def test_wrong_scan_for_screening_is_refused(tmp_path, bag):
    _, s = bag
    other = Scan("x", "dual", np.full((2, 100, 100), 60000, np.uint16), 60000.0)
    with pytest.raises(ValueError, match="not the screened file"):
        write_reports(s, other, tmp_path, formats=("pdf",))
    assert not (tmp_path / "report.pdf").exists()


def test_parse_formats():
    assert parse_formats("all") == FORMATS
    assert parse_formats("json, html,json") == ("json", "html")
    with pytest.raises(ValueError, match="docx"):
        parse_formats("html,docx")


def test_assessment_probability_mapping():
    assert assessment_probability(1.0) == 0.5
    assert assessment_probability(2.0) == pytest.approx(0.8)
    assert assessment_probability(0.0) == 0.0 and assessment_probability(float("nan")) == 0.0
    ps = [assessment_probability(r) for r in (0.5, 1, 1.5, 3, 10, 1e6)]
    assert ps == sorted(ps) and all(0 <= p <= 1 for p in ps)


def test_batch_summary_and_session_report(tmp_path):
    scans = [threat_scan(f"bag-{i}", seed=i) for i in range(3)]
    screenings = [make_screening(scans[0]), make_screening(scans[1], hot={}),
                  make_screening(scans[2], hot={(3, 3): 0.25})]
    path = write_batch_summary([*screenings, failure_row("/data/broken.h5", "broken.h5: truncated")],
                               tmp_path / "summary.csv")
    rows = list(csv.DictReader(path.open()))
    assert [r["n_regions"] for r in rows] == ["3", "0", "1", ""]
    assert [r["alarm"] for r in rows] == ["ALARM", "NO_ALARM", "NO_ALARM", ""]
    assert rows[3]["status"] == "error" and "truncated" in rows[3]["error"]
    assert summary_row(screenings[0], decision()).decision == "suspect"
    entries = [(screenings[0], decision(), scans[0]), (screenings[1], decision("clear"), scans[1]),
               (screenings[2], None, None)]
    html_path, csv_path = write_session_report(entries, tmp_path / "session")
    html = html_path.read_text()
    assert html.count("<tr><td>") == 3 and html.count("data:image/png;base64,") == 2
    assert "suspect 1" in html and "2 of 2" in html  # operator agreed with the machine twice
    assert len(list(csv.DictReader(csv_path.open()))) == 3


# --- re-rendering and the `xscreen report` command ------------------------------------------------
from dataclasses import replace  # noqa: E402

from xscreen.audit import AuditLog  # noqa: E402
from xscreen.cli import main as cli_main  # noqa: E402
from xscreen.report.load import heat_from_grid, load_screening_json  # noqa: E402
from xscreen.scan import file_sha256, save_h5  # noqa: E402


@pytest.fixture
def saved_bag(tmp_path):
    """A threat bag on disk, its screening (sha256 and path of that file) and a full report set."""
    scan = threat_scan()
    path = save_h5(scan, tmp_path / "bag-001.h5")
    s = replace(make_screening(scan), path=str(path), sha256=file_sha256(path))
    write_reports(s, scan, tmp_path / "first")
    return path, s


def test_heat_from_grid_matches_pipeline_definition(tmp_path):
    """Re-rendered from JSON, the heat map is the screened one (the pipeline's tapered stitching),
    not a blocky flat mean of the patch grid (issue 31 item 12)."""
    from screen_fixtures import dual_scan, tiny_model

    from xscreen.config import ScreenConfig
    from xscreen.pipeline import screen
    from xscreen.scoring import Scorer

    scan = dual_scan(h=90, w=120, seed=3)
    s = screen(scan, Scorer(tiny_model(), device="cpu", precision="fp32"), ScreenConfig(stride=8, threshold=0.05))
    heat = heat_from_grid(s.score_grid, s.threshold, s.patch_size, s.stride, s.height, s.width)
    assert heat.shape == s.heat.shape and np.allclose(heat, s.heat, rtol=1e-4, atol=1e-5)


def test_rerender_from_report_json(tmp_path, saved_bag, capsys):
    path, s = saved_bag
    rc = cli_main(["report", str(tmp_path / "first" / "report.json"), "--out", str(tmp_path / "again")])
    assert rc == 0, capsys.readouterr().err
    first = json.loads((tmp_path / "first" / "report.json").read_text())
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    for key in ("tdr", "scan", "model"):
        first[key].pop("alarm_decision_time", None), again[key].pop("alarm_decision_time", None)
        assert again[key] == first[key]
    assert again["screening"]["score_grid"] == first["screening"]["score_grid"]
    assert (tmp_path / "again" / "patches.csv").read_text().count("\n") == 1 + 5
    html = (tmp_path / "again" / "report.html").read_text()
    assert html.count("reconstruction not stored") == 3 and html.count("residual not stored") == 3
    assert (tmp_path / "again" / "report.pdf").read_bytes().startswith(b"%PDF-")


def test_rerender_from_screen_summary_json(tmp_path, saved_bag):
    """`xscreen screen` writes Screening.to_summary(): regions but no score grid."""
    _, s = saved_bag
    (tmp_path / "bag.json").write_text(json.dumps(s.to_summary(), default=str))
    loaded, decision = load_screening_json(tmp_path / "bag.json")
    assert decision is None and [r.rank for r in loaded.regions] == [1, 2, 3]
    assert cli_main(["report", str(tmp_path / "bag.json"), "--out", str(tmp_path / "r"),
                     "--formats", "csv,json,html"]) == 0
    rows = list(csv.DictReader((tmp_path / "r" / "patches.csv").open()))
    assert len(rows) == 5 and {r["score"] for r in rows} == {""}  # cells known, scores not stored
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    jsonschema.validate(doc, load_schema(), cls=jsonschema.Draft202012Validator)
    assert doc["screening"]["score_grid"] is None and len(doc["tdr"]["ptos"]) == 3
    assert "No heat map stored" in (tmp_path / "r" / "report.html").read_text()


def test_report_includes_latest_audit_decision(tmp_path, saved_bag):
    path, s = saved_bag
    with AuditLog(tmp_path / "audit.sqlite") as log:
        log.record(replace(decision("clear", "ana"), file_sha256=s.sha256))
        log.record(replace(decision("suspect", "bo"), file_sha256=s.sha256))
    assert cli_main(["report", str(tmp_path / "first" / "report.json"), "--out", str(tmp_path / "r"),
                     "--formats", "json", "--audit", str(tmp_path / "audit.sqlite")]) == 0
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert doc["tdr"]["report_type"] == "OPERATOR" and doc["tdr"]["operator"]["name"] == "bo"
    # and a re-render of that report keeps the operator decision
    assert cli_main(["report", str(tmp_path / "r" / "report.json"), "--out", str(tmp_path / "r2"),
                     "--formats", "json"]) == 0
    assert json.loads((tmp_path / "r2" / "report.json").read_text())["tdr"]["operator"]["decision"] == "suspect"


def test_cli_report_errors_are_clean(tmp_path, saved_bag, capsys):
    path, s = saved_bag
    assert cli_main(["report", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("error: ") 
    (tmp_path / "junk.json").write_text('{"hello": 1}')
    assert cli_main(["report", str(tmp_path / "junk.json"), "--out", str(tmp_path / "o")]) == 2
    assert "not an xscreen report.json" in capsys.readouterr().err
    assert cli_main(["report", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "needs --model" in capsys.readouterr().err
    other = save_h5(threat_scan(seed=5), tmp_path / "other.h5")
    assert cli_main(["report", str(tmp_path / "first" / "report.json"), "--scan", str(other),
                     "--out", str(tmp_path / "o")]) == 2
    assert "not the screened file" in capsys.readouterr().err
    assert cli_main(["report", str(tmp_path / "first" / "report.json"), "--formats", "docx",
                     "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_screen_and_report_a_synthetic_threat_bag_end_to_end(tmp_path, capsys):
    """The real path: synth bag -> file -> `xscreen report SCAN --model` (tiny random model) ->
    every format agrees with the screening on regions and flagged patches."""
    from screen_fixtures import save_tiny_model

    from xscreen.config import Calibration, ScreenConfig
    from xscreen.pipeline import screen
    from xscreen.scoring import Scorer
    from xscreen.synth import synth_bag

    bag = synth_bag(3, threat=True, width=160)
    path = save_h5(bag.scan, tmp_path / "threat.h5")
    model = save_tiny_model(tmp_path / "tiny.xsm", calibration=Calibration(1.0, 0.01, 1.0, 0.05))
    probe = screen(bag.scan, Scorer(model, device="cpu"), ScreenConfig(stride=16, device="cpu"))
    scores = probe.score_grid[~probe.air_grid]
    threshold = float(np.quantile(scores, 0.9))  # a random model: flag its top 10 % of patches
    assert cli_main(["report", str(path), "--model", str(model), "--out", str(tmp_path / "r"),
                     "--stride", "16", "--threshold", str(threshold), "--device", "cpu"]) == 0, \
        capsys.readouterr().err
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    jsonschema.validate(doc, load_schema(), cls=jsonschema.Draft202012Validator)
    n_flagged = int((scores >= threshold).sum())
    assert n_flagged >= 2 and doc["screening"]["n_flagged_patches"] == n_flagged
    n_regions = len(doc["tdr"]["ptos"])
    assert n_regions >= 1 and sum(len(p["patches"]) for p in doc["tdr"]["ptos"]) == n_flagged
    assert len(list(csv.DictReader((tmp_path / "r" / "patches.csv").open()))) == n_flagged
    html = (tmp_path / "r" / "report.html").read_text()
    assert html.count('class="region"') == min(n_regions, 12) and "not stored" not in html
    assert doc["scan"]["sha256"] == file_sha256(path) and doc["model"]["stride"] == 16


def test_pdf_prints_hostile_text_literally(tmp_path):
    """reportlab's Paragraph markup must not swallow or interpret a scan name (needs pdftotext)."""
    import shutil
    import subprocess

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    evil = "<script>alert(1)</script> & <b>x"
    scan = threat_scan(scan_id=evil)
    write_reports(make_screening(scan), scan, tmp_path, formats=("pdf",))
    text = subprocess.run(["pdftotext", str(tmp_path / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert f"Screening report: {evil}" in text


def test_every_region_number_is_on_the_alarm_scale_and_captions_name_the_threshold(tmp_path, bag):
    """One scale (issue 31 items 2, 12): score ÷ the bag's alarm threshold, 1.00 alarms, the review
    level a line on it; no caption says 'score / threshold' without naming which."""
    scan, s = bag  # review level 0.2, alarm threshold 0.3
    s = replace(s, regions=find_regions(s.score_grid, THRESHOLD, GridGeometry(SIZE, STRIDE, H, W), alarm_threshold=0.3))
    assert {r.level for r in s.regions} == {"alarm", "attention"}
    write_reports(s, scan, tmp_path, formats=("html", "json", "csv"))
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["format_version"] == 2 and doc["model"]["review_level_x_alarm"] == pytest.approx(0.2 / 0.3)
    for p in doc["tdr"]["ptos"]:
        a = p["assessment"]
        assert a["score_x_alarm"] == pytest.approx(a["score"] / 0.3)
        assert (a["flag"] == "THREAT") == (a["score_x_alarm"] >= 1.0) == (a["probability"] >= 0.5)
    assert doc["screening"]["scan_score_x_alarm"] == pytest.approx(0.9 / 0.3)
    html = (tmp_path / "report.html").read_text()
    assert "score / threshold" not in html and "/ review" not in html
    assert "Heat map (score &divide; this bag's alarm threshold)" in html
    assert "review level (regions drawn from here) is 0.67 × alarm" in html and "3.00" in html
    assert "Max &times; alarm" in html
    rows = list(csv.DictReader((tmp_path / "patches.csv").open()))
    assert max(float(r["score_x_alarm"]) for r in rows) == pytest.approx(3.0)


def test_an_amended_decision_says_from_what_and_by_whom(tmp_path, saved_bag):
    """`xscreen report --audit` showed only the standing decision; an amendment must say what it
    amended, by whom and when (issue 31 item 12)."""
    path, s = saved_bag
    with AuditLog(tmp_path / "audit.sqlite") as log:
        first = log.record(replace(decision("clear", "ana"), file_sha256=s.sha256, time=""))
        log.record(replace(decision("suspect", "bo"), file_sha256=s.sha256, time="", amends=first))
    assert cli_main(["report", str(tmp_path / "first" / "report.json"), "--out", str(tmp_path / "r"),
                     "--formats", "json,html,pdf", "--audit", str(tmp_path / "audit.sqlite")]) == 0
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    op = doc["tdr"]["operator"]
    assert op["name"] == "bo" and op["decision"] == "suspect" and op["amends"] == first
    assert [(h["name"], h["decision"]) for h in op["amended_from"]] == [("ana", "clear")]
    jsonschema.validate(doc, load_schema(), cls=jsonschema.Draft202012Validator)
    html = (tmp_path / "r" / "report.html").read_text()
    assert "SUSPECT (amended)" in html and "CLEAR by ana at 20" in html
