"""Training wizard pages 5-6: calibrate and evaluate, save (page 4, train: ``train_page``)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QPushButton, QVBoxLayout)

from xscreen import wizard as wz
from xscreen.gui.training_wizard.base import GatedPage

def histogram_item(values: np.ndarray, colour: str) -> pg.PlotDataItem:
    counts, edges = np.histogram(values, bins=min(60, max(5, len(values) // 10)))
    return pg.PlotDataItem(edges, counts, stepMode="center", fillLevel=0, brush=pg.mkBrush(colour + "80"),
                           pen=pg.mkPen(colour))


def scan_count_warning(n_scans: int, scan_far: float) -> str:
    """A scan threshold for rate f needs well over 1/f held-out scans to mean anything."""
    need = int(np.ceil(2 / scan_far))
    if n_scans >= need:
        return ""
    return (f"\n⚠ only {n_scans} held-out benign scan(s): a {scan_far:.0%} scan threshold needs about {need}; "
            "add benign scans or calibrate later with `xscreen model calibrate`")


class CalibratePage(GatedPage):
    key = "calibrate"

    def __init__(self, wizard):
        super().__init__(wizard)
        self.setTitle("5 · Calibrate and evaluate")
        self.setSubTitle("Held-out benign scores and the threshold for the false-alarm rate you choose.")
        self.patch_far = QDoubleSpinBox(minimum=0.0, maximum=0.5, singleStep=0.005, decimals=3, value=0.01)
        self.scan_far = QDoubleSpinBox(minimum=0.0, maximum=0.5, singleStep=0.01, decimals=3, value=0.05)
        self.patch_far.valueChanged.connect(self._on_far_changed)
        self.scan_far.valueChanged.connect(self._on_far_changed)
        self.hist = pg.PlotWidget(background="w", title="benign validation patch scores")
        self.roc = pg.PlotWidget(background="w", title="ROC (evaluation folder)")
        self.roc.setLabel("bottom", "false-alarm rate")
        self.roc.setLabel("left", "detection rate")
        self.summary, self.eval_label = QLabel("scoring held-out benign patches…"), QLabel()
        self.summary.setWordWrap(True)
        self.roc_key = QLabel()  # the ROC's key sits under the plots: drawn inside, it covered the curves
        self.evaluate = QPushButton("Evaluate on the evaluation folder")
        self.evaluate.clicked.connect(self._on_evaluate_clicked)
        self.scores, self.calibration, self.evaluation = None, None, None
        form = QFormLayout()
        form.addRow("Patch false-alarm rate", self.patch_far)
        form.addRow("Scan false-alarm rate", self.scan_far)
        plots = QHBoxLayout()
        plots.addWidget(self.hist)
        plots.addWidget(self.roc)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(plots, 1)
        for w in (self.roc_key, self.summary, self.evaluate, self.eval_label, self.errors):
            lay.addWidget(w)

    def initializePage(self) -> None:  # noqa: N802
        from xscreen.wizard.run import validation_scores

        s = self.wiz.state
        self.patch_far.setValue(s.train.patch_far)
        self.scan_far.setValue(s.train.scan_far)
        self.evaluate.setEnabled(s.threat is not None)
        model, workdir, device = s.trained_model, self.wiz.workdir, s.train.device
        if model is None:  # reached without a trained model (Back from Save after a restart)
            self.summary.setText("train a model first (page 4)")
            return
        self.wiz.quick.start("valscores", lambda: iter([validation_scores(model, workdir, device)]))

    def on_job_item(self, key: str, item) -> None:
        if key == "valscores":
            self.scores = item
            self._on_far_changed()
        elif key == "evaluate":
            self.show_evaluation(item)

    def _on_far_changed(self, *_) -> None:
        from xscreen.wizard.run import calibration_for, calibration_summary

        s = self.wiz.state
        self.wiz.update(train=dataclasses.replace(s.train, patch_far=self.patch_far.value(),
                                                  scan_far=self.scan_far.value()))
        if self.scores is None or wz.page_errors(self.wiz.state, "calibrate"):
            return
        # the same calibration that leaving the page writes into the model file
        self.calibration = calibration_for(self.wiz.state.trained_model, self.scores, self.patch_far.value(),
                                           self.scan_far.value())
        self.hist.clear()
        self.hist.addItem(histogram_item(self.scores.patch, "#1b9e77"))
        self.hist.addItem(pg.InfiniteLine(self.calibration.patch_threshold, pen=pg.mkPen("#b00020", width=2)))
        c = self.calibration
        self.summary.setText(calibration_summary(c, self.scores) + scan_count_warning(c.n_scans, c.scan_far))

    def validatePage(self) -> bool:  # noqa: N802
        """Leaving the page writes the chosen thresholds into the model file."""
        from xscreen.wizard.run import recalibrate

        if self.scores is None:
            return False
        self.calibration = recalibrate(self.wiz.state.trained_model, self.scores, self.patch_far.value(),
                                       self.scan_far.value())
        return True

    def _on_evaluate_clicked(self) -> None:
        from xscreen.evaluate import EvalResult, evaluate_model
        from xscreen.wizard.run import evaluation_dirs, recalibrate

        s = self.wiz.state
        if self.scores is None:
            return
        recalibrate(s.trained_model, self.scores, self.patch_far.value(), self.scan_far.value())
        benign, threat = evaluation_dirs(s.threat, self.wiz.workdir, s.benign)
        self.eval_label.setText("evaluating…")
        model = s.trained_model
        self.wiz.quick.start("evaluate", lambda: (r for r in evaluate_model(model, benign, threat)
                                                  if isinstance(r, EvalResult)))

    def show_evaluation(self, result) -> None:
        self.evaluation = result
        self.roc.clear()
        auc = {lv.level: lv.auc for lv in result.levels}
        key = []
        for (name, curve), colour in zip(result.curves.items(), ("#1b9e77", "#d95f02", "#7570b3", "#e7298a")):
            label = f"{name} (AUC {auc[name]:.3f})" if auc.get(name) is not None else name
            self.roc.plot(curve.fpr, curve.tpr, pen=pg.mkPen(colour, width=2))
            key.append(f"<span style='color:{colour}'>━</span> {label}")
        self.roc_key.setText("ROC: " + "   ".join(key + ["<span style='color:#999'>┅</span> chance"]))
        self.roc.plot([0, 1], [0, 1], pen=pg.mkPen("#999", style=pg.QtCore.Qt.PenStyle.DashLine))
        lines = [f"{lv.level}: AUC {lv.auc:.3f}" for lv in result.levels if lv.auc is not None]
        if result.threat_scan_detection is not None:
            lines.append(f"threat scans detected at this threshold: {result.threat_scan_detection:.0%} "
                         f"(benign scans alarming: {result.benign_scan_far:.0%})")
        self.eval_label.setText(" · ".join(lines))


class SavePage(GatedPage):
    key = "save"

    def __init__(self, wizard):
        super().__init__(wizard)
        self.setTitle("6 · Save")
        self.setSubTitle("The model goes to your models folder and appears in the screening tab at once. "
                         "The settings are saved beside it: `xscreen train --config FILE` reruns them.")
        self.name, self.description = QLineEdit(), QPlainTextEdit()
        self.name.textChanged.connect(lambda t: self.wiz.update(name=t.strip()))
        self.description.textChanged.connect(lambda: self.wiz.update(description=self.description.toPlainText()))
        self.where = QLabel(f"folder: {wizard.models_dir}")
        self.saved: Path | None = None
        form = QFormLayout(self)
        form.addRow("Name", self.name)
        form.addRow("Description", self.description)
        form.addRow(self.where)
        form.addRow(self.errors)

    def validatePage(self) -> bool:  # noqa: N802
        from xscreen.wizard.run import save_trained_model

        s = self.wiz.state
        run = wz.to_run_config(s, self.wiz.workdir / "model.xsm")
        evaluation = None
        calib = self.wiz.pages["calibrate"].evaluation
        if calib is not None:
            evaluation = {"wizard": {lv.level: lv.auc for lv in calib.levels}}
        self.saved = save_trained_model(s.trained_model, self.wiz.models_dir, run, evaluation)
        self.where.setText(f"saved: {self.saved}")
        self.wiz.model_saved.emit(str(self.saved))
        return True
