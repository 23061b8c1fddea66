"""Training wizard page 3: network size preset, run settings, advanced loss weights, speed."""
from __future__ import annotations

import dataclasses

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from xscreen import wizard as wz
from xscreen.config import D_EVERY_MAX, DENSITY_MAX
from xscreen.gui.training_wizard.base import GatedPage, scrolled


class ModelPage(GatedPage):
    key = "model"

    def __init__(self, wizard: "TrainingWizard"):
        super().__init__(wizard)
        self.setTitle("3 · Model and run")
        self.setSubTitle("'fast' trains in minutes on a CPU; 'paper' is the published size.")
        self.preset = QComboBox()
        self.preset.addItems(list(wz.PRESETS))
        self.preset.setCurrentText(wizard.state.preset)
        self.epochs, self.batch = QSpinBox(minimum=0, maximum=1000), QSpinBox(minimum=1, maximum=4096)
        self.precision, self.device = QComboBox(), QComboBox()
        self.precision.addItems(["auto", "fp32", "bf16", "fp16"])
        self.device.addItems(_devices())
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.advanced = QGroupBox("Advanced")
        self.advanced.setCheckable(True)
        self.advanced.setChecked(False)
        self.ngf, self.ndf = QSpinBox(minimum=1, maximum=256), QSpinBox(minimum=1, maximum=256)
        self.w_adv, self.w_con, self.w_lat, self.lam = (QDoubleSpinBox(minimum=-1, maximum=1000, decimals=3)
                                                        for _ in range(4))
        self.recon = QComboBox()
        self.recon.addItems(["l1", "l2"])
        adv = QFormLayout(self.advanced)
        for label, w in (("ngf", self.ngf), ("ndf", self.ndf), ("w_adv", self.w_adv), ("w_con", self.w_con),
                         ("w_lat", self.w_lat), ("λ (score)", self.lam), ("reconstruction term", self.recon)):
            adv.addRow(label, w)
        self._add_detection_options(adv)
        self.speed, measure = QLabel("estimated time: measure to see"), QPushButton("Measure speed")
        measure.clicked.connect(self._on_measure_clicked)
        form = QFormLayout()
        for label, w in (("Size preset", self.preset), ("Epochs", self.epochs), ("Batch size", self.batch),
                         ("Precision", self.precision), ("Device", self.device), ("Seed", self.seed)):
            form.addRow(label, w)
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.addLayout(form)
        lay.addWidget(self.advanced)
        lay.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(measure)
        row.addWidget(self.speed, 1)
        outer = QVBoxLayout(self)
        outer.addWidget(scrolled(body), 1)  # the Advanced rows scroll: the window fits a 1000-px screen
        outer.addLayout(row)
        outer.addWidget(self.errors)
        self._load_fields()
        self.preset.currentTextChanged.connect(self._on_preset_changed)
        for sig in (self.epochs.valueChanged, self.batch.valueChanged, self.seed.valueChanged,
                    self.ngf.valueChanged, self.ndf.valueChanged, self.w_adv.valueChanged, self.w_con.valueChanged,
                    self.w_lat.valueChanged, self.lam.valueChanged, self.precision.currentTextChanged,
                    self.device.currentTextChanged, self.recon.currentTextChanged, self.selection.currentTextChanged,
                    self.input_mask.valueChanged, self.skips_off.valueChanged, self.spectral.toggled, self.attention.toggled,
                    self.inpaint.valueChanged, self.window.valueChanged, self.density.valueChanged,
                    self.d_batch.currentTextChanged, self.d_every.valueChanged, self.material.toggled,
                    self.generator.currentTextChanged):
            sig.connect(self._on_field_changed)
        self.advanced.toggled.connect(self._sync_material)  # after the group's own (children) handler

    def _add_detection_options(self, form: QFormLayout) -> None:
        """The detection-study options (benchmarks/RESULTS.md, 'Detection study'); paper values by default."""
        self.selection = QComboBox()
        self.selection.addItems(["mean_score", "pasted", "inserted"])
        self.d_batch = QComboBox()
        self.d_batch.addItems(["separate", "joint"])
        self.d_every = QSpinBox(minimum=1, maximum=D_EVERY_MAX)
        self.d_every.setToolTip("step the discriminator on every N-th training step only (1 = every step, the "
                                "paper); the other steps skip its backward pass and train faster")
        self.input_mask = QDoubleSpinBox(minimum=0.0, maximum=1.0, decimals=2, singleStep=0.1)
        self.skips_off, self.inpaint = QSpinBox(minimum=0, maximum=3), QSpinBox(minimum=0, maximum=4)
        self.window = QSpinBox(minimum=0, maximum=128)
        self.density = QDoubleSpinBox(minimum=0.0, maximum=DENSITY_MAX, decimals=2, singleStep=0.25)
        self.density.setToolTip("adds the patch's mean density to the score, weighted against the score's own "
                                "benign 99th percentile (0 = off)")
        self.spectral = QCheckBox("spectral norm in the discriminator")
        self.attention = QCheckBox("self-attention in the discriminator")
        self.attention.setToolTip("a SAGAN self-attention layer at a quarter of the patch size (about 1.3x the "
                                  "training step; measured within the seeds' spread: benchmarks/RESULTS.md)")
        self.generator = QComboBox()
        self.generator.addItems(["unet", "unetpp"])
        self.generator.setToolTip("the paper's UNet, or UNet++ nested skips (about 3.5x the training and scoring "
                                  "time at 64 px; no outer skips off)")
        self.material = QCheckBox("material channel (dual-energy)")
        self.material.setToolTip("a third input channel: each pixel's material (organic to iron) from the ratio "
                                 "of its low- and high-energy attenuations")
        for label, w in (("epoch selection (benign)", self.selection), ("masked-input share", self.input_mask),
                         ("generator", self.generator),
                         ("UNet skips off (outer levels)", self.skips_off), ("", self.spectral), ("", self.attention),
                         ("", self.material),
                         ("discriminator batches", self.d_batch), ("discriminator step every N", self.d_every),
                         ("score: inpainting grid k (0 = off)", self.inpaint),
                         ("score: residual window (0 = patch)", self.window),
                         ("score: density prior weight (0 = off)", self.density)):
            form.addRow(label, w)

    def _load_fields(self) -> None:
        s = self.wiz.state
        for w, v in ((self.epochs, s.train.epochs), (self.batch, s.train.batch_size), (self.seed, s.train.seed),
                     (self.ngf, s.net.ngf), (self.ndf, s.net.ndf), (self.w_adv, s.train.w_adv),
                     (self.w_con, s.train.w_con), (self.w_lat, s.train.w_lat), (self.lam, s.train.lam)):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)
        for w, setter, v in ((self.selection, self.selection.setCurrentText, s.train.selection),
                             (self.input_mask, self.input_mask.setValue, s.train.input_mask),
                             (self.d_batch, self.d_batch.setCurrentText, s.train.d_batch),
                             (self.d_every, self.d_every.setValue, s.train.d_every),
                             (self.skips_off, self.skips_off.setValue, s.net.outer_skips_off),
                             (self.spectral, self.spectral.setChecked, s.net.d_spectral_norm),
                             (self.attention, self.attention.setChecked, s.net.d_attention),
                             (self.generator, self.generator.setCurrentText, s.net.generator),
                             (self.material, self.material.setChecked, s.material),
                             (self.inpaint, self.inpaint.setValue, s.train.score_inpaint),
                             (self.window, self.window.setValue, s.train.recon_window),
                             (self.density, self.density.setValue, s.train.density)):
            w.blockSignals(True)
            setter(v)
            w.blockSignals(False)

    def initializePage(self) -> None:  # noqa: N802 (Qt API)
        self._load_fields()  # the data's kind may have set the score options since the page was built

    def _on_state_changed(self) -> None:
        self._sync_material()
        super()._on_state_changed()

    def _sync_material(self, *_) -> None:
        """The material channel is a ratio of two energies: colour or grey data has none to take, so
        there the box is cleared and greyed; elsewhere it follows the Advanced group."""
        dual = wz.data_kind(self.wiz.state) == "dual"
        if not dual and self.material.isChecked():
            self.material.setChecked(False)  # updates the state (and comes back here once)
        self.material.setEnabled(dual and self.advanced.isChecked())

    def _on_preset_changed(self, name: str) -> None:
        self.wiz.set_state(wz.apply_preset(self.wiz.state, name))
        self._load_fields()

    def _on_field_changed(self, *_) -> None:
        s = self.wiz.state
        train = dataclasses.replace(
            s.train, epochs=self.epochs.value(), batch_size=self.batch.value(), seed=self.seed.value(),
            precision=self.precision.currentText(), device=self.device.currentText(), w_adv=self.w_adv.value(),
            w_con=self.w_con.value(), w_lat=self.w_lat.value(), lam=self.lam.value(), recon=self.recon.currentText(),
            selection=self.selection.currentText(), input_mask=self.input_mask.value(),
            score_inpaint=self.inpaint.value(), recon_window=self.window.value(), density=self.density.value(),
            d_batch=self.d_batch.currentText(), d_every=self.d_every.value())
        net = dataclasses.replace(s.net, ngf=self.ngf.value(), ndf=self.ndf.value(),
                                  outer_skips_off=self.skips_off.value(), d_spectral_norm=self.spectral.isChecked(),
                                  d_attention=self.attention.isChecked(),
                                  generator=self.generator.currentText())
        self.wiz.update(train=train, net=net, material=self.material.isChecked())

    def _on_measure_clicked(self) -> None:
        from xscreen.wizard.run import measure_speed

        s = self.wiz.state
        net = wz.model_net(s)
        self.speed.setText("measuring a few training steps…")
        self.wiz.quick.start("speed", lambda: iter([measure_speed(net, s.train, max(s.patch_estimate, 1))]))

    def show_speed(self, est) -> None:
        self.speed.setText(f"{est.patches_per_s:,.0f} patches/s ({est.precision}) → about "
                           f"{est.seconds_per_epoch / 60:.1f} min per epoch, {est.total_seconds / 60:.0f} min in all")


def _devices() -> list[str]:
    import torch

    return ["auto", "cpu"] + ([f"cuda:{i}" for i in range(torch.cuda.device_count())])
