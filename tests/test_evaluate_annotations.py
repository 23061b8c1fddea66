"""Annotations as other tools write them: masks <stem>.png / <stem>_mask.png, per-image or one-file
box JSON with a declared format, COCO, Pascal VOC, YOLO, labels CSVs with the usual stem columns;
what matched is reported and annotations that match nothing stop the run."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from screen_fixtures import save_tiny_model, tiny_model, with_calibration
from test_evaluate import H, THREAT_BOX, W, AttenuationScorer, dataset  # noqa: F401 (fixture)
from xscreen.cli import main
from xscreen.config import ScreenConfig
from xscreen.evaluate import EvalConfig, EvalResult, evaluate_model, truth
from xscreen.evaluate.annotations import load_annotations, mask_index
from xscreen.evaluate.boxformats import read_text, stem_of
from xscreen.scan import ScanError

X, Y, BW, BH = THREAT_BOX
X1, Y1 = X + BW, Y + BH


def box_mask() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[Y:Y1, X:X1] = 1
    return m


def truth_of(ann, stem: str):
    return ann.truth(Path(f"/scans/{stem}.h5"), H, W)


def assert_box_placed(ann, stem="t0", kind="gun"):
    got = truth_of(ann, stem)
    np.testing.assert_array_equal(got.mask > 0, box_mask() > 0)
    assert got.types == [kind]


# --- masks ------------------------------------------------------------------------------------

def test_masks_plain_or_tagged_and_plain_wins(tmp_path):
    for name in ("a.png", "b_mask.png", "c-mask.tif", "a_mask.png", "notes.txt", ".hidden.png"):
        cv2.imwrite(str(tmp_path / name), box_mask()) if name.endswith((".png", ".tif")) else \
            (tmp_path / name).write_text("x")
    index = mask_index(tmp_path)
    assert index == {"a": tmp_path / "a.png", "b": tmp_path / "b_mask.png", "c": tmp_path / "c-mask.tif"}


def test_mask_size_is_checked_from_the_header(tmp_path):
    cv2.imwrite(str(tmp_path / "m.png"), np.zeros((10, 20), np.uint8))
    with pytest.raises(ScanError, match="mask is 20x10 but the scan is 30x10"):
        truth.read_mask(tmp_path / "m.png", (10, 30))
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    with pytest.raises(ScanError, match="cannot read the mask image"):
        truth.read_mask(tmp_path / "x.png", (10, 30))


def test_a_binary_mask_takes_the_one_known_type():
    mask = box_mask() * 255
    assert [(i.label, i.type) for i in truth.instances(mask, ["knife"])] == [(255, "knife")]


# --- labels CSV -------------------------------------------------------------------------------

@pytest.mark.parametrize("column", ["stem", "file_stem", "filename", "File Name", "image", "image_id"])
def test_labels_csv_stem_column_names(tmp_path, column):
    (tmp_path / "l.csv").write_text(f"{column},label,threat_type\nt0.png,threat,gun;knife\nb0,benign,\n")
    assert truth.read_labels_csv(tmp_path / "l.csv") == {"t0": ["gun", "knife"], "b0": []}


def test_names_inside_annotations_are_keys_not_paths(tmp_path):
    assert stem_of("../../etc/passwd") == "passwd" and stem_of("C:\\data\\bag.7.png") == "bag.7"
    assert stem_of("scan.2024") == "scan.2024"  # not an image extension: kept
    (tmp_path / "l.csv").write_text("filename,type\n../../../x/t0.h5,gun\n")
    assert truth.read_labels_csv(tmp_path / "l.csv") == {"t0": ["gun"]}


def test_labels_csv_without_stem_column_says_which_columns_it_has(tmp_path):
    (tmp_path / "l.csv").write_text("picture,kind\nt0,gun\n")
    with pytest.raises(ScanError, match="no stem column: the columns are picture, kind"):
        truth.read_labels_csv(tmp_path / "l.csv")
    with pytest.raises(ScanError, match="labels file not found"):
        load_annotations(labels=tmp_path / "missing.csv")


# --- box JSON ---------------------------------------------------------------------------------

def test_per_image_json_xywh_as_synth_writes(tmp_path):
    (tmp_path / "t0.json").write_text(json.dumps({"threats": [{"type": "gun", "box": list(THREAT_BOX)}]}))
    assert_box_placed(load_annotations(boxes=tmp_path))


def test_per_image_json_declares_xyxy_inside_or_on_the_command_line(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "t0.json").write_text(json.dumps({"box_format": "xyxy", "boxes": [
        {"class": "gun", "bbox": [X, Y, X1, Y1]}]}))
    assert_box_placed(load_annotations(boxes=tmp_path / "a"))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "t0.json").write_text(json.dumps([{"label": "gun", "box": [X, Y, X1, Y1]}]))
    assert_box_placed(load_annotations(boxes=tmp_path / "b", box_format="xyxy"))


def test_one_json_for_the_set_object_or_records(tmp_path):
    (tmp_path / "obj.json").write_text(json.dumps({"box_format": "xyxy", "t0.png": [{"type": "gun",
                                                                                       "box": [X, Y, X1, Y1]}]}))
    assert_box_placed(load_annotations(boxes=tmp_path / "obj.json"))
    records = [{"file": "imgs/t0.jpg", "type": "gun", "box": {"xmin": X, "ymin": Y, "xmax": X1, "ymax": Y1}},
               {"image": "t1", "boxes": [{"type": "knife", "box": list(THREAT_BOX)}]}]
    (tmp_path / "rec.json").write_text(json.dumps(records))
    ann = load_annotations(boxes=tmp_path / "rec.json")
    assert_box_placed(ann)
    assert_box_placed(ann, "t1", "knife")


def test_wrong_box_format_is_refused_not_misread(tmp_path):
    # [x0, y0, x1, y1] with x1 < x0 cannot be a box: the file says the format wrongly
    (tmp_path / "b.json").write_text(json.dumps({"box_format": "xyxy", "t0": [{"box": [50, 40, 10, 5]}]}))
    with pytest.raises(ScanError, match="negative size as xyxy"):
        load_annotations(boxes=tmp_path / "b.json")
    (tmp_path / "c.json").write_text(json.dumps({"box_format": "ltrb", "t0": []}))
    with pytest.raises(ScanError, match="box_format 'ltrb' is not one of xywh, xyxy"):
        load_annotations(boxes=tmp_path / "c.json")


# --- COCO, VOC, YOLO --------------------------------------------------------------------------

def coco(width=W, height=H) -> dict:
    return {"images": [{"id": 7, "file_name": "../val/t0.png", "width": width, "height": height},
                       {"id": 8, "file_name": "b0.png", "width": width, "height": height}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": list(THREAT_BOX)}],
            "categories": [{"id": 3, "name": "gun"}]}


def test_coco_json(tmp_path):
    (tmp_path / "coco.json").write_text(json.dumps(coco()))
    ann = load_annotations(boxes=tmp_path / "coco.json")
    assert "COCO JSON" in ann.sources["boxes"]
    assert_box_placed(ann)
    assert truth_of(ann, "b0").mask is None  # listed without boxes: nothing to draw


def test_coco_boxes_for_an_image_of_another_size_are_refused(tmp_path):
    (tmp_path / "coco.json").write_text(json.dumps(coco(width=2 * W)))
    with pytest.raises(ScanError, match=f"boxes are for a {2 * W}x{H} image but the scan is {W}x{H}"):
        truth_of(load_annotations(boxes=tmp_path / "coco.json"), "t0")


VOC = """<annotation><filename>t0.png</filename><size><width>{w}</width><height>{h}</height><depth>1</depth>
</size><object><name>gun</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>
</bndbox></object></annotation>"""


def test_pascal_voc_is_one_based_and_named_by_its_filename(tmp_path):
    # VOC's first pixel is 1 and xmax is inclusive
    (tmp_path / "000123.xml").write_text(VOC.format(w=W, h=H, x0=X + 1, y0=Y + 1, x1=X1, y1=Y1))
    ann = load_annotations(boxes=tmp_path)
    assert "Pascal VOC XML" in ann.sources["boxes"]
    assert_box_placed(ann, "t0")
    assert_box_placed(ann, "000123")


def test_xml_entities_and_dtds_are_refused_and_the_file_skipped(tmp_path):
    bomb = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx"><!ENTITY y "&x;&x;&x;&x;&x;">]>'
            "<annotation><filename>&y;</filename></annotation>")
    (tmp_path / "bomb.xml").write_text(bomb)
    (tmp_path / "t0.xml").write_text(VOC.format(w=W, h=H, x0=X + 1, y0=Y + 1, x1=X1, y1=Y1))
    ann = load_annotations(boxes=tmp_path)
    assert len(ann.problems) == 1 and "bomb.xml: not a readable Pascal VOC file" in ann.problems[0]
    assert "bomb" not in ann.boxes and "xxxxxxxxxx" not in ann.boxes
    assert_box_placed(ann)


def yolo_line(cls=0) -> str:
    return f"{cls} {(X + BW / 2) / W} {(Y + BH / 2) / H} {BW / W} {BH / H}\n"


@pytest.mark.parametrize("names_file, text", [
    ("classes.txt", "knife\ngun\n"),
    ("data.yaml", "path: .\nnames: [knife, gun]\n"),
    ("data.yaml", "names:\n  0: knife\n  1: gun\n"),
    ("data.yaml", "names:\n  - knife\n  - 'gun'\n"),
])
def test_yolo_txt_is_scaled_to_the_scan_and_named(tmp_path, names_file, text):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "t0.txt").write_text(yolo_line(1))
    (tmp_path / names_file).write_text(text)  # the dataset root, above labels/
    ann = load_annotations(boxes=labels)
    assert "YOLO txt" in ann.sources["boxes"]
    assert_box_placed(ann)


def test_yolo_polygon_and_unnamed_class(tmp_path):
    x0, y0, x1, y1 = X / W, Y / H, X1 / W, Y1 / H
    (tmp_path / "t0.txt").write_text(f"4 {x0} {y0} {x1} {y0} {x1} {y1} {x0} {y1}\n")
    assert_box_placed(load_annotations(boxes=tmp_path), kind="class 4")
    (tmp_path / "t1.txt").write_text("0 0.5 0.5\n")
    ann = load_annotations(boxes=tmp_path)
    assert ann.problems and "t1.txt: line 1 is not a YOLO box" in ann.problems[0]


def test_absurd_coordinates_are_clipped_to_the_scan(tmp_path):
    boxes = {"box_format": "xyxy", "t0": [{"box": [-1e308, 10, 1e308, 1e308]}]}
    (tmp_path / "b.json").write_text(json.dumps(boxes))
    mask = truth_of(load_annotations(boxes=tmp_path / "b.json"), "t0").mask
    assert mask.shape == (H, W) and mask[:10].sum() == 0 and (mask[10:] == 1).all()


def test_oversized_annotation_files_are_refused_unread(tmp_path):
    (tmp_path / "big.json").write_text("[" + " " * 2000 + "]")
    with pytest.raises(ScanError, match="annotation file is 2,002 bytes; the limit is 1,000"):
        read_text(tmp_path / "big.json", 1000)


# --- matching and the pipeline ----------------------------------------------------------------

def test_match_counts_masks_boxes_and_types(tmp_path):
    (tmp_path / "m").mkdir()
    cv2.imwrite(str(tmp_path / "m" / "t0_mask.png"), box_mask())
    (tmp_path / "coco.json").write_text(json.dumps(coco()))
    (tmp_path / "l.csv").write_text("file_stem,threat_types\nt1,knife\n")
    ann = load_annotations(tmp_path / "m", tmp_path / "coco.json", tmp_path / "l.csv")
    m = ann.match([Path(f"/s/t{i}.h5") for i in range(3)] + [Path("/s/t3_high.tif")])
    assert (m.n_scans, m.n_masks, m.n_boxed, m.n_boxes, m.n_typed) == (4, 1, 1, 1, 2)
    assert m.unmatched == ("t2", "t3") and m.per_source == {"masks": 1, "boxes": 1, "labels": 1}
    assert m.summary() == ("annotations matched 2 of 4 threat scans: 1 masks, 1 boxes on 1 scans, "
                           "threat types for 2 scans")


def test_coco_boxes_drive_the_evaluation(dataset):  # noqa: F811
    images = [{"id": i, "file_name": f"t{i}.png", "width": W, "height": H} for i in range(3)]
    anns = [{"id": i, "image_id": i, "category_id": 1 + (i > 0), "bbox": list(THREAT_BOX)} for i in range(3)]
    (dataset / "coco.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": 1, "name": "knife"}, {"id": 2, "name": "gun"}]}))
    ann = load_annotations(boxes=dataset / "coco.json")
    scorer = AttenuationScorer(with_calibration(tiny_model(size=32), 0.25, 0.25), device="cpu")
    *_, r = evaluate_model(scorer, dataset / "benign", dataset / "threat", cfg=EvalConfig(
        screen=ScreenConfig(stride=16)), annotations=ann)
    assert isinstance(r, EvalResult) and r.settings["truth"] == "boxes" and r.n_masked_threat_scans == 3
    assert r.level("patch").auc == 1.0  # boxes in the right place: threat patches outscore benign ones
    assert {(t.type, t.detected) for t in r.types} == {("gun", 2), ("knife", 1)}
    assert r.settings["matched"]["n_boxes"] == 3


def _evaluate(dataset, tmp_path, *extra):  # noqa: F811
    model = save_tiny_model(tmp_path / "tiny.xsm", size=32)
    return main(["evaluate", "--model", str(model), "--benign", str(dataset / "benign"), "--threat",
                 str(dataset / "threat"), "--out", str(tmp_path / "o"), "--device", "cpu", "-q", *extra])


def test_cli_reads_the_issue_layout_and_says_what_matched(dataset, tmp_path, capsys):  # noqa: F811
    """masks named <stem>_mask.png, labels.csv keyed by file_stem, one boxes.json of [x0, y0, x1, y1]."""
    gt = tmp_path / "gt"
    gt.mkdir()
    for i in range(3):
        (dataset / "masks" / f"t{i}.png").rename(gt / f"t{i}_mask.png")
    (gt / "labels.csv").write_text("file_stem,threat_types\nt0,knife\nt1,gun\nt2,gun\n")
    boxes = {f"t{i}": [{"type": "gun", "box": [X, Y, X1, Y1]}] for i in range(3)}
    (gt / "boxes.json").write_text(json.dumps(boxes))
    code = _evaluate(dataset, tmp_path, "--masks", str(gt), "--labels", str(gt / "labels.csv"),
                     "--boxes", str(gt / "boxes.json"), "--box-format", "xyxy")
    err = capsys.readouterr().err
    assert code == 0, err
    assert "annotations matched 3 of 3 threat scans: 3 masks, 3 boxes on 3 scans, threat types for 3 scans" in err
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert data["n_masked_threat_scans"] == 3 and data["settings"]["truth"] == "masks"


def test_cli_fails_loudly_when_annotations_match_nothing(dataset, tmp_path, capsys):  # noqa: F811
    for i in range(3):
        (dataset / "masks" / f"t{i}.png").rename(dataset / "masks" / f"img_{i:04d}.png")
    assert _evaluate(dataset, tmp_path) == 2
    err = capsys.readouterr().err
    assert "error: masks from" in err and "match none of the 3 threat scans (scans: t0, t1, t2; masks: " \
        "img_0000, img_0001, img_0002)" in err
    assert not (tmp_path / "o").exists()


def test_cli_warns_about_threat_scans_without_annotation(dataset, tmp_path, capsys):  # noqa: F811
    (dataset / "masks" / "t2.png").unlink()
    (dataset / "boxes" / "t2.json").unlink()
    (dataset / "labels.csv").write_text("stem,label,threat_types\nt0,1,knife\nt1,1,gun\n")
    assert _evaluate(dataset, tmp_path) == 0
    assert "warning: 1 threat scan(s) have no annotation: t2" in capsys.readouterr().err


def test_corner_boxes_read_as_xywh_are_flagged(dataset, tmp_path, capsys):  # noqa: F811
    """The issue's boxes.json ([x0, y0, x1, y1]) without --box-format: boxes run off the scan, and
    the run says what to change."""
    (dataset / "masks").rename(tmp_path / "unused")  # boxes are the truth (with masks they only give types)
    boxes = {f"t{i}": [[X + 60, Y + 40, X1 + 60, Y1 + 40]] for i in range(3)}
    (dataset / "boxes.json").write_text(json.dumps(boxes))
    assert _evaluate(dataset, tmp_path, "--boxes", str(dataset / "boxes.json")) == 0
    assert "warning: 3 box(es) reach well past their scan's edge" in capsys.readouterr().err
    assert _evaluate(dataset, tmp_path, "--boxes", str(dataset / "boxes.json"), "--box-format", "xyxy") == 0
    assert "reach well past" not in capsys.readouterr().err
