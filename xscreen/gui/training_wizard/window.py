"""The training wizard: benign folder -> calibrated model in the screening tab (issue 5). Pages 1-2
in ``data_pages``, 3 in ``model_page``, 4 in ``train_page``, 5-6 in ``calibrate_pages``; the shared
page base in ``base``.

Pages are gated by ``xscreen.wizard.page_errors`` (a pure function of ``WizardState``, tested without
Qt); the jobs (inventory, estimates, training, calibration, evaluation) are core generators run in
``JobRunner`` worker threads, so the GUI thread only displays.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget, QWizard

from xscreen import wizard as wz
from xscreen.gui.training_wizard.calibrate_pages import CalibratePage, SavePage
from xscreen.gui.training_wizard.data_pages import DataPage, PatchesPage
from xscreen.gui.training_wizard.model_page import ModelPage
from xscreen.gui.training_wizard.train_page import TrainPage
from xscreen.gui.worker import JobRunner


class TrainingWizard(QWizard):
    """Emits ``model_saved(path)`` when the analyst saves a model (the screening tab lists it at once)."""

    state_changed = Signal()
    model_saved = Signal(str)

    def __init__(self, parent: QWidget | None = None, workdir: Path | None = None, models_dir: Path | None = None):
        from xscreen import paths

        super().__init__(parent)
        self.setWindowTitle("Train a model")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoCancelButton, True)
        self.state = wz.apply_preset(wz.WizardState(), "standard")
        self.workdir = Path(workdir or paths.user_data_dir() / "runs" / "wizard")
        self.models_dir = Path(models_dir or paths.user_models_dir())
        self.quick, self.trainer = JobRunner(self), JobRunner(self)
        self.pages = {"data": DataPage(self), "patches": PatchesPage(self), "model": ModelPage(self),
                      "train": TrainPage(self), "calibrate": CalibratePage(self), "save": SavePage(self)}
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
            self.set_state(wz.with_inventory(self.state, inv))  # the data's kind sets the score defaults
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
