"""ONNX export and the onnxruntime scoring backend: the graph holds both networks and the score,
carries the model's metadata, and scores like torch (on random patches and on the sample bags)."""
import json
import sys

import numpy as np
import pytest
import torch

from screen_fixtures import save_tiny_model
from xscreen import paths
from xscreen.checkpoint import load_model
from xscreen.cli import main
from xscreen.config import ScreenConfig
from xscreen.scoring import Scorer

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def test_export_holds_both_networks_the_score_and_the_metadata(tmp_path, capsys):
    model = save_tiny_model(tmp_path / "tiny.xsm", size=32)
    out = tmp_path / "tiny.onnx"
    assert main(["export", str(model), "--format", "onnx", "-o", str(out)]) == 0
    assert "onnxruntime scores differ from torch by at most" in capsys.readouterr().out
    loaded = load_model(model)
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["xscreen.model_id"] == loaded.model_id and props["xscreen.checksum"] == loaded.checksum
    assert json.loads(props["xscreen.score"]) == {"lam": loaded.meta.train.lam, "recon": loaded.meta.train.recon,
                                                  "score_inpaint": 0, "recon_window": 0, "density": 0.0,
                                                  "density_scale": 0.0}
    assert json.loads(props["xscreen.net"])["size"] == 32
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    torch_scorer = Scorer(loaded, device="cpu", precision="fp32")
    for n in (1, 5, 17):  # the batch axis is dynamic
        x = torch.rand(n, 2, 32, 32, generator=torch.Generator().manual_seed(n)) * 2 - 1
        score, recon, latent, x_hat = session.run(None, {"patches": x.numpy()})
        want = torch_scorer.score(x)
        assert score.shape == (n,) and x_hat.shape == (n, 2, 32, 32)
        np.testing.assert_allclose(score, want.scores.numpy(), atol=1e-5)
        np.testing.assert_allclose(recon, want.recon_error.numpy(), atol=1e-5)
        np.testing.assert_allclose(latent, want.latent_error.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(x_hat, want.reconstructions.numpy(), atol=1e-5)


def test_export_carries_the_score_options(tmp_path):
    """Test-time inpainting, the windowed residual and the density prior (issue 12) are part of the
    exported graph."""
    from dataclasses import replace

    from screen_fixtures import tiny_model
    from xscreen.checkpoint import save_model
    from xscreen.export import onnx_bytes

    m = tiny_model(size=32)
    m = replace(m, meta=replace(m.meta, train=replace(m.meta.train, score_inpaint=2, recon_window=8, density=1.0,
                                                      density_scale=0.3)))
    save_model(tmp_path / "opt.xsm", m.generator, m.discriminator, m.meta)
    loaded = load_model(tmp_path / "opt.xsm")
    session = ort.InferenceSession(onnx_bytes(loaded), providers=["CPUExecutionProvider"])
    x = torch.rand(6, 2, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    score = session.run(["score"], {"patches": x.numpy()})[0]
    np.testing.assert_allclose(score, Scorer(loaded, device="cpu", precision="fp32").score(x).scores.numpy(),
                               atol=1e-5)


@pytest.mark.slow
def test_onnxruntime_backend_screens_the_sample_bags_like_torch():
    from xscreen.export import OnnxScorer
    from xscreen.pipeline import screen
    from xscreen.scan import load_scan

    model, bags = paths.default_model(), sorted(paths.samples_dir().glob("*.h5"))
    assert model is not None and len(bags) == 5
    torch_scorer = Scorer(model, device="cpu", precision="fp32")
    onnx_scorer = OnnxScorer(model)
    assert onnx_scorer.threshold == torch_scorer.threshold and onnx_scorer.model_id == torch_scorer.model_id
    for bag in bags:
        scan = load_scan(bag)
        a, b = screen(scan, torch_scorer, ScreenConfig()), screen(scan, onnx_scorer, ScreenConfig())
        assert np.abs(a.score_grid - b.score_grid).max() <= 1e-3, bag.name
        assert a.alarm == b.alarm and len(a.regions) == len(b.regions), bag.name


def test_export_without_onnx_says_what_to_install(tmp_path, capsys, monkeypatch):
    model = save_tiny_model(tmp_path / "tiny.xsm", size=32)
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    assert main(["export", str(model), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "pip install 'xscreen[onnx]'" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_cli_screen_backend_onnx_decides_like_torch(tmp_path):
    import csv

    bag = paths.samples_dir() / "bag02_handgun.h5"
    rows, codes = {}, {}
    for backend in ("torch", "onnx"):
        out = tmp_path / backend
        codes[backend] = main(["screen", str(bag), "--out", str(out), "--backend", backend, "--precision", "fp32"])
        with open(out / "summary.csv", newline="") as fh:
            rows[backend] = next(csv.DictReader(fh))
    assert codes["torch"] == codes["onnx"] and rows["onnx"]["status"] == "ok" and rows["onnx"]["alarm"] == "ALARM"
    keys = [k for k in rows["torch"] if k in ("alarm", "n_regions", "n_alarm_regions")]
    assert keys and all(rows["torch"][k] == rows["onnx"][k] for k in keys)
    assert abs(float(rows["torch"]["scan_score"]) - float(rows["onnx"]["scan_score"])) <= 1e-3


def test_screen_takes_an_exported_onnx_model(tmp_path, capsys):
    """`xscreen screen --model m.onnx --backend onnx` used to fail: 'not a readable model file ...
    header too large' (issue 31 item 8). The .onnx carries what scoring needs as metadata."""
    import csv

    from screen_fixtures import dual_scan
    from xscreen.scan import save_h5

    model = save_tiny_model(tmp_path / "tiny.xsm", size=32)
    assert main(["export", str(model), "-o", str(tmp_path / "tiny.onnx")]) == 0
    for i in range(2):
        save_h5(dual_scan(seed=i, scan_id=f"bag{i}"), tmp_path / "bags" / f"bag{i}.h5")
    rows = {}
    for name, extra in (("xsm", []), ("onnx", ["--backend", "onnx"])):
        m = tmp_path / f"tiny.{name}"
        rc = main(["screen", str(tmp_path / "bags"), "--model", str(m), *extra, "--out", str(tmp_path / name),
                   "--threshold", "0.05", "--stride", "16", "--overlay", "none", "--precision", "fp32"])
        assert rc == 0, capsys.readouterr().err
        with open(tmp_path / name / "summary.csv", newline="") as fh:
            rows[name] = {r["scan_id"]: r for r in csv.DictReader(fh)}
    for bag in ("bag0", "bag1"):
        a, b = rows["xsm"][bag], rows["onnx"][bag]
        assert a["alarm"] == b["alarm"] and a["n_regions"] == b["n_regions"]
        assert a["model_id"] == b["model_id"] and a["threshold_version"] == b["threshold_version"]
        assert abs(float(a["scan_score"]) - float(b["scan_score"])) <= 1e-4


def _retag(src, dst, **changes):
    """Copy an exported .onnx with metadata values changed and the digest recomputed (a consistent
    edit: the digest only catches damage)."""
    from xscreen.export import DIGEST_KEY, metadata_digest

    proto = onnx.load(str(src))
    props = {p.key: p.value for p in proto.metadata_props}
    props.update(changes)
    props[DIGEST_KEY] = metadata_digest(props)
    del proto.metadata_props[:]
    for k, v in props.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.save(proto, str(dst))
    return dst


def test_an_onnx_files_metadata_is_checked_like_a_model_files(tmp_path, capsys):
    from xscreen.checkpoint import ModelError
    from xscreen.onnx_file import read_onnx

    model = save_tiny_model(tmp_path / "tiny.xsm", size=32)
    good = tmp_path / "tiny.onnx"
    assert main(["export", str(model), "-o", str(good)]) == 0
    _, loaded = read_onnx(good)
    assert loaded.meta == load_model(model).meta and loaded.model_id == load_model(model).model_id
    meta = json.loads({p.key: p.value for p in onnx.load(str(good)).metadata_props}["xscreen.meta"])
    bad_lam = _retag(good, tmp_path / "lam.onnx", **{"xscreen.meta": json.dumps(
        {**meta, "train": {**meta["train"], "lam": 7.0}})})
    window = _retag(good, tmp_path / "window.onnx", **{"xscreen.meta": json.dumps(
        {**meta, "train": {**meta["train"], "recon_window": 128}})})
    kind = _retag(good, tmp_path / "kind.onnx", **{"xscreen.meta": json.dumps(
        {**meta, "preprocess": {**meta["preprocess"], "kind": "rgb"}})})
    from dataclasses import asdict

    from xscreen.config import Calibration

    far = _retag(good, tmp_path / "far.onnx", **{"xscreen.meta": json.dumps(
        {**meta, "calibration": asdict(Calibration(0.05, 0.01, 0.1, 1e-300))})})  # fails open: never alarms
    for path, field in ((bad_lam, "train.lam"), (window, "recon_window"), (kind, "channels"),
                        (far, "calibration.scan_far")):
        with pytest.raises(ModelError, match=field):
            read_onnx(path)
        rc = main(["screen", str(path), "--model", str(path), "--out", str(tmp_path / "o"), "--threshold", "0.05"])
        err = capsys.readouterr().err
        assert rc == 2 and path.name in err and "Traceback" not in err
    damaged = tmp_path / "damaged.onnx"
    proto = onnx.load(str(good))
    next(p for p in proto.metadata_props if p.key == "xscreen.meta").value = json.dumps(
        {**meta, "train": {**meta["train"], "lam": 0.5}})
    onnx.save(proto, str(damaged))
    with pytest.raises(ModelError, match="digest mismatch"):
        read_onnx(damaged)
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07not a protobuf at all" * 10)
    with pytest.raises(ModelError, match="junk.onnx"):
        read_onnx(tmp_path / "junk.onnx")
