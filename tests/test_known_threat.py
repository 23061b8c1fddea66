"""Known-threat head (issue 29 Part 2): stored beside G and D, checked on load, fused per patch in
Scorer by benign tails; its TIP manifest is recorded and kept out of the site acceptance test."""
import json

import numpy as np
import pytest
import torch

from screen_fixtures import save_tiny_model
from xscreen.checkpoint import ModelError, _checksum, load_model, read_meta
from xscreen.cli import main
from xscreen.known_threat import trained_ids
from xscreen.known_threat.build import add_known_threat, describe, sources
from xscreen.known_threat.fuse import Fusion, TailMap
from xscreen.known_threat.head import HeadConfig, head_logits
from xscreen.model_checks.known_threat import fuse
from xscreen.scan import save_h5
from xscreen.scoring import Scorer
from xscreen.synth import synth_bag
from xscreen.tip import build_library

CFG = HeadConfig(steps=3, per_bag=2, stride=16, batch=16)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("kt")
    lib = build_library(d / "lib", per_category=3, seed=1)
    (d / "benign").mkdir()
    for i in range(3):
        save_h5(synth_bag(60 + i, threat=False, width=160).scan, d / "benign" / f"b{i}.h5")
    base = save_tiny_model(d / "base.xsm", size=32)
    rep = add_known_threat(base, lib, d / "benign", d / "kt.xsm", CFG)
    return d, lib, base, rep


def test_the_head_is_stored_beside_g_and_d_with_its_manifest_and_the_base_model_is_untouched(made):
    d, lib, base, rep = made
    m = load_model(d / "kt.xsm")
    assert m.known_threat is not None and m.meta.calibration is None
    ids = set(m.meta.known_threat.fti_ids)
    assert ids and ids <= {f.fti_id for f in lib.ftis} and trained_ids(d / "kt.xsm") == ids
    assert rep.n_train_bags == 2 and rep.n_tail_bags == 1 and rep.n_positive > 0
    assert load_model(base).known_threat is None and trained_ids(base) == frozenset()
    assert describe(read_meta(base)[0]) == "anomaly score alone" and "known-threat" in describe(m.meta)


def test_scorer_fuses_per_patch_by_benign_tails(made):
    d, *_ = made
    fused, plain = Scorer(d / "kt.xsm", device="cpu", precision="fp32"), Scorer(made[2], device="cpu", precision="fp32")
    x = torch.rand(40, 2, 32, 32) * 2 - 1
    a = plain.score(x, keep_reconstructions=False).scores
    k = head_logits(fused.known, x)
    want = fuse(fused.known_meta, a, k)
    got = fused.score(x, keep_reconstructions=False).scores
    assert torch.allclose(got, want, atol=1e-4) and bool((got >= 0).all())
    assert not torch.allclose(got, a)
    srt = got.sort().values
    level = float(srt[19] + srt[20]) / 2  # between two scores: no float32/float64 tie at the level
    levels = sources(fused, x, level)
    assert set(levels) <= {"anomaly", "known-threat", "both", ""}
    assert [bool(s) for s in levels] == (got >= level).tolist() and sum(map(bool, levels)) == 20


def test_tail_fusion_ranks_by_the_rarer_score():
    rng = np.random.default_rng(0)
    f = Fusion(TailMap.fit(rng.normal(size=2000)), TailMap.fit(rng.normal(0, 10, size=2000)))
    # an anomaly score 4 sd out beats a logit 2 sd out, whatever the raw scales
    assert f.fuse(np.array([4.0]), np.array([0.0]))[0] > f.fuse(np.array([0.0]), np.array([20.0]))[0]
    assert f.anomaly.p(np.array([-10.0]))[0] == 1.0 and 0 < f.anomaly.p(np.array([50.0]))[0] < 1e-10


def _rewrite(src, dst, edit_meta=None, drop_prefix=None):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as fh:
        header, tensors = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    meta = json.loads(header["meta"])
    if edit_meta:
        edit_meta(meta)
    if drop_prefix:
        meta.pop("known_threat", None)
    text = json.dumps(meta, sort_keys=True)
    save_file(tensors, str(dst), metadata={**header, "meta": text, "checksum": _checksum(tensors, text)})


def test_a_tampered_head_record_is_refused_on_load(made, tmp_path):
    d, *_ = made
    _rewrite(d / "kt.xsm", tmp_path / "a.xsm", lambda m: m["known_threat"].update(known_scale=-1.0))
    with pytest.raises(ModelError, match="known_threat.*scale"):
        load_model(tmp_path / "a.xsm")
    _rewrite(d / "kt.xsm", tmp_path / "b.xsm", lambda m: m["known_threat"].update(ndf=16))
    with pytest.raises(ModelError, match="known_threat"):
        load_model(tmp_path / "b.xsm")
    _rewrite(d / "kt.xsm", tmp_path / "c.xsm", drop_prefix=True)  # head weights with no record
    with pytest.raises(ModelError, match="known_threat"):
        load_model(tmp_path / "c.xsm")


def test_cli_add_info_and_the_site_acceptance_test_keeps_the_trained_ftis_out(made, tmp_path, capsys):
    d, lib, base, _ = made
    assert main(["known-threat", "add", str(base), str(lib.path), "--benign", str(d / "benign"), "-o",
                 str(tmp_path / "m.xsm"), "--steps", "2", "--per-bag", "1"]) == 0
    assert "uncalibrated" in capsys.readouterr().out
    assert main(["known-threat", "info", str(tmp_path / "m.xsm"), "--ids", str(tmp_path / "ids.json")]) == 0
    ids = set(json.loads((tmp_path / "ids.json").read_text())["fti_ids"])
    assert ids == trained_ids(tmp_path / "m.xsm") and ids
    rc = main(["evaluate", "--model", str(tmp_path / "m.xsm"), "--tip", str(lib.path), "--benign", str(d / "benign"),
               "--out", str(tmp_path / "o"), "--stride", "16", "--threshold", "5", "-q"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["n_excluded"] == len(ids) and not set(doc["fti_ids_used"]) & ids
    assert main(["known-threat", "add", str(base), str(lib.path), "--benign", str(d / "benign"), "-o", str(base)]) == 2


def test_onnx_export_refuses_a_fused_model_rather_than_drop_its_head(made):
    from xscreen.export import onnx_bytes

    with pytest.raises(ValueError, match="known-threat head is not in the ONNX graph"):
        onnx_bytes(made[0] / "kt.xsm")
