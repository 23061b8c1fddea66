"""Training wizard pages 4-6: train (live curves), calibrate and evaluate, save."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QProgressBar, QPushButton, QVBoxLayout)

from xscreen import wizard as wz
from xscreen.gui.training_wizard import GatedPage, to_pixmap

CURVES = (("g_adv", "adversarial", "#d95f02"), ("g_con", "contextual", "#1b9e77"),
          ("g_lat", "latent", "#7570b3"), ("d_loss", "discriminator", "#e7298a"))


def training_job(run, workdir: Path, resume: bool):
    """``train_model`` plus, after each epoch, a reconstruction of fixed held-out benign patches."""
    from xscreen.train import EpochReport
    from xscreen.train.run import train_model
    from xscreen.wizard_run import fixed_val_patches, preview_strip, reconstruct_from_state

    fixed = None
    for item in train_model(run, workdir, resume=resume, command="xscreen train --config <wizard config>"):
        yield item
        if isinstance(item, EpochReport):
            fixed = fixed_val_patches(workdir) if fixed is None else fixed
            if len(fixed):
                recon = reconstruct_from_state(item.checkpoint, run.net, fixed)
                yield ("preview", preview_strip(fixed, recon, run.preprocess.kind))


class TrainPage(GatedPage):
    key = "train"

    def __init__(self, wizard):
        super().__init__(wizard)
        self.setTitle("4 · Train")
        self.setSubTitle("Losses per epoch; below, held-out benign patches (top) and the model's "
                         "reconstruction (bottom). Cancel keeps the last finished epoch; Resume continues it.")
        self.start, self.cancel, self.resume = QPushButton("Start"), QPushButton("Cancel"), QPushButton("Resume")
        self.start.clicked.connect(lambda: self._begin(resume=False))
        self.resume.clicked.connect(lambda: self._begin(resume=True))
        self.cancel.clicked.connect(self._on_cancel_clicked)
        self.progress, self.status, self.preview = QProgressBar(), QLabel("not started"), QLabel()
        self.plot = pg.PlotWidget(background="w")
        self.plot.addLegend()
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLogMode(y=True)
        self.curves = {k: self.plot.plot([], [], name=name, pen=pg.mkPen(c, width=2), symbol="o", symbolSize=5)
                       for k, name, c in CURVES}
        self.history: dict[str, list[float]] = {k: [] for k, _, _ in CURVES}
        self.epochs: list[int] = []
        self.d_reinits = 0
        buttons = QHBoxLayout()
        for b in (self.start, self.cancel, self.resume):
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        lay.addLayout(buttons)
        for w in (self.progress, self.status, self.plot, self.preview, self.errors):
            lay.addWidget(w)
        wizard.trainer.item.connect(self._on_train_item)
        wizard.trainer.done.connect(self._on_train_done)
        wizard.trainer.failed.connect(self._on_train_failed)
        wizard.trainer.cancelled.connect(self._on_train_cancelled)
        self._sync_buttons()

    def initializePage(self) -> None:  # noqa: N802
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        running = self.wiz.state.training
        self.start.setEnabled(not running)
        self.cancel.setEnabled(running)
        self.resume.setEnabled(not running and (self.wiz.workdir / "state.pt").is_file())

    def _begin(self, resume: bool) -> None:
        s = self.wiz.state
        run = wz.to_run_config(s, self.wiz.workdir / "model.xsm")
        if not resume:
            self.history = {k: [] for k in self.history}
            self.epochs, self.d_reinits = [], 0
            (self.wiz.workdir / "state.pt").unlink(missing_ok=True)
        self.t0, self.wiz.run = time.monotonic(), run
        self.wiz.update(training=True, trained_model=None)
        self._sync_buttons()
        self.status.setText("building the patch store…")
        self.wiz.trainer.start("train", lambda: training_job(run, self.wiz.workdir, resume))

    def _on_cancel_clicked(self) -> None:
        self.status.setText("cancelling after the current step…")
        self.wiz.trainer.cancel()

    def _on_train_item(self, key: str, item) -> None:
        from xscreen.train import EpochReport, ProgressReport

        if isinstance(item, tuple) and item and item[0] == "preview":
            strip = item[1]
            zoom = max(1, 720 // max(strip.shape[1], 1))  # patches are small: enlarge, pixel for pixel
            self.preview.setPixmap(to_pixmap(strip.repeat(zoom, axis=0).repeat(zoom, axis=1), 1000))
        elif isinstance(item, ProgressReport):
            done = (item.epoch - 1) * item.steps + item.step
            total = self.wiz.run.train.epochs * item.steps
            self.progress.setMaximum(total)
            self.progress.setValue(done)
            eta = (time.monotonic() - self.t0) / max(done, 1) * (total - done)
            self.status.setText(f"epoch {item.epoch}, step {item.step}/{item.steps} · {item.patches_per_s:,.0f} "
                                f"patches/s · G {item.g_loss:.3f} · D {item.d_loss:.3f} · ETA {eta / 60:.1f} min")
        elif isinstance(item, EpochReport):
            self.show_epoch(item)
        elif hasattr(item, "done") and hasattr(item, "total"):  # StoreProgress
            self.status.setText(f"building the patch store: scan {item.done}/{item.total}")

    def show_epoch(self, r) -> None:
        self.epochs.append(r.epoch)
        for k in self.history:
            self.history[k].append(max(float(getattr(r, k)), 1e-6))
            self.curves[k].setData(self.epochs, self.history[k])
        self.d_reinits += r.d_reinits
        self.status.setText(f"epoch {r.epoch}/{r.epochs} · validation score {r.val_score_mean:.4f} ± "
                            f"{r.val_score_std:.4f}{' (best)' if r.best else ''} · D re-inits {self.d_reinits}")

    def _on_train_done(self, key: str, result) -> None:
        self.status.setText(f"done: best epoch {result.best_epoch}, {result.train_seconds / 60:.1f} min, "
                            f"patch threshold {result.calibration.patch_threshold:.4g}")
        self.progress.setValue(self.progress.maximum())
        self.wiz.update(training=False, trained_model=Path(result.model_path))
        self._sync_buttons()

    def _on_train_cancelled(self, key: str) -> None:
        self.status.setText("cancelled: the last finished epoch is kept; Resume continues from it")
        self.wiz.update(training=False)
        self._sync_buttons()

    def _on_train_failed(self, key: str, message: str) -> None:
        self.status.setText(f"training failed: {message}")
        self.wiz.update(training=False)
        self._sync_buttons()


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
        for w in (self.summary, self.evaluate, self.eval_label, self.errors):
            lay.addWidget(w)

    def initializePage(self) -> None:  # noqa: N802
        from xscreen.wizard_run import validation_scores

        s = self.wiz.state
        self.patch_far.setValue(s.train.patch_far)
        self.scan_far.setValue(s.train.scan_far)
        self.evaluate.setEnabled(s.threat is not None)
        model, workdir, device = s.trained_model, self.wiz.workdir, s.train.device
        self.wiz.quick.start("valscores", lambda: iter([validation_scores(model, workdir, device)]))

    def on_job_item(self, key: str, item) -> None:
        if key == "valscores":
            self.scores = item
            self._on_far_changed()
        elif key == "evaluate":
            self.show_evaluation(item)

    def _on_far_changed(self, *_) -> None:
        from xscreen.wizard_run import calibration_for

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
        self.summary.setText(f"patch threshold {c.patch_threshold:.4g} ({c.patch_far:.1%} of {c.n_patches} benign "
                             f"patches above) · scan threshold {c.scan_threshold:.4g} ({c.scan_far:.1%} of "
                             f"{c.n_scans} benign scans alarm)" + scan_count_warning(c.n_scans, c.scan_far))

    def validatePage(self) -> bool:  # noqa: N802
        """Leaving the page writes the chosen thresholds into the model file."""
        from xscreen.wizard_run import recalibrate

        if self.scores is None:
            return False
        self.calibration = recalibrate(self.wiz.state.trained_model, self.scores, self.patch_far.value(),
                                       self.scan_far.value())
        return True

    def _on_evaluate_clicked(self) -> None:
        from xscreen.evaluate import EvalResult, evaluate_model
        from xscreen.wizard_run import evaluation_dirs, recalibrate

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
        self.roc.addLegend(offset=(-10, 10))
        auc = {lv.level: lv.auc for lv in result.levels}
        for (name, curve), colour in zip(result.curves.items(), ("#1b9e77", "#d95f02", "#7570b3", "#e7298a")):
            label = f"{name} (AUC {auc[name]:.3f})" if auc.get(name) is not None else name
            self.roc.plot(curve.fpr, curve.tpr, pen=pg.mkPen(colour, width=2), name=label)
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
        from xscreen.wizard_run import save_trained_model

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
