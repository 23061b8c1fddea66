"""The training wizard: benign folder -> calibrated model in the screening tab (issue 5). Pages 1-2
here; 3 in ``model_page``, 4 in ``train_page``, 5-6 in ``wizard_pages``.

Pages are gated by ``xscreen.wizard.page_errors`` (a pure function of ``WizardState``, tested without
Qt); the jobs (inventory, estimates, training, calibration, evaluation) are core generators run in
``JobRunner`` worker threads, so the GUI thread only displays.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QListWidget, QPushButton, QSpinBox, QVBoxLayout, QWidget,
                               QWizard, QWizardPage)

from xscreen import wizard as wz
from xscreen.gui.worker import JobRunner


def to_pixmap(rgb: np.ndarray, max_side: int = 420) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    pix = QPixmap.fromImage(img)
    return pix.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio,
                      Qt.TransformationMode.SmoothTransformation) if max(h, w) > max_side else pix


def error_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet("color: #b00020;")
    return label


class GatedPage(QWizardPage):
    """A page whose Next button follows ``page_errors(state, key)``; the reasons are shown."""

    key = ""

    def __init__(self, wizard: "TrainingWizard"):
        super().__init__()
        self.wiz = wizard
        self.errors = error_label()
        wizard.state_changed.connect(self._on_state_changed)

    def isComplete(self) -> bool:  # noqa: N802 (Qt API)
        return not wz.page_errors(self.wiz.state, self.key)

    def _on_state_changed(self) -> None:
        self.errors.setText("\n".join(wz.page_errors(self.wiz.state, self.key)))
        self.completeChanged.emit()


class DataPage(GatedPage):
    key = "data"

    def __init__(self, wizard: "TrainingWizard"):
        super().__init__(wizard)
        self.setTitle("1 · Benign data")
        self.setSubTitle("Folders or files of threat-free scans. Some scans are held out automatically "
                         "(by scan) to calibrate the threshold.")
        self.inputs = QListWidget()
        add_dir, add_files, remove = QPushButton("Add folder…"), QPushButton("Add files…"), QPushButton("Remove")
        add_dir.clicked.connect(self._on_add_dir_clicked)
        add_files.clicked.connect(self._on_add_files_clicked)
        remove.clicked.connect(self._on_remove_clicked)
        self.threat = QLineEdit()
        self.threat.setPlaceholderText("optional: labelled threat scans (or an 'xscreen synth' folder) for evaluation")
        self.threat.editingFinished.connect(self._on_threat_edited)
        self.summary, self.unreadable = QLabel("no scans yet"), QListWidget()
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("background: #e8f5e9; padding: 4px;")
        self.note.setVisible(False)
        buttons = QHBoxLayout()
        for b in (add_dir, add_files, remove):
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        for w in (self.note, QLabel("Benign inputs"), self.inputs):
            lay.addWidget(w)
        lay.addLayout(buttons)
        for w in (QLabel("Evaluation folder"), self.threat, self.summary, QLabel("Unreadable files (skipped)"),
                  self.unreadable, self.errors):
            lay.addWidget(w)

    def set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def add_inputs(self, paths: list[Path]) -> None:
        benign = tuple(dict.fromkeys([*self.wiz.state.benign, *map(Path, paths)]))
        self._set_inputs(benign)

    def _set_inputs(self, benign: tuple[Path, ...]) -> None:
        self.inputs.clear()
        self.inputs.addItems([str(p) for p in benign])
        self.wiz.update(benign=benign, inventory=wz.Inventory(), patch_estimate=0)
        self.summary.setText("reading scans…")
        self.wiz.quick.start("inventory", lambda: wz.take_inventory(benign))

    def show_inventory(self, done: int, total: int, inv: wz.Inventory) -> None:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(inv.kinds.items())) or "none"
        self.summary.setText(f"{done}/{total} files read · readable scans by kind: {kinds} · "
                             f"{len(inv.unreadable)} unreadable")
        self.unreadable.clear()
        self.unreadable.addItems([f"{p.name}: {why}" for p, why in inv.unreadable])

    def _on_add_dir_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Benign scans folder")
        if folder:
            self.add_inputs([Path(folder)])

    def _on_add_files_clicked(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Benign scans")
        if files:
            self.add_inputs([Path(f) for f in files])

    def _on_remove_clicked(self) -> None:
        rows = {i.row() for i in self.inputs.selectedIndexes()}
        self._set_inputs(tuple(p for i, p in enumerate(self.wiz.state.benign) if i not in rows))

    def _on_threat_edited(self) -> None:
        text = self.threat.text().strip()
        self.wiz.update(threat=Path(text) if text else None)


class PatchesPage(GatedPage):
    key = "patches"

    def __init__(self, wizard: "TrainingWizard"):
        super().__init__(wizard)
        self.setTitle("2 · Patches")
        self.setSubTitle("How scans are cut into training patches. Shaded squares are air and are skipped.")
        self.size = QComboBox()
        self.size.addItems([str(s) for s in wz.PATCH_SIZES])
        self.size.setCurrentText("64")
        self.stride = QSpinBox(minimum=4, maximum=128, value=32)
        self.air = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.01, value=0.95, decimals=2)
        self.skip_air, self.augment = QCheckBox("skip air patches"), QCheckBox("augment (flips, 90° rotations)")
        self.skip_air.setChecked(True)
        self.preview, self.estimate = QLabel(), QLabel()
        form = QFormLayout()
        for label, w in (("Patch size", self.size), ("Stride", self.stride), ("Air threshold (transmission)", self.air)):
            form.addRow(label, w)
        form.addRow(self.skip_air)
        form.addRow(self.augment)
        lay = QHBoxLayout(self)
        left = QVBoxLayout()
        left.addLayout(form)
        for w in (self.estimate, self.errors):
            left.addWidget(w)
        left.addStretch(1)
        lay.addLayout(left)
        lay.addWidget(self.preview, 1)
        for w in (self.size.currentTextChanged, self.stride.valueChanged, self.air.valueChanged,
                  self.skip_air.toggled, self.augment.toggled):
            w.connect(self._on_field_changed)

    def initializePage(self) -> None:  # noqa: N802
        self._on_field_changed()

    def _on_field_changed(self, *_) -> None:
        patch = wz.PatchConfig(size=int(self.size.currentText()), stride=self.stride.value(),
                               air_threshold=self.air.value(), skip_air=self.skip_air.isChecked())
        train = dataclasses.replace(self.wiz.state.train, augment=self.augment.isChecked())
        self.wiz.update(patch=patch, train=train, patch_estimate=0)
        self.estimate.setText("estimating…")
        inv = self.wiz.state.inventory
        self.wiz.quick.start("estimate", lambda: _estimate_job(inv, patch))

    def show_estimate(self, count: int, preview: np.ndarray | None) -> None:
        self.wiz.update(patch_estimate=count)
        self.estimate.setText(f"≈ {count:,} training + validation patches")
        if preview is not None:
            self.preview.setPixmap(to_pixmap(preview))


def _estimate_job(inv: wz.Inventory, patch: wz.PatchConfig):
    from xscreen.materials import render
    from xscreen.scan import load_scan

    count = wz.estimate_patches(inv, patch)
    preview = None
    if inv.scans:
        scan = load_scan(inv.scans[0].path)
        view = "pseudo" if scan.kind == "dual" else "gray"
        preview = wz.tiling_preview(render(scan, view), scan, patch)
    yield count, preview


class TrainingWizard(QWizard):
    """Emits ``model_saved(path)`` when the analyst saves a model (the screening tab lists it at once)."""

    state_changed = Signal()
    model_saved = Signal(str)

    def __init__(self, parent: QWidget | None = None, workdir: Path | None = None, models_dir: Path | None = None):
        from xscreen import paths
        from xscreen.gui import wizard_pages as wp
        from xscreen.gui.model_page import ModelPage
        from xscreen.gui.train_page import TrainPage

        super().__init__(parent)
        self.setWindowTitle("Train a model")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoCancelButton, True)
        self.state = wz.apply_preset(wz.WizardState(), "standard")
        self.workdir = Path(workdir or paths.user_data_dir() / "runs" / "wizard")
        self.models_dir = Path(models_dir or paths.user_models_dir())
        self.quick, self.trainer = JobRunner(self), JobRunner(self)
        self.pages = {"data": DataPage(self), "patches": PatchesPage(self), "model": ModelPage(self),
                      "train": TrainPage(self), "calibrate": wp.CalibratePage(self), "save": wp.SavePage(self)}
        for page in self.pages.values():
            self.addPage(page)
        self.quick.item.connect(self._on_quick_item)
        self.quick.failed.connect(self._on_job_failed)
        self.state_changed.emit()

    def set_state(self, state: wz.WizardState) -> None:
        self.state = state
        self.state_changed.emit()

    def update(self, **changes) -> None:
        self.set_state(dataclasses.replace(self.state, **changes))

    def _on_quick_item(self, key: str, item) -> None:
        if key == "inventory":
            done, total, inv = item
            self.update(inventory=inv)
            self.pages["data"].show_inventory(done, total, inv)
        elif key == "estimate":
            self.pages["patches"].show_estimate(*item)
        elif key == "speed":
            self.pages["model"].show_speed(item)
        else:
            self.pages["calibrate"].on_job_item(key, item)

    def _on_job_failed(self, key: str, message: str) -> None:
        from xscreen.gui import dialogs

        self.error = dialogs.error_box(self, f"{key} failed", message)

    def done(self, result: int) -> None:
        """Finish (or Esc) must not hide the wizard: it lives in a tab, which went blank. After
        Finish it starts over at page 1, naming the model just saved; Esc does nothing."""
        if result == QWizard.DialogCode.Accepted and self.validateCurrentPage():  # as QWizard.done
            saved = self.pages["save"].saved
            self.restart()
            self.pages["data"].set_note(f"Saved {saved.name if saved else 'the model'}: it is listed in "
                                        "the Screening tab's model selector. Start another model here.")

    def shutdown(self) -> None:
        self.trainer.cancel()
        self.quick.cancel()
        self.trainer.wait()
        self.quick.wait()


def create_training_widget(parent: QWidget) -> QWidget:
    """The Training tab of the main window; a saved model is listed in the screening tab at once."""
    wizard = TrainingWizard(parent)
    refresh = getattr(parent, "refresh_models", None)
    if refresh is not None:
        wizard.model_saved.connect(lambda _path: refresh())
    return wizard
