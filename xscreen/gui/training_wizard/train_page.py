"""Training wizard page 4: train, with progress from the first scan read to the last step.

The bar follows the patch store being built (one step per scan), then training steps; the plot
shows the generator and discriminator losses per logged iteration (x in epochs, so one epoch is a
curve, not a dot) and the epoch means of each loss term; below, the most structured held-out benign
patches, the model's reconstruction and their difference after each epoch.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from xscreen import wizard as wz
from xscreen.gui.training_wizard.base import GatedPage, to_pixmap

CURVES = (("g_adv", "adversarial", "#d95f02"), ("g_con", "contextual", "#1b9e77"),
          ("g_lat", "latent", "#7570b3"), ("d_loss", "discriminator", "#e7298a"))
STEP_CURVES = (("g_loss", "G total (per iteration)", "#444444"), ("d_loss", "D (per iteration)", "#e7298a"))
LOG_EVERY = 1  # a report every step (the CLI's 50 gave one dot an epoch on small sets) ...
REDRAW_S = 0.25  # ... but the curves and the status redraw at most this often
STATUS_STYLE = {"ok": "", "error": "color: #b00020; font-weight: bold;"}


def training_job(run, workdir: Path, resume: bool):
    """``train_model`` plus, after each epoch, a reconstruction of fixed held-out benign patches."""
    from xscreen.train import EpochReport
    from xscreen.train.run import train_model
    from xscreen.wizard.run import fixed_val_patches, preview_strip, reconstruct_from_state

    fixed = None
    for item in train_model(run, workdir, resume=resume, command="xscreen train --config <wizard config>"):
        yield item
        if isinstance(item, EpochReport):
            fixed = fixed_val_patches(workdir) if fixed is None else fixed
            if len(fixed):
                recon = reconstruct_from_state(item.checkpoint, run.net, fixed)
                yield ("preview", preview_strip(fixed, recon, run.preprocess.kind))


def step_position(epoch: int, step: int, steps: int) -> float:
    """x of a logged iteration on the epoch axis: epoch 1's steps lie in (0, 1]."""
    return epoch - 1 + step / max(steps, 1)


