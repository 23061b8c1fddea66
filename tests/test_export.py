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
