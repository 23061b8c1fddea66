"""The GUI at a lane (``xscreen gui --inbox DIR``): an arrivals queue fed by the core lane loop.

``ArrivalsFeed`` pulls ``intake.run_lane`` on its own thread (bags are screened as they arrive,
before the operator gets to them) and hands each result to the GUI thread; ``ArrivalsPanel`` shows
the queue (``intake.arrivals.ArrivalQueue``), the backlog and the oldest undecided bag's age, and
cues an ALARM arrival (beep and a red flash, switchable); ``attach_inbox`` docks both on the main
window, appends each arrival to the window's bag queue (so the decision keys auto-advance through
it) and opens a new bag when the operator is waiting on a decided one.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QApplication, QCheckBox, QLabel, QListWidget, QListWidgetItem,
                               QVBoxLayout, QWidget)

from xscreen.intake.arrivals import ArrivalEntry, ArrivalQueue, entry_from

COLOURS = {"alarm": "#c62828", "clear": "#2e7d32", "other": "#8d6e00"}


class ArrivalsFeed(QThread):
    """The lane loop on a worker thread. ``arrived`` carries (ArrivalEntry, probe.Outcome | None):
    the outcome is the window's own display object, so a pre-screened bag opens at once."""

    arrived = Signal(object, object)
    failed = Signal(str)

    def __init__(self, inbox: str | Path, model: str | None, cfg, *, settle: float = 2.0, poll: float = 0.5,
                 view: str = "pseudo", parent: QObject | None = None):
        super().__init__(parent)
        self.inbox, self.model, self.cfg = Path(inbox), model, cfg
        self.settle, self.poll, self.view = settle, poll, view
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    def run(self) -> None:  # worker thread: no widget is touched here
        from xscreen.intake import Inbox, IntakeIdle, Rules, load_scorers, run_lane

        try:
            scorers = self._scorers = load_scorers([self.model] if self.model else None)
            with Inbox(self.inbox, rules=Rules(settle=self.settle)) as inbox:
                for item in run_lane(inbox, scorers, self.cfg, poll=self.poll):
                    if self._stop:
                        return  # between yields: the bag in hand is recorded and moved already
                    if not isinstance(item, IntakeIdle):
                        self.arrived.emit(entry_from(item), self._outcome(item))
        except Exception as exc:  # IntakeError (another consumer), ModelError: shown, the window goes on
            self.failed.emit(str(exc) or type(exc).__name__)

    def _outcome(self, item):
        """The window's display object for a screened bag, built here off the GUI thread. Only when the
        feed screens with the window's own model (``model`` given): the window caches it under that."""
        if not self.model or item.screening is None or item.screening.reconstruction is None:
            return None
        from xscreen.gui import probe
        from xscreen.scan import file_sha256

        try:
            path = item.done_path
            scan = dataclasses.replace(item.scan, path=path)
            s = dataclasses.replace(item.screening, path=str(path), sha256=file_sha256(path))
            renderer = probe.Renderer(scan)
            renderer.prepare(self.view)
            recon = probe.Renderer(probe.reconstruction_scan(scan, s.reconstruction,
                                                             self._scorers[s.kind].preprocess))
            recon.prepare(self.view)
            return probe.Outcome(str(path), scan, s.sha256, renderer, s, recon, probe.residual_rgb(s.residual))
        except Exception:  # no head start for this bag: the window screens it when opened
            return None


class ArrivalsPanel(QWidget):
    """The queue list, the backlog line and the alarm-cue switch. ``chosen`` carries a bag's path."""

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.queue = ArrivalQueue()
        self.backlog = QLabel()
        self.backlog.setObjectName("arrivals-backlog")
        self.list = QListWidget()
        self.cue = QCheckBox("Alarm cue (sound and flash)")
        self.cue.setChecked(True)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        layout = QVBoxLayout(self)
        for w in (self.backlog, self.list, self.cue, self.notice):
            layout.addWidget(w)
        self.list.itemActivated.connect(self._on_list_item_activated)
        self.list.itemClicked.connect(self._on_list_item_activated)
        self.ticker = QTimer(self)  # the oldest bag's age keeps counting between arrivals
        self.ticker.timeout.connect(self.refresh_backlog)
        self.ticker.start(1000)
        self.flash = QTimer(self)  # owned by the panel: it dies with it, never fires on a deleted label
        self.flash.setSingleShot(True)
        self.flash.timeout.connect(lambda: self.backlog.setStyleSheet(""))
        self.refresh_backlog()

    def add(self, entry: ArrivalEntry) -> int:
        index = self.queue.add(entry)
        item = QListWidgetItem(entry.label())
        item.setData(Qt.ItemDataRole.UserRole, entry.path)
        if entry.message:
            item.setToolTip(entry.message)
        self.list.addItem(item)
        self._colour(index)
        self.refresh_backlog()
        if entry.alarm and self.cue.isChecked():
            self.alarm_cue(entry)
        return index

    def set_decision(self, path: str, decision: str) -> None:
        if self.queue.set_decision(path, decision):
            for i, e in enumerate(self.queue.entries):
                self.list.item(i).setText(e.label())
                self._colour(i)
            self.refresh_backlog()

    def select(self, path: str) -> None:
        for i, e in enumerate(self.queue.entries):
            if e.path == path:
                self.list.setCurrentRow(i)

    def refresh_backlog(self) -> None:
        self.backlog.setText(self.queue.status_text())

    def alarm_cue(self, entry: ArrivalEntry) -> None:
        QApplication.beep()
        self.backlog.setStyleSheet("background: #c62828; color: white; font-weight: bold; padding: 4px;")
        self.notice.setText(f"ALARM arrival: {entry.name}")
        self.flash.start(2500)

    def _colour(self, index: int) -> None:
        e, item = self.queue.entries[index], self.list.item(index)
        key = "other" if e.status != "screened" else "alarm" if e.alarm else "clear"
        item.setForeground(QColor(COLOURS[key]) if not e.decision else QColor("#757575"))

    def _on_list_item_activated(self, item: QListWidgetItem) -> None:
        self.chosen.emit(str(item.data(Qt.ItemDataRole.UserRole)))
