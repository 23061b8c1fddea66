"""The darkness-matched within-image AUC of benchmarks/_sixray_measures.py (issue 12)."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _sixray_measures import darkness_matched_auc  # noqa: E402


def test_only_pairs_of_nearly_equal_darkness_count():
    dark = [np.array([0.50, 0.90, 0.51, 0.10])]
    inside, outside = [np.array([True, True, False, False])], [np.array([False, False, True, True])]
    # pairs within 0.02: (0, 2) only; (1, *) and (*, 3) differ by far more
    auc, pairs = darkness_matched_auc([np.array([1.0, 0.0, 0.0, 9.0])], dark, inside, outside)
    assert pairs == 1 and auc == 1.0
    auc, _ = darkness_matched_auc([np.array([0.0, 9.0, 1.0, -9.0])], dark, inside, outside)
    assert auc == 0.0


def test_darkness_itself_scores_near_one_half_and_ties_count_half():
    rng = np.random.default_rng(0)
    dark = [rng.uniform(0, 1, 400) for _ in range(3)]
    inside = [rng.uniform(size=400) < 0.3 for _ in range(3)]
    outside = [~i for i in inside]
    auc, pairs = darkness_matched_auc(dark, dark, inside, outside)
    assert pairs > 1000 and abs(auc - 0.5) < 0.05
    flat = [np.zeros(400) for _ in range(3)]
    assert darkness_matched_auc(flat, dark, inside, outside)[0] == 0.5
    perfect = [i.astype(float) for i in inside]
    assert darkness_matched_auc(perfect, dark, inside, outside)[0] == 1.0


def test_images_are_never_paired_with_each_other():
    dark = [np.array([0.5, 0.9]), np.array([0.9, 0.5])]
    inside = [np.array([True, False]), np.array([False, True])]
    outside = [~i for i in inside]
    auc, pairs = darkness_matched_auc([np.ones(2), np.ones(2)], dark, inside, outside)
    assert pairs == 0 and np.isnan(auc)  # 0.5-darkness patches exist in both images, never as a pair


def test_pooled_matched_auc_of_the_synthetic_baselines_equals_brute_force():
    """benchmarks/synthetic_baselines.py pairs threat patches with benign-bag patches across bags by a
    sorted window; it must count exactly the pairs a brute-force double loop counts."""
    from synthetic_baselines import darkness_matched_auc as pooled

    rng = np.random.default_rng(1)
    b, t = rng.integers(0, 5, 300).astype(float), rng.integers(0, 5, 80).astype(float)  # many ties
    bd, td = rng.uniform(0, 1, 300), rng.uniform(0, 1, 80)
    close = np.abs(td[:, None] - bd[None, :]) <= 0.02
    cmp = (t[:, None] > b[None, :]) + 0.5 * (t[:, None] == b[None, :])
    auc, pairs = pooled(b, bd, t, td)
    assert pairs == int(close.sum()) > 0
    assert abs(auc - float(cmp[close].sum()) / pairs) < 1e-12
    assert pooled(bd, bd, td, td)[0] == pytest.approx(0.5, abs=0.08)  # darkness itself: near chance
    assert pooled(b, bd, t, np.full(80, 5.0)) == (pytest.approx(float("nan"), nan_ok=True), 0)


def test_knn_baseline_scores_the_distance_to_the_nearest_benign_training_patch():
    import torch
    from _baselines import KnnBaseline

    rng = np.random.default_rng(0)
    train = torch.from_numpy(rng.uniform(-1, 1, (50, 2, 4, 4)).astype(np.float32))
    from synthetic_baselines import _Items  # items are plain (C, S, S) tensors, as the benchmarks pass them

    knn = KnnBaseline(k=1).fit(_Items(train))
    assert knn.memory.shape == (50, 32)
    # a training patch is at distance 0; one shifted by 0.5 everywhere is at RMS distance <= 0.5
    q = torch.stack([train[3], train[7] + 0.5])
    s = knn.score(_Items(q))
    assert s.shape == (2,) and s[0] == pytest.approx(0.0, abs=1e-6) and 0.0 < s[1] <= 0.5 + 1e-6
    brute = min(float(((train[i] - q[1]) ** 2).mean().sqrt()) for i in range(50))
    assert s[1] == pytest.approx(brute, rel=1e-5)
    # k = 3 averages the three nearest, and only up to max_fit patches are kept
    s3 = KnnBaseline(k=3, max_fit=20).fit(_Items(train)).score(_Items(q))
    assert s3[1] >= s[1] - 1e-6 and s3[0] > 0.0  # the mean of three cannot be 0 (only one copy of train[3])
