import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from screen_fixtures import save_tiny_model, tiny_model, with_calibration
from xscreen.cli import main
from xscreen.config import ScreenConfig
from xscreen.evaluate import EvalConfig, EvalProgress, EvalResult, evaluate_model, run_evaluation
from xscreen.evaluate import truth
from xscreen.scan import Scan, ScanError, save_h5
from xscreen.scoring import PatchScores, Scorer

H, W, I0 = 96, 128, 60000.0
THREAT_BOX = (40, 30, 20, 14)  # x, y, w, h
THREAT_T = 2000 / I0  # denser than anything benign


class AttenuationScorer(Scorer):
    """A stand-in model whose score is the patch's peak attenuation: threats (denser than any
    benign item here) score higher, so every metric has a known answer."""

    def score(self, patches: torch.Tensor, keep_reconstructions: bool = True) -> PatchScores:
        s = ((patches.float() + 1) / 2).amax(dim=(1, 2, 3))
        return PatchScores(s, s, torch.zeros_like(s), patches.float() if keep_reconstructions else None)


def bag(seed: int, threat: bool) -> Scan:
    rng = np.random.default_rng(seed)
    t = np.ones((2, H, W), np.float32)
    t[:, 15:80, 10:115] = rng.uniform(0.2, 0.6, size=(2, 65, 105))  # the bag's clutter
    if threat:
        x, y, w, h = THREAT_BOX
        t[:, y:y + h, x:x + w] = THREAT_T
    return Scan(f"{'t' if threat else 'b'}{seed}", "dual", (t * I0).astype(np.uint16), I0)


