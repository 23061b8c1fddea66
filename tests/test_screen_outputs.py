"""``xscreen screen`` outputs: no file aborts the batch (issue 32 items 1, 2, 12), outputs owned by
content (item 3), one summary schema on the x-alarm scale (issue 31 items 2, 7), other-kind files
skipped (item 9), help texts (item 9)."""
import csv
import json
import os

import numpy as np
import pytest

from screen_fixtures import dual_scan, save_tiny_model
from xscreen.cli import main
from xscreen.report.summary import SUMMARY_COLUMNS
from xscreen.scan import save_h5

ARGS = ["--threshold", "0.05", "--stride", "16", "--overlay", "none"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.xsm")


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _header(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh))


def test_a_2000_character_id_and_a_3200_character_path_do_not_abort_pdf_reports(model, tmp_path, capsys):
    root = tmp_path / "bags"
    long_id = "A" * 2000
    save_h5(dual_scan(seed=1, scan_id=long_id), root / "long.h5")
    deep = root.joinpath(*["d" * 200] * 16)  # ~3200 characters of path
    save_h5(dual_scan(seed=2, scan_id="deep"), deep / "deep.h5")
    save_h5(dual_scan(seed=3, scan_id="good"), root / "good.h5")
    out = tmp_path / "out"
    rc = main(["screen", str(root), "--model", str(model), "--out", str(out), *ARGS, "--report", "pdf"])
    err = capsys.readouterr().err
    assert rc == 0, err
    rows = _rows(out / "summary.csv")
    assert sorted(r["status"] for r in rows) == ["ok", "ok", "ok"]
    by_id = {r["scan_id"]: r for r in rows}
    assert long_id in by_id and len(by_id["deep"]["file"]) > 3200  # the record keeps them whole
    for r in rows:
        pdf = (out / r["output"] / "report.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and len(pdf) > 5000
    assert json.loads((out / f"{by_id[long_id]['output']}.json").read_text())["scan_id"] == long_id


def test_a_report_that_fails_is_that_bags_error_and_the_batch_goes_on(model, tmp_path, monkeypatch, capsys):
    from reportlab.platypus.doctemplate import LayoutError

    import xscreen.report.pdf as pdf

    def boom(ctx, figs):
        if ctx.screening.scan_id == "bad":
            raise LayoutError("Flowable too large")
        return b"%PDF-1.4 stub"

    monkeypatch.setattr(pdf, "render_pdf", boom)
    for i, name in enumerate(("a", "bad", "c")):
        save_h5(dual_scan(seed=i, scan_id=name), tmp_path / "bags" / f"{name}.h5")
    out = tmp_path / "out"
    rc = main(["screen", str(tmp_path / "bags"), "--model", str(model), "--out", str(out), *ARGS,
               "--report", "pdf"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and "LayoutError" in err and "bad.h5" in err
    rows = {r["scan_id"]: r for r in _rows(out / "summary.csv")}
    assert set(rows) == {"a", "bad", "c"}
    assert rows["a"]["status"] == rows["c"]["status"] == "ok"
    assert rows["bad"]["status"] == "error" and "report not written" in rows["bad"]["error"]
    assert rows["bad"]["alarm"] in ("ALARM", "NO_ALARM")  # screened and judged: the verdict is kept


def _png_with_header(path, header: str, value: int = 200):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    img = np.full((70, 90), 255, np.uint8)
    img[12:42, 10:50] = value
    info = PngInfo()
    info.add_text("xscreen", header)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, pnginfo=info)
    return path


def test_a_lone_surrogate_scan_id_is_escaped_at_the_reader_and_every_output_is_written(tmp_path, capsys):
    from xscreen.scan import load_scan

    bad = _png_with_header(tmp_path / "bags" / "bad.png",
                           '{"xscreen": {"scan_id": "bad\\ud800id", "kind": "gray", "i0": 255}}')
    _png_with_header(tmp_path / "bags" / "good.png", '{"xscreen": {"scan_id": "good", "i0": 255}}', 90)
    scan = load_scan(bad)
    assert scan.scan_id == "bad\\ud800id"  # the six characters, valid UTF-8
    scan.scan_id.encode("utf-8")
    model = save_tiny_model(tmp_path / "gray.xsm", kind="gray")
    out = tmp_path / "out"
    rc = main(["screen", str(tmp_path / "bags"), "--model", str(model), "--out", str(out), *ARGS,
               "--report", "html,json,csv"])
    assert rc == 0, capsys.readouterr().err
    rows = {r["scan_id"]: r for r in _rows(out / "summary.csv")}
    assert set(rows) == {"bad\\ud800id", "good"} and {r["status"] for r in rows.values()} == {"ok"}
    html = (out / rows["bad\\ud800id"]["output"] / "report.html").read_text(encoding="utf-8")
    assert "bad\\ud800id" in html


def test_outputs_are_owned_by_content_and_summary_rows_are_appended(model, tmp_path):
    spool, out = tmp_path / "spool" / "bag.h5", tmp_path / "out"
    run = ["screen", str(spool), "--model", str(model), "--out", str(out), *ARGS]
    save_h5(dual_scan(seed=0, scan_id="bag", box=None), spool)  # an empty tray ...
    assert main(run) == 0
    first = json.loads((out / "bag.json").read_text())
    save_h5(dual_scan(seed=1, scan_id="bag"), spool)  # ... then another bag at the same spool path
    assert main(run) == 0
    assert main(run) == 0  # the same file rescreened: rewrites its own outputs, no third name
    docs = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert set(docs) == {"bag.json", "bag-2.json"}
    assert docs["bag.json"]["sha256"] == first["sha256"] != docs["bag-2.json"]["sha256"]
    assert docs["bag.json"]["alarm"] == first["alarm"]  # the first bag's verdict was not replaced
    rows = _rows(out / "summary.csv")
    assert [r["output"] for r in rows] == ["bag", "bag-2", "bag-2"]
    assert [r["sha256"] for r in rows] == [first["sha256"]] + [docs["bag-2.json"]["sha256"]] * 2
    assert all(r["run_time"].startswith("20") for r in rows)


def test_one_summary_schema_on_the_alarm_scale(tmp_path):
    for i in range(3):
        save_h5(dual_scan(seed=i, scan_id=f"bag{i}"), tmp_path / "bags" / f"bag{i}.h5")
    model = save_tiny_model(tmp_path / "m.xsm")
    out = tmp_path / "out"
    assert main(["screen", str(tmp_path / "bags"), "--model", str(model), "--out", str(out),
                 "--threshold", "0.05", "--scan-threshold", "0.5", "--stride", "16", "--overlay", "none"]) == 0
    assert tuple(_header(out / "summary.csv")) == SUMMARY_COLUMNS
    for r in _rows(out / "summary.csv"):
        top = float(r["top_region_x_alarm"]) if r["top_region_x_alarm"] else 0.0
        assert r["alarm"] in ("ALARM", "NO_ALARM") and (top >= 1.0) == (r["alarm"] == "ALARM")
        assert float(r["review_level_x_alarm"]) == pytest.approx(0.05 / float(r["alarm_threshold"]))
        assert float(r["alarm_threshold"]) == 0.5 and float(r["review_level"]) == 0.05
    # the session report's summary and `demo` use the same columns (report.summary)
    from xscreen.report import write_batch_summary

    assert tuple(_header(write_batch_summary([], tmp_path / "s.csv"))) == SUMMARY_COLUMNS


def test_files_of_another_kind_are_skipped_and_unreadable_ones_still_fail(model, tmp_path, capsys):
    root = tmp_path / "samples"
    save_h5(dual_scan(scan_id="bag"), root / "bag.h5")
    _png_with_header(root / "rgb" / "export.png", '{"xscreen": {"scan_id": "export", "i0": 255}}')
    out = tmp_path / "out"
    rc = main(["screen", str(root), "--model", str(model), "--out", str(out), *ARGS])
    err = capsys.readouterr().err
    assert rc == 0 and "skipped: " in err and "export.png" in err and "error:" not in err
    rows = {r["file"].rsplit("/", 1)[-1]: r for r in _rows(out / "summary.csv")}
    assert rows["export.png"]["status"] == "skipped" and "'gray'" in rows["export.png"]["error"]
    assert rows["bag.h5"]["status"] == "ok"
    (root / "broken.h5").write_bytes(b"\x89HDF\r\n garbage")
    assert main(["screen", str(root), "--model", str(model), "--out", str(out), *ARGS]) == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_in_the_input_folder_is_named_and_escapes_are_not_sent_to_the_terminal(model, tmp_path, capsys):
    root = tmp_path / "in"
    save_h5(dual_scan(scan_id="bag"), root / "bag.h5")
    os.mkfifo(root / "spool.h5")
    (root / "evil\x1b[2J\x1b]0;pwned\x07.h5").write_bytes(b"not hdf5")
    rc = main(["screen", str(root), "--model", str(model), "--out", str(tmp_path / "out"), *ARGS])
    err = capsys.readouterr().err
    assert rc == 1  # the unreadable file, not the FIFO
    assert "spool.h5" in err and "FIFO" in err
    assert "\x1b" not in err and "\x07" not in err and "evil\\x1b[2J\\x1b]0;pwned\\x07.h5" in err
    rows = {r["file"].rsplit("/", 1)[-1]: r["status"] for r in _rows(tmp_path / "out" / "summary.csv")}
    assert rows["spool.h5"] == "skipped" and rows["bag.h5"] == "ok"


@pytest.mark.parametrize("value", ["inf", "1e30", "nan", "-4G", "lots"])
def test_a_bad_memory_budget_is_a_clear_error_naming_the_variable(model, tmp_path, monkeypatch, capsys, value):
    from xscreen.scan import ScanError, load_scan

    path = save_h5(dual_scan(scan_id="bag"), tmp_path / "bag.h5")
    monkeypatch.setenv("XSCREEN_MEMORY_BUDGET", value)
    rc = main(["screen", str(path), "--model", str(model), "--out", str(tmp_path / "out"), *ARGS])
    err = capsys.readouterr().err
    assert rc == 2 and "XSCREEN_MEMORY_BUDGET" in err and "1M to 64T" in err and "Traceback" not in err
    with pytest.raises(ScanError, match="XSCREEN_MEMORY_BUDGET"):
        load_scan(path)
    monkeypatch.setenv("XSCREEN_MEMORY_BUDGET", "2G")
    assert load_scan(path).scan_id == "bag"


def test_help_names_what_each_option_does_and_its_default(capsys):
    for argv in (["demo", "--help"], ["model", "--help"], ["--help"]):
        with pytest.raises(SystemExit):
            main(argv)
    text = " ".join(capsys.readouterr().out.split())
    assert "--device DEVICE auto (CUDA when present, else CPU)" in text
    assert "(default: html,pdf,csv,json)" in text
    assert "model model files: info, calibrate" in text


def test_a_summary_of_an_older_schema_is_kept_aside(model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.csv").write_text("scan_id,path,alarm\r\nold,/x.h5,True\r\n")
    path = save_h5(dual_scan(scan_id="bag"), tmp_path / "bag.h5")
    assert main(["screen", str(path), "--model", str(model), "--out", str(out), *ARGS]) == 0
    assert (out / "summary.old-1.csv").read_text().startswith("scan_id,path,alarm")
    assert [r["scan_id"] for r in _rows(out / "summary.csv")] == ["bag"]
