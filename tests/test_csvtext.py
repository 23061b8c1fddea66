"""CSV outputs (patches.csv, summary.csv, audit export) never hand a spreadsheet a formula."""
import csv
import io

from screen_fixtures import dual_scan, save_tiny_model
from xscreen.audit import AuditLog, Decision
from xscreen.cli import main
from xscreen.scan import save_h5

FORMULAS = ('=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
            "\t=1", "\r=1")


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_csv_text_quotes_formula_cells_and_blanks_unknowns():
    from xscreen.csvtext import csv_text

    rows = [{"a": f, "b": 1.5} for f in FORMULAS] + [{"a": None, "b": float("nan")}, {"a": "ok", "b": -2.0},
                                                     {"a": "x\r=cmd", "b": 0}]
    text = csv_text(("a", "b"), rows)
    got = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["a"] for r in got] == ["'" + f for f in FORMULAS] + ["", "ok", "x\r=cmd"]  # a CR starts no row
    assert [r["b"] for r in got] == ["1.5"] * len(FORMULAS) + ["", "-2.0", "0"]  # numbers stay numbers


def test_audit_export_neutralises_formulas(tmp_path):
    db = tmp_path / "a.sqlite"
    with AuditLog(db) as log:
        for i, f in enumerate(FORMULAS):
            log.record(Decision(operator=f, scan_id=f, file_sha256=f"{i:064x}", model_id=f,
                                threshold=0.1, decision="clear", decision_seconds=1.0))
    assert main(["audit", "export", "--out", str(tmp_path / "log.csv"), str(db)]) == 0
    rows = _read(tmp_path / "log.csv")
    for key in ("operator", "scan_id", "model_id"):
        assert [r[key] for r in rows] == ["'" + f for f in FORMULAS]


def test_screen_summary_neutralises_formulas(tmp_path):
    for i, f in enumerate(FORMULAS[:4]):
        save_h5(dual_scan(seed=i, scan_id=f), tmp_path / "bags" / f"b{i}.h5")
    model = save_tiny_model(tmp_path / "tiny.xsm")
    out = tmp_path / "out"
    assert main(["screen", str(tmp_path / "bags"), "--model", str(model), "--out", str(out),
                 "--threshold", "0.05", "--overlay", "none"]) == 0
    assert sorted(r["scan_id"] for r in _read(out / "summary.csv")) == sorted("'" + f for f in FORMULAS[:4])