@pytest.fixture
def dataset(tmp_path) -> Path:
    """synth-style layout: benign/, threat/, masks/, boxes/, labels.csv."""
    for d in ("benign", "threat", "masks", "boxes"):
        (tmp_path / d).mkdir()
    for i in range(4):
        save_h5(bag(i, False), tmp_path / "benign" / f"b{i}.h5")
    rows = ["stem,label,threat_types"]
    for i in range(3):
        save_h5(bag(10 + i, True), tmp_path / "threat" / f"t{i}.h5")
        mask = np.zeros((H, W), np.uint8)
        x, y, w, h = THREAT_BOX
        mask[y:y + h, x:x + w] = 1
        cv2.imwrite(str(tmp_path / "masks" / f"t{i}.png"), mask)
        kind = "knife" if i == 0 else "gun"
        (tmp_path / "boxes" / f"t{i}.json").write_text(json.dumps([{"type": kind, "box": list(THREAT_BOX)}]))
        rows.append(f"t{i},1,{kind}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_known_answers_with_a_separating_scorer(dataset, tmp_path):
    # benign peak attenuation: T >= 0.2 -> x <= 2 * 1.609 / 9 - 1 = -0.642 -> score <= 0.179;
    # threat: T = 1/30 -> score = 0.378. A threshold in between separates them exactly.
    scorer = AttenuationScorer(with_calibration(tiny_model(size=32), 0.25, 0.25), device="cpu")
    items = list(evaluate_model(scorer, dataset / "benign", dataset / "threat", dataset / "masks",
                                EvalConfig(screen=ScreenConfig(stride=16))))
    progress, result = items[:-1], items[-1]
    assert isinstance(result, EvalResult) and all(isinstance(p, EvalProgress) for p in progress)
    assert [p.done for p in progress] == list(range(1, 8)) and progress[-1].total == 7
    assert result.n_benign_scans == 4 and result.n_threat_scans == 3 and result.n_masked_threat_scans == 3
    for level in ("patch", "scan_max", "scan_top5"):
        assert result.level(level).auc == 1.0 and result.level(level).ap == 1.0, level
    # pixels next to the threat share patches with it, so the pixel level is high but not perfect
    assert 0.9 < result.level("pixel").auc < 1.0
    assert result.level("patch").n_threat > 0 and result.level("patch").n_benign > 100
    assert result.benign_patch_far == 0.0 and result.benign_scan_far == 0.0
    assert result.threat_scan_detection == 1.0
    assert {(t.type, t.instances, t.detected, t.scans, t.scans_alarmed) for t in result.types} == \
        {("gun", 2, 2, 2, 2), ("knife", 1, 1, 1, 1)}
    # issue 29: every threat lies inside an alarm region of its alarmed bag; the alarm rule's own
    # statistic (max / the bag's alarm threshold) separates the bags as the raw maximum does
    assert {(t.type, t.in_alarm_region, t.flagged_rate) for t in result.types} == {("gun", 2, 1.0), ("knife", 1, 1.0)}
    assert result.level("scan_alarm_rule").auc == 1.0
    md = result.to_markdown()
    assert "in alarm region" in md and "| gun | 2/2 | 100.0 % | 2/2 | 100.0 % | 2/2 | 100.0 % |" in md
    assert result.summary()["threat_types_in_alarm_region"] == {"gun": 1.0, "knife": 1.0}


def test_review_level_without_an_alarm_is_not_flagged(dataset):
    """A threat reaching the review level in a bag that does not alarm is shown as 'attention' at
    most: counted at the review level, not inside an alarm region."""
    scorer = AttenuationScorer(with_calibration(tiny_model(size=32), 0.25, 0.5), device="cpu")
    r = run_evaluation(scorer, dataset / "benign", dataset / "threat", dataset / "masks")
    assert r.threat_scan_detection == 0.0
    assert {(t.type, t.detected, t.in_alarm_region) for t in r.types} == {("gun", 2, 0), ("knife", 1, 0)}


def test_threshold_above_everything_detects_nothing(dataset):
    scorer = AttenuationScorer(with_calibration(tiny_model(size=32), 0.5, 0.5), device="cpu")
    r = run_evaluation(scorer, dataset / "benign", dataset / "threat", dataset / "masks")
    assert r.threat_scan_detection == 0.0 and all(t.detected == 0 for t in r.types)
    assert r.level("scan_max").auc == 1.0  # rankings do not depend on the threshold


def test_cli_writes_json_markdown_and_pngs(dataset, tmp_path, capsys):
    model = save_tiny_model(tmp_path / "tiny.xsm", size=32)
    (dataset / "benign" / "broken.h5").write_bytes(b"not a scan")
    out = tmp_path / "out"
    code = main(["evaluate", "--model", str(model), "--benign", str(dataset / "benign"), "--threat",
                 str(dataset / "threat"), "--out", str(out), "--device", "cpu", "--precision", "fp32", "-q"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "using masks from" in captured.err and "broken.h5" in captured.err
    data = json.loads((out / "results.json").read_text())
    assert data["calibrated"] is False and data["types"] == [] and data["n_benign_scans"] == 4
    assert len(data["failures"]) == 1 and "broken.h5" in data["failures"][0]
    levels = {lv["level"]: lv for lv in data["levels"]}
    assert set(levels) == {"patch", "scan_max", "scan_top5", "pixel", "scan_alarm_rule"}
    assert all(0.0 <= lv["auc"] <= 1.0 for lv in levels.values())
    assert "| patch |" in (out / "results.md").read_text()
    for png in ("roc.png", "scores_hist.png"):
        img = cv2.imread(str(out / png))
        assert img is not None and img.shape == (520, 640, 3) and img.std() > 10
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "results.md", "roc.png", "scores_hist.png"]


def test_cli_errors_are_one_line(dataset, tmp_path, capsys):
    args = ["evaluate", "--benign", str(dataset / "benign"), "--threat", str(dataset / "threat"),
            "--out", str(tmp_path / "o")]
    assert main(args + ["--model", str(tmp_path / "missing.xsm")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and last.endswith("missing.xsm: no such model file")
    model = save_tiny_model(tmp_path / "tiny.xsm", size=32)
    assert main(["evaluate", "--model", str(model), "--benign", str(tmp_path / "nope"), "--threat",
                 str(dataset / "threat"), "--out", str(tmp_path / "o")]) == 2
    assert "nope: no such folder" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_patch_coverage_matches_brute_force():
    rng = np.random.default_rng(0)
    binary = rng.random((37, 53)) < 0.3
    origins = np.array([(y, x) for y in range(0, 37, 7) for x in range(0, 53, 9)])
    got = truth.patch_coverage(binary, origins, 16)
    want = [binary[y:y + 16, x:x + 16].sum() for y, x in origins]  # numpy slicing clips at the edge
    np.testing.assert_array_equal(got, want)


def test_threat_patch_rule_counts_small_threats():
    mask = np.zeros((64, 64), np.uint8)
    mask[5:8, 5:8] = 1  # 9 px: 3.5 % of a 16x16 patch, below the 10 % overlap
    mask[30:46, 30:46] = 2  # 256 px
    origins = np.array([(0, 0), (32, 32), (48, 48), (24, 24)])
    hit = truth.threat_patches(mask, origins, 16, overlap=0.1)
    assert hit.tolist() == [True, True, False, True]
    insts = truth.instances(mask, ["knife", "gun"])
    assert [(i.label, i.type, i.area) for i in insts] == [(1, "knife", 9), (2, "gun", 256)]
    assert truth.instance_patches(mask, insts[1], origins, 16, 0.1).tolist() == [False, True, False, True]


def test_truth_files(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"threats": [{"type": "gun"}, {"name": "blade"}, 3]}))
    assert truth.read_box_types(tmp_path / "a.json") == ["gun", "blade", "threat"]
    (tmp_path / "b.json").write_text("{broken")
    with pytest.raises(ScanError, match="b.json: cannot read"):
        truth.read_box_types(tmp_path / "b.json")
    (tmp_path / "labels.csv").write_text("stem,label,threat_types\nx1,1,gun;knife\nx2,0,\n")
    assert truth.read_labels_csv(tmp_path / "labels.csv") == {"x1": ["gun", "knife"], "x2": []}
    assert truth.read_labels_csv(tmp_path / "none.csv") == {}
    cv2.imwrite(str(tmp_path / "m.png"), np.zeros((10, 20), np.uint8))
    with pytest.raises(ScanError, match="mask is 20x10 but the scan is 30x10"):
        truth.read_mask(tmp_path / "m.png", (10, 30))


def test_cli_records_headline_numbers_in_the_model_card(dataset, tmp_path, capsys):
    from xscreen.checkpoint import read_meta

    model = save_tiny_model(tmp_path / "tiny.xsm", size=32)
    code = main(["evaluate", "--model", str(model), "--benign", str(dataset / "benign"), "--threat",
                 str(dataset / "threat"), "--out", str(tmp_path / "o"), "--device", "cpu", "-q",
                 "--threshold", "0.2", "--record-in-model", "synthetic-v1"])
    assert code == 0, capsys.readouterr().err
    meta, _ = read_meta(model)
    record = meta.card.evaluation["synthetic-v1"]
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert record["scan_max_auc"] == data["levels"][1]["auc"] and set(record["threat_types"]) == {"gun", "knife"}
    assert data["settings"]["stride"] == 32 and data["threshold"] == 0.2 and data["target_patch_far"] is None


def test_boxes_stand_in_for_missing_masks(dataset):
    scorer = AttenuationScorer(with_calibration(tiny_model(size=32), 0.25, 0.25), device="cpu")
    r = run_evaluation(scorer, dataset / "benign", dataset / "threat", None,
                       EvalConfig(screen=ScreenConfig(stride=16)))
    assert r.settings["truth"] == "boxes" and r.n_masked_threat_scans == 3
    assert r.level("patch").auc == 1.0 and r.level("pixel").auc is None and r.level("pixel").note == "needs masks"
    assert {(t.type, t.detected) for t in r.types} == {("gun", 2), ("knife", 1)}
    mask = truth.mask_from_boxes([("a", (2, 1, 3, 2)), ("b", None), ("c", (3, 2, 5, 5))], (5, 6))
    assert mask.tolist()[1] == [0, 0, 1, 1, 1, 0] and mask[2, 3] == 3 and mask[4, 5] == 3 and mask[0].sum() == 0
    assert truth.mask_from_boxes([("a", None)], (5, 6)) is None
