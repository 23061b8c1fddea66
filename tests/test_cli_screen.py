"""``xscreen screen``: folders with a corrupt file, outputs per good scan, exit codes, shards."""
import csv
import json

import pytest

from screen_fixtures import dual_scan, save_tiny_model
from xscreen.cli import main
from xscreen.scan import save_h5


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "bags"
    for i in range(3):
        save_h5(dual_scan(seed=i, scan_id=f"bag{i}"), root / ("deep" if i == 2 else "") / f"bag{i}.h5")
    (root / "corrupt.h5").write_bytes(b"\x89HDF\r\n garbage")
    return root


@pytest.fixture
def model(tmp_path):
    return save_tiny_model(tmp_path / "tiny.xsm")


def test_screens_a_folder_skipping_the_corrupt_file(archive, model, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["screen", str(archive), "--model", str(model), "--out", str(out),
               "--threshold", "0.05", "--stride", "16"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "error: " in err and "corrupt.h5" in err and "Traceback" not in err
    for i in range(3):
        data = json.loads((out / f"bag{i}.json").read_text())
        assert data["scan_id"] == f"bag{i}" and data["threshold"] == 0.05 and data["stride"] == 16
        assert data["n_scored"] > 0 and len(data["sha256"]) == 64
        grid = data["score_grid"]
        assert sum(v is not None for row in grid for v in row) == data["n_scored"]
        assert (out / f"bag{i}.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / "corrupt.json").exists()
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert sorted(r["status"] for r in rows) == ["error", "ok", "ok", "ok"]
    bad = next(r for r in rows if r["status"] == "error")
    assert bad["file"].endswith("corrupt.h5") and "corrupt.h5" in bad["error"]


def test_all_good_exits_zero_and_shards_split_the_work(archive, model, tmp_path):
    (archive / "corrupt.h5").unlink()
    out = tmp_path / "out"
    seen = []
    for i in range(2):
        rc = main(["screen", str(archive), "--model", str(model), "--out", str(out),
                   "--threshold", "0.05", "--shard", f"{i}/2", "--overlay", "none"])
        assert rc == 0
        seen.append({r["scan_id"] for r in csv.DictReader((out / f"summary-{i}of2.csv").open())})
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == {"bag0", "bag1", "bag2"}
    assert not list(out.glob("*.png"))


def test_setup_errors_are_one_line(archive, model, tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["screen", str(archive), "--model", str(model), "--out", out]) == 2
    assert "no calibrated threshold" in capsys.readouterr().err
    bogus = tmp_path / "bogus.xsm"
    bogus.write_bytes(b"nope")
    assert main(["screen", str(archive), "--model", str(bogus), "--out", out, "--threshold", "1"]) == 2
    assert "bogus.xsm" in capsys.readouterr().err
    assert main(["screen", str(archive), "--model", str(model), "--out", out, "--threshold", "1",
                 "--shard", "3/2"]) == 2
    assert "shard" in capsys.readouterr().err
    assert main(["screen", str(archive), "--model", str(model), "--out", out, "--threshold", "1",
                 "--stride", "4"]) == 2
    assert "stride" in capsys.readouterr().err


def test_report_hook_writes_the_requested_formats(archive, model, tmp_path):
    pytest.importorskip("xscreen.report")
    (archive / "corrupt.h5").unlink()
    out = tmp_path / "out"
    rc = main(["screen", str(archive / "bag0.h5"), "--model", str(model), "--out", str(out),
               "--threshold", "0.05", "--report", "json,csv"])
    assert rc == 0
    written = sorted(p.suffix for p in (out / "bag0").iterdir())
    assert written == [".csv", ".json"]


HOSTILE_IDS = ("bag02_handgun", "./bag02_handgun", "../escaped", "x/../../up", 'od d\t"*?<>|:\\name')


def _hostile_archive(tmp_path, abs_target):
    root = tmp_path / "bags"
    ids = (*HOSTILE_IDS, str(abs_target))
    for i, scan_id in enumerate(ids):
        save_h5(dual_scan(seed=i, scan_id=scan_id), root / f"f{i}.h5")
    return root, ids


def test_scan_ids_are_data_never_output_paths(model, tmp_path):
    abs_target = tmp_path / "elsewhere" / "pwned"
    root, ids = _hostile_archive(tmp_path, abs_target)
    out = tmp_path / "out"
    rc = main(["screen", str(root), "--model", str(model), "--out", str(out), "--threshold", "0.05",
               "--stride", "16", "--report", "json"])
    assert rc == 0
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and root not in p.parents
               and out not in p.parents and p != model]
    assert outside == [] and not abs_target.parent.exists()
    docs = {json.loads(p.read_text())["scan_id"]: p for p in out.glob("*.json")}
    assert set(docs) == set(ids)  # one JSON per scan (no overwrite), the original id kept as data
    assert docs["bag02_handgun"] != docs["./bag02_handgun"]
    assert all(p.parent == out and p.stem[:1].isalnum() for p in docs.values())
    assert all(set(p.stem) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-") for p in docs.values())
    assert all((out / p.stem / "report.json").is_file() and (out / f"{p.stem}.png").is_file()
               for p in docs.values())
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert {r["scan_id"]: r["output"] for r in rows} == {k: p.stem for k, p in docs.items()}


def test_a_rerun_overwrites_its_own_outputs_but_never_another_scans(model, tmp_path):
    out = tmp_path / "out"
    for sub, seed in (("a", 0), ("b", 1)):  # same id, two runs into one folder (or two shards)
        save_h5(dual_scan(seed=seed, scan_id="bag"), tmp_path / sub / "bag.h5")
    args = ["--model", str(model), "--out", str(out), "--threshold", "0.05", "--overlay", "none"]
    for sub in ("a", "b", "a"):
        assert main(["screen", str(tmp_path / sub), *args]) == 0
    paths = {p.name: json.loads(p.read_text())["path"] for p in out.glob("*.json")}
    assert paths == {"bag.json": str(tmp_path / "a" / "bag.h5"), "bag-2.json": str(tmp_path / "b" / "bag.h5")}


def test_an_empty_input_folder_is_an_error(model, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a scan")
    out = tmp_path / "out"
    rc = main(["screen", str(empty), "--model", str(model), "--out", str(out), "--threshold", "0.05"])
    err = capsys.readouterr().err
    assert rc == 2 and "no scan files" in err and str(empty) in err and "Traceback" not in err
    assert not (out / "summary.csv").exists()
    save_h5(dual_scan(scan_id="only"), empty / "only.h5")  # an empty *shard* of a real archive is fine
    assert main(["screen", str(empty), "--model", str(model), "--out", str(out), "--threshold", "0.05",
                 "--shard", "1/2"]) == 0
    assert (out / "summary-1of2.csv").read_text().count("\n") == 1


def test_a_model_whose_scores_overflow_fails_every_bag_with_a_nonzero_exit(archive, tmp_path, capsys):
    import torch

    from screen_fixtures import tiny_model
    from xscreen.checkpoint import save_model

    (archive / "corrupt.h5").unlink()
    m = tiny_model()
    with torch.no_grad():
        m.discriminator.features[-1].weight.mul_(1e30)  # finite weights, passes every load check
    save_model(tmp_path / "hot.xsm", m.generator, m.discriminator, m.meta)
    out = tmp_path / "out"
    rc = main(["screen", str(archive), "--model", str(tmp_path / "hot.xsm"), "--out", str(out),
               "--threshold", "0.05", "--overlay", "none"])
    assert rc == 1 and "not finite" in capsys.readouterr().err
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["error"] * 3 and not any(r["alarm"] for r in rows)
    assert not list(out.glob("*.json"))


def test_a_calibrated_model_prints_the_batch_alarm_rate_against_its_target(archive, tmp_path, capsys):
    from xscreen.config import Calibration

    (archive / "corrupt.h5").unlink()
    # a tiny alarm threshold: every bag alarms, 3/3 against a 5 % target, beyond sampling error
    cal = Calibration(1e-6, 0.01, 1e-6, 0.05, stride=16, version=1)
    model = save_tiny_model(tmp_path / "cal.xsm", calibration=cal)
    rc = main(["screen", str(archive), "--model", str(model), "--out", str(tmp_path / "out"),
               "--stride", "16", "--overlay", "none"])
    out = capsys.readouterr().out
    assert rc == 0 and "(3 alarms, 0 failed, 0 skipped)" in out
    assert "DRIFT: alarm rate 100.0% (3/3 bags" in out and "--from-audit" in out
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    assert {r["threshold_version"].split(".")[-1] for r in rows} == {"v1"}
    assert all(int(r["n_alarm_regions"]) >= 1 for r in rows)