class TrainPage(GatedPage):
    key = "train"

    def __init__(self, wizard):
        super().__init__(wizard)
        self.setTitle("4 · Train")
        self.setSubTitle("Losses per iteration (lines) and per epoch (dots); below, held-out benign "
                         "patches (top), the model's reconstruction (middle) and their difference "
                         "(bottom). Cancel keeps the last finished epoch; Resume continues it.")
        self.errors.setStyleSheet("color: #424242;")  # "training is running" is news, not an error
        self.start, self.cancel, self.resume = QPushButton("Start"), QPushButton("Cancel"), QPushButton("Resume")
        self.start.clicked.connect(lambda: self._begin(resume=False))
        self.resume.clicked.connect(lambda: self._begin(resume=True))
        self.cancel.clicked.connect(self._on_cancel_clicked)
        self.progress, self.status, self.preview = QProgressBar(), QLabel("not started"), QLabel()
        self.preview.setText("reconstructions appear after the first epoch")
        self.plot = self._make_plot()
        self._reset_curves()
        buttons = QHBoxLayout()
        for b in (self.start, self.cancel, self.resume):
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        lay.addLayout(buttons)
        for w in (self.progress, self.status):
            lay.addWidget(w)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.plot_key)
        for w in (self.preview, self.errors):
            lay.addWidget(w)
        wizard.trainer.item.connect(self._on_train_item)
        wizard.trainer.done.connect(self._on_train_done)
        wizard.trainer.failed.connect(self._on_train_failed)
        wizard.trainer.cancelled.connect(self._on_train_cancelled)
        self._sync_buttons()

    def _make_plot(self) -> pg.PlotWidget:
        plot = pg.PlotWidget(background="w")
        plot.setLabel("bottom", "epoch")
        plot.setLogMode(y=True)
        self.step_curves = {k: plot.plot([], [], name=name, pen=pg.mkPen(c, width=1))
                            for k, name, c in STEP_CURVES}
        self.curves = {k: plot.plot([], [], name=f"{name} (epoch mean)", pen=None, symbol="o",
                                    symbolSize=8, symbolBrush=c, symbolPen=c) for k, name, c in CURVES}
        # the key sits under the plot: drawn inside it, it covered the curves
        self.plot_key = QLabel("   ".join([f"<span style='color:{c}'>━</span> {name}" for _, name, c in STEP_CURVES]
                                       + [f"<span style='color:{c}'>●</span> {name} (epoch mean)"
                                          for _, name, c in CURVES]))
        return plot

    def _reset_curves(self) -> None:
        self.history: dict[str, list[float]] = {k: [] for k, _, _ in CURVES}
        self.steps_x: list[float] = []
        self.step_history: dict[str, list[float]] = {k: [] for k, _, _ in STEP_CURVES}
        self.epochs: list[int] = []
        self.d_reinits = 0
        self._drawn = 0.0
        for curve in (*self.curves.values(), *self.step_curves.values()):
            curve.setData([], [])

    def set_status(self, text: str, kind: str = "ok") -> None:
        self.status.setText(text)
        self.status.setStyleSheet(STATUS_STYLE[kind])

    def initializePage(self) -> None:  # noqa: N802
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        from xscreen.wizard.run import can_resume

        running = self.wiz.state.training
        self.start.setEnabled(not running)
        self.cancel.setEnabled(running)
        self.resume.setEnabled(not running and can_resume(self.wiz.workdir))  # not after a finished run

    def _keep_finished_epochs(self) -> None:
        """After a cancel or a failure only whole epochs are kept (Resume continues from the last):
        the plot drops the partial epoch (else Resume drew a line back from 2.8 to 2.0) and the
        bar says how many epochs are kept, not the share of steps reached."""
        kept = self.epochs[-1] if self.epochs else 0
        keep = [i for i, x in enumerate(self.steps_x) if x <= kept + 1e-9]
        self.steps_x = [self.steps_x[i] for i in keep]
        for k in self.step_history:
            self.step_history[k] = [self.step_history[k][i] for i in keep]
            self.step_curves[k].setData(self.steps_x, self.step_history[k])
        epochs = self.wiz.run.train.epochs if getattr(self.wiz, "run", None) is not None else max(kept, 1)
        self.progress.setRange(0, max(epochs, 1))
        self.progress.setValue(kept)
        self.progress.setFormat("%v of %m epochs kept")

    def _begin(self, resume: bool) -> None:
        s = self.wiz.state
        run = wz.to_run_config(s, self.wiz.workdir / "model.xsm")
        run = dataclasses.replace(run, train=dataclasses.replace(run.train, log_every=LOG_EVERY))
        if not resume:
            self._reset_curves()
            (self.wiz.workdir / "state.pt").unlink(missing_ok=True)
        self.t0, self.wiz.run = time.monotonic(), run
        self.wiz.update(training=True, trained_model=None)
        self._sync_buttons()
        self.progress.setRange(0, 0)  # busy until the first scan is read
        self.set_status("reading the benign scans into the patch store…")
        self.wiz.trainer.start("train", lambda: training_job(run, self.wiz.workdir, resume))

    def _on_cancel_clicked(self) -> None:
        self.set_status("cancelling after the current step…")
        self.wiz.trainer.cancel()

    def _on_train_item(self, key: str, item) -> None:
        from xscreen.dataset.store import StoreProgress
        from xscreen.train import EpochReport, ProgressReport

        if isinstance(item, tuple) and item and item[0] == "preview":
            strip = item[1]
            zoom = max(1, 720 // max(strip.shape[1], 1))  # patches are small: enlarge, pixel for pixel
            self.preview.setPixmap(to_pixmap(strip.repeat(zoom, axis=0).repeat(zoom, axis=1), 1000))
        elif isinstance(item, ProgressReport):
            self.show_step(item)
        elif isinstance(item, EpochReport):
            self.show_epoch(item)
        elif isinstance(item, StoreProgress):
            self.show_store(item)

    def show_store(self, p) -> None:
        self.progress.setFormat("%p%")
        self.progress.setRange(0, max(p.n_scans, 1))
        self.progress.setValue(p.scan)
        if p.done:
            self.set_status(f"patch store ready: {p.n_train:,} training + {p.n_val:,} held-out patches "
                            f"from {p.n_scans} scans; starting training…")
        else:
            self.set_status(f"building the patch store: scan {p.scan}/{p.n_scans} ({p.name}, {p.split}) · "
                            f"{p.n_train + p.n_val:,} patches so far")

    def show_step(self, item) -> None:
        done = (item.epoch - 1) * item.steps + item.step
        total = self.wiz.run.train.epochs * item.steps
        self.progress.setFormat("%p%")  # training again: the bar counts steps
        self.steps_x.append(step_position(item.epoch, item.step, item.steps))
        for k in self.step_history:
            self.step_history[k].append(max(float(getattr(item, k)), 1e-6))
        now = time.monotonic()
        if now - self._drawn < REDRAW_S and item.step != item.steps:
            return
        self._drawn = now
        for k in self.step_history:
            self.step_curves[k].setData(self.steps_x, self.step_history[k])
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        eta = (time.monotonic() - self.t0) / max(done, 1) * (total - done)
        self.set_status(f"epoch {item.epoch}, step {item.step}/{item.steps} · {item.patches_per_s:,.0f} "
                        f"patches/s · G {item.g_loss:.3f} · D {item.d_loss:.3f} · ETA {eta / 60:.1f} min")

    def show_epoch(self, r) -> None:
        self.epochs.append(r.epoch)
        for k in self.history:
            self.history[k].append(max(float(getattr(r, k)), 1e-6))
            self.curves[k].setData(self.epochs, self.history[k])
        self.d_reinits += r.d_reinits
        self.set_status(f"epoch {r.epoch}/{r.epochs} · validation score {r.val_score_mean:.4f} ± "
                        f"{r.val_score_std:.4f}{' (best)' if r.best else ''} · D re-inits {self.d_reinits}")

    def _on_train_done(self, key: str, result) -> None:
        self.set_status(f"done: best epoch {result.best_epoch}, {result.train_seconds / 60:.1f} min, "
                        f"patch threshold {result.calibration.patch_threshold:.4g}")
        self.progress.setValue(self.progress.maximum())
        self.wiz.update(training=False, trained_model=Path(result.model_path))
        self._sync_buttons()

    def _on_train_cancelled(self, key: str) -> None:
        self.set_status("cancelled: the last finished epoch is kept; Resume continues from it")
        self._keep_finished_epochs()
        self.wiz.update(training=False)
        self._sync_buttons()

    def _on_train_failed(self, key: str, message: str) -> None:
        self.set_status(f"training failed: {message.splitlines()[0] if message else ''}", "error")
        self._keep_finished_epochs()
        self.wiz.update(training=False)
        self._sync_buttons()
