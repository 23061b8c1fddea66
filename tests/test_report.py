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
    assert float(top["score_over_threshold"]) == pytest.approx(0.9 / THRESHOLD, rel=1e-5)
    assert {r["rank"] for r in rows} == {"1", "2", "3"} and top["machine_decision"] == "ALARM"
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["tdr"]["number_of_alarm_objects"] == 3 and len(doc["tdr"]["ptos"]) == 3
    assert doc["tdr"]["ptos"][0]["bounding_box"] == {"x": 176, "y": 96, "width": 32, "height": 32,
                                                    "units": "pixel"}
    assert doc["tdr"]["report_type"] == "MACHINE" and doc["tdr"]["alarm_decision"] == "ALARM"
    assert doc["screening"]["score_grid"][0][0] is None  # air
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count('class="region"') == 3 and html.count("data:image/png;base64,") == 2 + 3 * 4
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
    assert rows[3]["status"] == "failed" and "truncated" in rows[3]["error"]
    assert summary_row(screenings[0], decision()).decision == "suspect"
    entries = [(screenings[0], decision(), scans[0]), (screenings[1], decision("clear"), scans[1]),
               (screenings[2], None, None)]
    html_path, csv_path = write_session_report(entries, tmp_path / "session")
    html = html_path.read_text()
    assert html.count("<tr><td>") == 3 and html.count("data:image/png;base64,") == 2
    assert "suspect 1" in html and "2 of 2" in html  # operator agreed with the machine twice
    assert len(list(csv.DictReader(csv_path.open()))) == 3
