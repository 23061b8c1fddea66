"""`xscreen demo` on the shipped default model and sample bags (the README's first command)."""
import csv
import json
import subprocess
import sys

import pytest

from xscreen import paths


@pytest.mark.skipif(paths.default_model() is None, reason="no shipped default model")
def test_demo_screens_the_samples_and_writes_reports(tmp_path):
    out = tmp_path / "demo"
    res = subprocess.run([sys.executable, "-m", "xscreen", "demo", "--out", str(out), "--formats", "json,csv"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    samples = sorted(p.stem for p in paths.samples_dir().glob("*.h5"))
    assert len(samples) == 5
    for stem in samples:
        report = json.loads((out / stem / "report.json").read_text())
        assert report["tdr"]["alarm_decision"] in ("ALARM", "NO_ALARM")
        assert stem in res.stdout
        # one rule (issue 13): a THREAT object exactly when the bag alarms, in every sample
        flags = [p["assessment"]["flag"] for p in report["tdr"]["ptos"]]
        assert ("THREAT" in flags) == (report["tdr"]["machine_alarm_decision"] == "ALARM")
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert sorted(r["scan_id"] for r in rows) == samples
    # one summary schema for demo and screen (issue 31 item 7), every number ÷ the alarm threshold
    from xscreen.report.summary import SUMMARY_COLUMNS

    assert tuple(next(csv.reader(open(out / "summary.csv")))) == SUMMARY_COLUMNS
    for r in rows:
        top = float(r["top_region_x_alarm"]) if r["top_region_x_alarm"] else 0.0
        assert (top >= 1.0) == (r["alarm"] == "ALARM")
        line = next(ln for ln in res.stdout.splitlines() if ln.startswith(r["scan_id"] + " "))
        assert (f"{top:.2f}" if r["top_region_x_alarm"] else " - ") in line  # the table shows the CSV's number
    header = next(ln for ln in res.stdout.splitlines() if ln.startswith("scan "))
    assert header.split()[-1] == "ms" and all(ln.split()[-1].isdigit() for ln in res.stdout.splitlines()
                                               if ln.startswith("bag0"))
    assert "highest-scoring bag" in res.stdout and "bag02_handgun" in res.stdout.split("highest-scoring bag")[1]
    alarms = {r["scan_id"]: r["alarm"] for r in rows}
    # the shipped model on the shipped bags: the handgun alarms, the two benign bags stay clear
    assert alarms["bag02_handgun"] == "ALARM"
    assert alarms["bag01_benign"] == alarms["bag04_benign"] == "NO_ALARM"


def test_demo_without_a_model_fails_clearly(tmp_path):
    res = subprocess.run([sys.executable, "-m", "xscreen", "demo", "--out", str(tmp_path / "o"),
                          "--model", str(tmp_path / "missing.xsm")], capture_output=True, text=True)
    assert res.returncode == 2
    assert "missing.xsm" in res.stderr and "no model file there" in res.stderr


@pytest.mark.skipif(paths.default_model() is None, reason="no shipped default model")
def test_output_cut_short_by_its_reader_ends_quietly(tmp_path):
    """``xscreen model info M | head -1``: the reader closes the pipe; the command stops with the
    SIGPIPE status (141) and no traceback on stderr."""
    model = paths.default_model()
    code = ("import sys, os; r, w = os.pipe(); os.close(r); os.dup2(w, 1); "
            "from xscreen.cli import main; rc = main(['model', 'info', sys.argv[1]]); "
            "print('rc', rc, file=sys.stderr); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 141, res.stderr
    assert "rc 141" in res.stderr and "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr
