"""The IED part labelling of benchmarks/checks/ied_components.py: the same bag, its IED split by part."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "checks"))
from ied_components import PARTS, render_parts  # noqa: E402

from xscreen.synth import bags, threats  # noqa: E402


def _seed_with_ied() -> int:
    for seed in range(200):
        if "ied" in [t.type for t in bags.synth_bag(seed, threat=True).threats]:
            return seed
    raise AssertionError("no IED in 200 bags")


def test_parts_relabel_the_same_bag_and_leave_the_generator_as_it_was():
    seed = _seed_with_ied()
    plain = bags.synth_bag(seed, threat=True)
    parts = render_parts(seed)
    np.testing.assert_array_equal(parts.scan.channels, plain.scan.channels)  # the image is untouched
    k = 1 + [t.type for t in plain.threats].index("ied")
    labels = set(np.unique(parts.mask[parts.mask > 10]).tolist())
    assert {10 * k + 1 + j for j in range(4)} <= labels <= {10 * k + 1 + j for j in range(len(PARTS))}
    # the parts cover what the whole IED covered (a later threat may overwrite either alike)
    assert ((parts.mask > 10) == (plain.mask == k)).mean() > 0.999
    # the wrappers are gone again
    assert threats.THREATS["ied"] is threats.ied and bags.synth_bag(seed, threat=True).mask.max() < 10


def test_sixray_supervised_ceiling_never_scores_a_bag_with_a_network_that_saw_it(monkeypatch):
    """Leave-bags-out folds: each bag's patches reach only the networks of the other folds, its
    positives are the patches >= 25 % inside a box, its negatives those wholly outside (the patches
    in between are left out), and every bag is scored exactly once."""
    import sixray_supervised_ceiling as sc

    rng = np.random.default_rng(0)
    n = 8
    # bag i's patches all hold the value i (benign training patches 200), so a training set names its bags
    d = {"train": np.full((5, 3, 4, 4), 200, np.uint8),
         "threat": [np.full((6, 3, 4, 4), i, np.uint8) for i in range(n)],
         "cover": [np.array([0.0, 0.0, 0.1, 0.3, 0.6, 1.0]) for _ in range(n)],
         "dark": [rng.random(6) for _ in range(n)]}
    seen_by_fold = []

    def fake_train(x, y, size, epochs, seed):
        vals = torch_round(x)
        seen_by_fold.append(set(vals.tolist()) - {200})
        assert int(y.sum()) == 3 * len(seen_by_fold[-1])  # cover 0.3, 0.6, 1.0 per bag
        assert len(y) == 5 + 5 * len(seen_by_fold[-1])  # benign + (2 outside + 3 inside) per bag; 0.1 left out
        return len(seen_by_fold) - 1

    def torch_round(x):
        return np.unique(np.rint((x[:, 0, 0, 0].numpy() + 1.0) * 127.5).astype(int))

    scored_by = {}

    def fake_logits(fold, p):
        i = int(p[0, 0, 0, 0])
        assert i not in seen_by_fold[fold]
        scored_by[i] = scored_by.get(i, 0) + 1
        return np.zeros(len(p))

    monkeypatch.setattr(sc, "train_net", fake_train)
    monkeypatch.setattr(sc, "logits", fake_logits)
    folds = np.array_split(rng.permutation(n), 4)
    scores = sc.held_out_scores(d, folds, epochs=1, patch=4, seed=0)
    assert len(seen_by_fold) == 4 and all(len(s) == 6 for s in seen_by_fold)
    assert scored_by == {i: 1 for i in range(n)} and all(len(s) == 6 for s in scores)


def test_context_inpainting_predicts_each_quadrant_without_seeing_it():
    """benchmarks/checks/context_inpaint.py: the patch's place in the context window is blanked (the
    control arm blanks the whole window), a quadrant's prediction does not change when its own pixels
    are shuffled (same mean fill), and does change when the surroundings change (the wider view reaches
    the prediction)."""
    import torch
    from context_inpaint import blank_centre, context_generator, inpaint_recon, inpaint_scores

    torch.manual_seed(0)
    c, s = 2, 64
    x = torch.rand(3, 2 * c, s, s) * 2 - 1
    b = blank_centre(x, c, zero_context=False)
    assert torch.equal(b[:, :c], x[:, :c]) and (b[:, c:, 16:48, 16:48] == 0).all()
    assert torch.equal(b[:, c:, :16], x[:, c:, :16]) and torch.equal(b[:, c:, :, 48:], x[:, c:, :, 48:])
    z = blank_centre(x, c, zero_context=True)
    assert torch.equal(z[:, :c], x[:, :c]) and (z[:, c:] == 0).all()

    g = context_generator(c, s, 8).eval()
    assert g(b).shape == (3, c, s, s)
    with torch.no_grad():
        ref = inpaint_recon(g, b, c)
        shuffled = b.clone()
        q = shuffled[:, :c, :32, :32].reshape(3, c, -1)
        shuffled[:, :c, :32, :32] = q[:, :, torch.randperm(q.shape[-1])].reshape(3, c, 32, 32)
        same = inpaint_recon(g, shuffled, c)
        torch.testing.assert_close(same[:, :, :32, :32], ref[:, :, :32, :32])
        assert not torch.allclose(same[:, :, 32:, 32:], ref[:, :, 32:, 32:])  # the other quadrants saw it
        moved = b.clone()
        moved[:, c:, :8] = -moved[:, c:, :8]  # the surroundings above the patch
        assert not torch.allclose(inpaint_recon(g, moved, c)[:, :, :32, :32], ref[:, :, :32, :32])
    r = inpaint_scores(g, b, c)
    assert r.shape == (3,) and np.isfinite(r).all() and (r > 0).all()


def test_pseudo_anomaly_pairs_differ_in_shape_not_darkness_when_balanced():
    """benchmarks/checks/pseudo_anomaly.py: every positive carries an object (darker somewhere); with
    balance each negative carries the same mean added attenuation per channel, spread evenly; the
    benign tail transform is monotone and 0 below every calibration score."""
    import torch
    from pseudo_anomaly import tail, with_objects

    rng = np.random.default_rng(0)
    x = torch.full((6, 2, 64, 64), -0.5)
    neg, pos = with_objects(x, "dual", 9.0, rng, (0.2, 0.5))
    assert torch.equal(neg, x) and ((pos - x) > 0.01).flatten(1).any(1).all()
    neg, pos = with_objects(x, "dual", 9.0, np.random.default_rng(0), (0.2, 0.5), balance=True)
    torch.testing.assert_close(neg.mean((2, 3)), pos.mean((2, 3)), atol=1e-5, rtol=0)
    assert (neg.flatten(2).std(2) < 1e-6).all() and (pos.flatten(2).std(2) > 0.01).all()
    calib = np.arange(100, dtype=float)
    t = tail(calib, np.array([-5.0, 10.5, 50.0, 99.0, 1e9]))
    assert t[0] == 0 and np.all(np.diff(t) >= 0) and t[-1] == t[-2] and np.isfinite(t).all()
