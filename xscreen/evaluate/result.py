"""Evaluation results: typed dataclasses, their JSON form and a Markdown table."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from xscreen.metrics import RocCurve


@dataclass(frozen=True)
class LevelResult:
    """Ranking quality at one level: "patch", "scan_max", "scan_top<k>" or "pixel"."""

    level: str
    auc: float | None  # None when a class is missing (``note`` says why)
    ap: float | None
    n_threat: int
    n_benign: int
    note: str = ""


@dataclass(frozen=True)
class TypeResult:
    """Detection of one threat type at the calibrated thresholds. An instance is detected when a
    patch that sees it (``truth.instance_patches``) reaches the patch (review) threshold; it is *in
    an alarm region* (flagged, as the operator sees it) when such a patch belongs to an alarm region
    of a bag that alarms under the one alarm rule (issue 29)."""

    type: str
    instances: int
    detected: int
    scans: int  # threat scans holding this type
    scans_alarmed: int  # of those, scans whose scan score reached the scan threshold
    in_alarm_region: int = 0  # instances inside an alarm region of an alarmed bag

    @property
    def instance_rate(self) -> float | None:
        return self.detected / self.instances if self.instances else None

    @property
    def flagged_rate(self) -> float | None:
        return self.in_alarm_region / self.instances if self.instances else None

    @property
    def scan_rate(self) -> float | None:
        return self.scans_alarmed / self.scans if self.scans else None


@dataclass
class EvalResult:
    model_id: str
    calibrated: bool  # False: the model has no threshold; detection rates are not given
    threshold: float
    scan_threshold: float
    aggregation: str
    target_patch_far: float | None
    target_scan_far: float | None
    n_benign_scans: int
    n_threat_scans: int
    n_masked_threat_scans: int
    levels: list[LevelResult]
    types: list[TypeResult]
    benign_patch_far: float | None  # measured share of benign patches >= threshold
    threat_patch_detection: float | None  # share of threat patches >= threshold
    benign_scan_far: float | None  # measured share of benign scans that alarm
    threat_scan_detection: float | None  # share of threat scans that alarm
    failures: list[str]
    seconds: float
    curves: dict[str, RocCurve] = field(default_factory=dict, repr=False)
    benign_patch_scores: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    threat_patch_scores: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    files: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # inputs and options, for the record

    def level(self, name: str) -> LevelResult:
        return next(lv for lv in self.levels if lv.level == name)

    def to_dict(self) -> dict[str, Any]:
        skip = {"curves", "benign_patch_scores", "threat_patch_scores"}
        out = {k: v for k, v in asdict(self).items() if k not in skip}
        out["types"] = [dict(asdict(t), instance_rate=t.instance_rate, flagged_rate=t.flagged_rate,
                             scan_rate=t.scan_rate) for t in self.types]
        return out

    def summary(self) -> dict[str, Any]:
        """The headline numbers, small enough for the model card's evaluation record."""
        out: dict[str, Any] = {f"{lv.level}_auc": lv.auc for lv in self.levels}
        out.update({f"{lv.level}_ap": lv.ap for lv in self.levels})
        out.update(n_benign_scans=self.n_benign_scans, n_threat_scans=self.n_threat_scans,
                   benign_scan_far=self.benign_scan_far, threat_scan_detection=self.threat_scan_detection,
                   benign_patch_far=self.benign_patch_far, threat_patch_detection=self.threat_patch_detection,
                   threat_types={t.type: t.instance_rate for t in self.types},
                   threat_types_in_alarm_region={t.type: t.flagged_rate for t in self.types})
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        lines = [f"# Evaluation of `{self.model_id}`", "",
                 f"{self.n_benign_scans} benign scans, {self.n_threat_scans} threat scans "
                 f"({self.n_masked_threat_scans} with masks); {len(self.failures)} unreadable.", "",
                 "| level | AUC | AP | threat | benign | note |", "|---|---|---|---|---|---|"]
        lines += [f"| {lv.level} | {_f(lv.auc)} | {_f(lv.ap)} | {lv.n_threat} | {lv.n_benign} | {lv.note} |"
                  for lv in self.levels]
        if not self.calibrated:
            return "\n".join(lines + ["", "The model is not calibrated: no detection rates."]) + "\n"
        lines += ["", f"At the calibrated thresholds (patch {self.threshold:.6g}, scan {self.scan_threshold:.6g},"
                  f" {self.aggregation}):", "", "| measure | target | measured |", "|---|---|---|",
                  f"| benign patch false-alarm rate | {_p(self.target_patch_far)} | {_p(self.benign_patch_far)} |",
                  f"| benign scan false-alarm rate | {_p(self.target_scan_far)} | {_p(self.benign_scan_far)} |",
                  f"| threat patch detection rate | | {_p(self.threat_patch_detection)} |",
                  f"| threat scan detection rate | | {_p(self.threat_scan_detection)} |"]
        if self.types:
            lines += ["", "| threat type | instances at review level | rate | in alarm region | rate | "
                      "scans alarmed | rate |", "|---|---|---|---|---|---|---|"]
            lines += [f"| {t.type} | {t.detected}/{t.instances} | {_p(t.instance_rate)} | "
                      f"{t.in_alarm_region}/{t.instances} | {_p(t.flagged_rate)} | "
                      f"{t.scans_alarmed}/{t.scans} | {_p(t.scan_rate)} |" for t in self.types]
        return "\n".join(lines) + "\n"


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _p(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.1f} %"
