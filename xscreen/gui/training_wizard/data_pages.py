"""Training wizard pages 1-2: benign data, patches (page 3: ``model_page``)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QPushButton, QSpinBox, QVBoxLayout)

from xscreen import wizard as wz
from xscreen.gui.training_wizard.base import GatedPage, to_pixmap


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
