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
    assert bad["path"].endswith("corrupt.h5") and "corrupt.h5" in bad["error"]


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
