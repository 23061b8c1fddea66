"""The real-data benchmarks: their pure parts on synthetic arrays, and each script's --quick mode on a
tiny slice of ../shared/realdata (skipped when that folder is absent)."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import _baselines as baselines  # noqa: E402
import paper_cifar10  # noqa: E402
import sixray  # noqa: E402
from _common import ArrayPatches  # noqa: E402

from xscreen.config import NetConfig  # noqa: E402


def test_array_patches_maps_uint8_to_model_range():
    p = np.array([0, 255, 127], np.uint8).reshape(1, 3, 1, 1).repeat(2, 0)
    ds = ArrayPatches(p)
    assert torch.allclose(ds[0].flatten(), torch.tensor([-1.0, 1.0, 127 / 127.5 - 1]))
    assert torch.equal(torch.stack(ds.__getitems__([0, 1])), torch.stack([ds[0], ds[1]]))
    with pytest.raises(ValueError, match="uint8"):
        ArrayPatches(p.astype(np.float32))


def test_cifar_protocol_matches_the_reference_split():
    # 10 classes x (50 train + 10 test) synthetic images
    y = np.r_[np.repeat(np.arange(10), 50), np.repeat(np.arange(10), 10)]
    d = paper_cifar10.Cifar(np.zeros((len(y), 3, 32, 32), np.uint8), y, np.r_[np.ones(500, bool), np.zeros(100, bool)])
    sp = paper_cifar10.protocol(d, abnormal=1, val_fraction=0.1, max_train=None, seed=0)
    assert len(sp.val) == 45 and len(sp.train) == 405  # 9 normal classes x 50, 10 % held out
    assert not set(sp.train) & set(sp.val) and (d.y[np.r_[sp.train, sp.val]] != 1).all() and d.train[sp.val].all()
    # test: the 90 normal test images + all 60 abnormal images (its train AND test images)
    assert (sp.test_labels == 0).sum() == 90 and sp.test_labels.sum() == 60
    assert (d.y[sp.test][sp.test_labels == 1] == 1).all() and not d.train[sp.test][sp.test_labels == 0].any()
    assert len(paper_cifar10.protocol(d, 1, 0.1, 100, 0).train) == 100


def test_fixed_k_scan_score_does_not_grow_with_bag_size_but_max_does():
    rng = np.random.default_rng(0)
    small, big = rng.normal(size=50), rng.normal(size=2000)
    agg = lambda s, how: sixray.aggregate(s, how, 32, np.random.default_rng(1), draws=400)  # noqa: E731
    assert agg(big, "max") - agg(small, "max") > 0.8
    assert abs(agg(big, "max@k") - agg(small, "max@k")) < 0.25
    assert sixray.aggregate(np.array([1.0, 5.0, 3.0]), "max@k", 32, rng) == 5.0  # fewer than k: all of them


def test_box_coverage_of_patches():
    bag = sixray.Bag("x", 1, 200, 100, np.zeros((3, 3, 32, 32), np.uint8), np.array([[0, 0], [0, 32], [0, 64]]),
                     np.zeros(3), np.zeros(3), 0.5, 0.5)
    # box covers original x 0..63 (scaled 0.5 -> 0..31), y 0..31 (-> 0..15): half of the first patch
    cover = sixray.box_masks(bag, [{"box": [0, 0, 64, 32]}], scale=0.5, size=32)
    assert cover == pytest.approx([0.5, 0.0, 0.0])


def test_pca_baseline_reconstructs_its_span_and_flags_what_is_outside():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(4, 3 * 8 * 8))
    x = np.clip(128 + rng.normal(size=(300, 4)) @ basis * 10, 0, 255).astype(np.uint8).reshape(300, 3, 8, 8)
    pca = baselines.PcaBaseline(k=8).fit(ArrayPatches(x))
    odd = rng.integers(0, 256, size=(20, 3, 8, 8), dtype=np.uint8)
    assert pca.score(ArrayPatches(x)).mean() * 3 < pca.score(ArrayPatches(odd)).mean()


def test_ganomaly_network_shapes_and_a_training_epoch():
    net = NetConfig(size=32, channels=3, ngf=4, ndf=4, nz=10)
    g = baselines.GanomalyGenerator(net)
    x_hat, z, zh = g(torch.zeros(2, 3, 32, 32))
    assert x_hat.shape == (2, 3, 32, 32) and z.shape == zh.shape == (2, 10, 1, 1)
    data = ArrayPatches(np.random.default_rng(0).integers(0, 256, (16, 3, 32, 32), dtype=np.uint8))
    out = baselines.train_ganomaly(net, data, data, epochs=2, batch_size=8, log=lambda m: None)
    assert out.best_epoch in (1, 2) and len(out.history) == 2
    s = baselines.ganomaly_scores(out.generator, data)
    assert s.shape == (16,) and np.isfinite(s).all() and (s >= 0).all()


def test_paper_cifar10_quick(realdata, tmp_path):
    assert paper_cifar10.main(["--quick", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "cifar10_quick.json").read_text())
    c = r["classes"][0]
    assert c["class"] == "automobile" and c["paper_skipganomaly_auc"] == 0.953
    assert c["n_test_normal"] == 9 * 6 and c["n_test_abnormal"] == 30 + 6
    assert [m["method"] for m in c["methods"]] == ["Skip-GANomaly", "GANomaly", "PCA (k=16)"]
    for m in c["methods"]:
        assert 0.0 <= m["auc"] <= 1.0 and 0.0 < m["ap"] <= 1.0
    assert c["methods"][0]["history"][0]["test_auc"] == pytest.approx(c["methods"][0]["auc_best_epoch_on_test"])
    assert (tmp_path / "work" / "automobile" / "skip" / "skipganomaly.xsm").is_file()
    assert "optimistic" in (tmp_path / "cifar10_quick.md").read_text()


def test_sixray_quick(realdata, tmp_path):
    assert sixray.main(["--quick", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "sixray_quick.json").read_text())
    assert r["n_bags"] == {"train": 4, "val": 2, "test_benign": 3, "test_threat": 3}
    tr, va, te = (set(r["splits"][k]) for k in ("train", "val", "test_benign"))
    assert not (tr & va or tr & te or va & te)  # split by bag
    scores = {(x["method"], x["score"].split(",")[0]) for x in r["scan_level"]}
    assert ("trivial", "image area (px)") in scores and ("Skip-GANomaly", "max@8") in scores
    assert all(0.0 <= x["auc"] <= 1.0 for x in r["scan_level"])
    trivial = [x for x in r["scan_level"] if x["method"] == "trivial"]
    assert all(x["auc"] >= 0.5 for x in trivial)  # oriented: a trivial rule picks its direction
    within = {x["method"]: x for x in r["within_image"]}
    assert {"Skip-GANomaly", "GANomaly", "patch darkness (trivial)"} <= set(within)
    assert all(x["n_images"] >= 1 and x["n_inside"] > 0 and x["n_outside"] > 0 for x in within.values())
    # the product's path (pipeline.screen) scores the patches it shares with the harness identically
    model = tmp_path / "work" / "skip" / "skipganomaly.xsm"
    assert sixray.main(["--quick", "--check-pipeline", str(model), "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "sixray_pipeline_check.json").read_text())["rows"]
    assert len(rows) == 4 and all(r["common_patches"] > 10 and r["common_max_abs_diff"] < 1e-4 for r in rows)
