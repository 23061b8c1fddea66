"""``attach_inbox(window, inbox)``: the arrivals queue docked on the main window (``--inbox DIR``).

The main window keeps its own bag queue, decisions and scoring; this hook only appends arrivals to
that queue, primes its result cache with the lane's pre-screened outcome, opens a new bag when the
operator is waiting on a decided one, and mirrors decisions into the arrivals list. Nothing in the
window's modules changes for it.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDockWidget

from xscreen.gui.arrivals import ArrivalsFeed, ArrivalsPanel


class LaneHook(QObject):
    def __init__(self, window, inbox: str | Path, *, settle: float = 2.0, poll: float = 0.5):
        super().__init__(window)
        self.win = window
        self.panel = ArrivalsPanel()
        self.dock = QDockWidget(f"Arrivals - {Path(inbox).name or inbox}", window)
        self.dock.setObjectName("arrivals-dock")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        # the window's screening mode; maps on, so the pre-screened bag carries every layer it shows
        cfg = window.screen_config()
        self.scoring_id = window.scoring_id()
        self.feed = ArrivalsFeed(inbox, window.model_path or None, cfg, settle=settle, poll=poll,
                                 view=window.tab.state.view, parent=self)
        self.feed.arrived.connect(self._on_feed_arrived)
        self.feed.failed.connect(self._on_feed_failed)
        self.panel.chosen.connect(self._on_panel_chosen)
        self._shown = ""
        self.sync = QTimer(self)  # decisions are the window's: mirrored, not intercepted
        self.sync.timeout.connect(self._sync_decisions)
        self.sync.start(300)
        window.installEventFilter(self)
        QApplication.instance().aboutToQuit.connect(self.stop)  # a quit that closes no window
        self.feed.start()

    def stop(self, ms: int = 60000) -> bool:
        self.sync.stop()
        self.feed.stop()
        return self.feed.wait(ms)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.win and event.type() == QEvent.Type.Close:
            self.stop()  # before the window goes: a running QThread must not be destroyed
        return False

    def _on_feed_arrived(self, entry, outcome) -> None:
        win = self.win
        if outcome is not None and win.scoring_id() == self.scoring_id:
            win.cache.put(entry.path, self.scoring_id, outcome)
        self.panel.add(entry)
        q = win.queue
        q.paths.append(Path(entry.path))
        waiting = q.current is None or (q.index == len(q.paths) - 2 and q.decision(q.current) is not None)
        if waiting:
            q.go(len(q.paths) - 1)
            win.request(q.current)
            self.panel.select(entry.path)
        else:
            win.show_decisions()  # the tab's queue list grows

    def _on_feed_failed(self, message: str) -> None:
        self.panel.notice.setText(f"Inbox stopped: {message}")
        self.win.show_error("Inbox", message)

    def _on_panel_chosen(self, path: str) -> None:
        q = self.win.queue
        for i, p in enumerate(q.paths):
            if str(p) == path and q.go(i) is not None:
                self.win.request(q.current)
                return

    def _sync_decisions(self) -> None:
        q = self.win.queue
        if q.current is not None and str(q.current) != self._shown:
            self._shown = str(q.current)
            self.panel.select(self._shown)  # the list follows the bag on screen (keys, auto-advance)
        for e in self.panel.queue.entries:
            d = q.decision(e.path)
            if d is not None:
                self.panel.set_decision(e.path, d.decision)


def attach_inbox(window, inbox: str | Path, *, settle: float = 2.0, poll: float = 0.5) -> LaneHook:
    return LaneHook(window, inbox, settle=settle, poll=poll)
