"""Main window: sign-in page or tabs, menus and toolbar generated from the shortcut registry (each
action enabled only where its key may act), the bag queue, scoring in a worker thread, decisions
into the audit log, settings that persist (never the operator)."""
from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QComboBox, QLabel, QLineEdit, QMainWindow,
                               QPlainTextEdit, QStackedWidget, QTabWidget, QTextEdit, QWidget)

from xscreen import paths
from xscreen.gui import dialogs, session, shortcuts
from xscreen.gui import state as st
from xscreen.gui.deciding import DecisionHandling
from xscreen.gui.files import FileHandling
from xscreen.gui.model_handling import ModelHandling
from xscreen.gui.notices import fit_size
from xscreen.gui.signin import OperatorHandling
from xscreen.gui.tip_handling import TipHandling
from xscreen.gui.screening_tab import ScreeningTab
from xscreen.gui.worker import JobRunner

TrainingFactory = Callable[[QWidget], QWidget]
# Toolbar: short labels (the menus carry the long ones); decisions live in the big buttons.
TOOLBAR = {"file.open": "Open", "file.open_folder": "Folder", "queue.prev": "◀ Prev", "queue.next": "Next ▶",
           "nav.fit": "Fit", "layer.overlay": "Heatmap", "layer.reconstruction": "Reconstruction",
           "layer.residual": "Residual", "layer.side": "Side by side", "score.cancel": "Cancel",
           "audit.stats": "Statistics", "help.keys": "Keys (F1)"}


def default_training_factory(parent: QWidget) -> QWidget:
    """The training wizard's widget when its module provides ``create_training_widget(parent)``,
    else a placeholder - the wizard plugs in without touching this window."""
    try:
        from xscreen.gui import training_wizard
        return training_wizard.create_training_widget(parent)
    except (ImportError, AttributeError):
        label = QLabel("Training wizard: not installed in this build.\n"
                       "Train from the command line: xscreen train --help", parent)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        return label


def initial_model(stored: str) -> str:
    """The last model used if its file is still there, else the shipped default ('' = none)."""
    if stored and Path(stored).is_file():
        return stored
    default = paths.default_model()
    return str(default) if default is not None else ""


def is_text_input(widget: QWidget | None) -> bool:
    """A widget that takes plain keys as typing (so no single-key shortcut may take them)."""
    if isinstance(widget, QComboBox):
        return widget.isEditable()
    if isinstance(widget, (QTextEdit, QPlainTextEdit)):
        return not widget.isReadOnly()
    return isinstance(widget, (QLineEdit, QAbstractSpinBox))


class MainWindow(TipHandling, FileHandling, DecisionHandling, OperatorHandling, ModelHandling, QMainWindow):
    def __init__(self, settings_path: str | Path | None = None, training_factory: TrainingFactory | None = None,
                 audit_path: str | Path | None = None):
        super().__init__()
        self.setWindowTitle("xscreen - X-ray baggage screening")
        path = Path(settings_path) if settings_path else paths.user_data_dir() / "gui.ini"
        self.settings = QSettings(str(path), QSettings.Format.IniFormat)
        self.settings.remove("operator/name")  # stored by older versions: never credit the last operator
        self.audit_path = Path(audit_path) if audit_path else None
        self.queue = session.BagQueue()
        self.cache = session.ResultCache()
        self.timer = session.DecisionTimer()
        self.runner = JobRunner(self)
        self.model_path = initial_model(self.setting("model/path"))
        self.extra_models: list[str] = [self.model_path] if self.model_path else []
        self._scorers: dict[str, object] = {}
        self.error: object | None = None  # the last error dialog (tests inspect it)
        self.dialog: object | None = None
        self.tab = ScreeningTab(st.state_from_settings(self._stored_view()))
        self.tabs = QTabWidget()
        self.tabs.addTab(self.tab, "Screening")
        self.tabs.addTab((training_factory or default_training_factory)(self), "Training")
        self.cursor_label = QLabel("")
        self.statusBar().addPermanentWidget(self.cursor_label, 1)
        self.actions_by_id = self._build_actions()
        self._build_operator(self.toolbar)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.tabs)
        self.stack.addWidget(self.sign_in_page)
        self.setCentralWidget(self.stack)
        self.setAcceptDrops(True)
        self._connect()
        self._build_tip()  # TIP (issue 30): gui/tip_handling.py
        self.refresh_models()
        self.sign_out("Sign in to start. Your name is recorded with each decision you take.")
        self.show_decisions()
        screen = QApplication.primaryScreen().availableGeometry()
        self.resize(*fit_size((1400, 860), (screen.width(), screen.height())))

    # --- settings --------------------------------------------------------------------------
    def setting(self, key: str):
        return st.coerce_setting(key, self.settings.value(key))

    def put_setting(self, key: str, value) -> None:
        self.settings.setValue(key, value)

    def _stored_view(self) -> dict:
        return {k: self.settings.value(k) for k in st.SETTINGS_SCHEMA if k.startswith("view/")}

    def _on_tab_state_changed(self, s: st.ViewState) -> None:
        for key, value in st.state_to_settings(s).items():
            self.settings.setValue(key, value)

    # --- actions from the registry -------------------------------------------------------------
    def _build_actions(self) -> dict[str, QAction]:
        out: dict[str, QAction] = {}
        menus = {}
        for sc in shortcuts.SHORTCUTS:
            act = QAction(sc.label, self)
            act.setShortcut(QKeySequence(sc.keys))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            act.setAutoRepeat(not sc.action.startswith("decide."))  # a held key is one decision
            act.setToolTip(f"{sc.label} ({sc.keys})")
            act.triggered.connect(lambda _=False, a=sc.action: self.dispatch(a))
            if sc.group not in menus:
                menus[sc.group] = self.menuBar().addMenu(sc.group)
            menus[sc.group].addAction(act)
            self.addAction(act)  # shortcuts work whatever has focus in the window
            out[sc.action] = act
        self.recent_menu = menus["File"].addMenu("Recent files")
        self.fast_action = self._build_fast_action(menus["Detector"])
        bar = self.toolbar = self.addToolBar("Operator")
        bar.setObjectName("operator-toolbar")
        for action, short in TOOLBAR.items():
            out[action].setIconText(short)
            bar.addAction(out[action])
        return out

    def _connect(self) -> None:
        self.tab.status.connect(self.cursor_label.setText)
        self.tab.state_changed.connect(self._on_tab_state_changed)
        self.tab.decisions.action.connect(self.dispatch)
        self.tab.progress.cancel.connect(lambda: self.dispatch("score.cancel"))
        self.tab.models.chosen.connect(self.set_model)
        self.runner.item.connect(self._on_job_item)
        self.runner.done.connect(self._on_job_done)
        self.runner.failed.connect(self._on_job_failed)
        self.runner.cancelled.connect(self._on_job_cancelled)
        self.runner.idle.connect(self._prescore_next)  # the next bag is scored while this one is reviewed
        self.tab.queue_panel.chosen.connect(self._on_queue_chosen)
        self.tabs.currentChanged.connect(self._on_tabs_current_changed)
        QApplication.instance().focusChanged.connect(self._on_app_focus_changed)
        self._update_recent_menu()

    def update_actions(self) -> None:
        """Enable each action (and so its key) only where it may act: see ``shortcuts.enabled``."""
        if not hasattr(self, "stack"):
            return  # still building the window
        ctx = shortcuts.KeyContext(
            signed_in=self.operator.signed_in,
            screening_shown=self.stack.currentWidget() is self.tabs and self.tabs.currentWidget() is self.tab,
            scored=self.tab.screening is not None, text_focus=is_text_input(QApplication.focusWidget()),
            failed=self.tab.outcome is None and self.failed_path is not None)
        for sc in shortcuts.SHORTCUTS:
            self.actions_by_id[sc.action].setEnabled(shortcuts.enabled(sc, ctx))
        self.fast_action.setEnabled(ctx.signed_in)
        self.tab.decisions.set_enabled(self.can_decide(), self.can_decide("decide.unreadable"))

    def _on_tabs_current_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.tab:
            self.tab.setFocus()  # keys go to the bag, not to a field left focused on another tab
        self.update_actions()

    def _on_app_focus_changed(self, old: QWidget | None, new: QWidget | None) -> None:
        if is_text_input(old) != is_text_input(new):
            self.update_actions()

    def dispatch(self, action: str) -> None:
        """Run a registry action (keys, menus, toolbar and buttons all come here)."""
        simple = {
            "file.open": self.ask_open_file, "file.open_folder": self.ask_open_folder,
            "file.open_model": self.ask_open_model, "file.quit": self.close,
            "queue.next": lambda: self.step_queue(1), "queue.prev": lambda: self.step_queue(-1),
            "score.run": self.rescore, "score.cancel": self.cancel_scoring,
            "tab.screening": lambda: self.tabs.setCurrentIndex(0),
            "tab.training": lambda: self.tabs.setCurrentIndex(1),
            "model.card": self.show_model_card, "audit.stats": self.show_stats,
            "operator.change": self.sign_out, "help.keys": self.show_cheat_sheet,
        }
        if action in simple:
            simple[action]()
        elif action in session.DECISIONS:
            self.decide(action)
        elif not self.tab.handle(action):
            self.statusBar().showMessage(f"unknown action {action}", 3000)

    # --- errors and dialogs ------------------------------------------------------------------------
    def show_error(self, title: str, text: str) -> None:
        self.statusBar().showMessage(f"error: {text.splitlines()[0] if text else title}"[:300], 10000)
        self.error = dialogs.error_box(self, title, text)

    def show_cheat_sheet(self) -> None:
        self.dialog = dialogs.CheatSheet(self)
        self.dialog.open()

    def show_stats(self) -> None:
        from xscreen.audit import AuditLog

        with AuditLog(self.audit_path) as log:
            self.dialog = dialogs.StatsDialog(log.stats(), log.verify(), str(log.path), self)
        self.dialog.open()

    def closeEvent(self, event) -> None:
        self.idle_timer.stop()
        QApplication.instance().removeEventFilter(self._activity)
        self.runner.shutdown(10000)
        if getattr(self, "lookup", None) is not None:
            self.lookup.shutdown(10000)
        self.settings.sync()
        super().closeEvent(event)


def run_app(paths_in: list[str] | None = None, model: str | None = None, inbox: str | None = None,
            settle: float = 2.0) -> int:
    """Open the main window (optionally a scan or folder and a model; with ``inbox``, the arrivals
    queue of a lane: gui/arrivals_dock.py) and run the event loop."""
    from pyqtgraph.util.garbage_collector import GarbageCollector

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("xscreen")
    # Python's cycle collector runs in whichever thread happens to allocate; a Qt widget in a garbage
    # cycle then dies in a worker thread (scoring, training), which deadlocks or aborts (seen in the
    # GUI tests: a QMenu destroyed inside torch.save on the training thread). Collect on a GUI-thread
    # timer instead, with automatic collection off.
    collector = GarbageCollector(interval=1.0)  # noqa: F841 - kept alive for the event loop
    win = MainWindow()
    if model:
        win.set_model(str(Path(model).resolve()))
    win.show()
    for p in paths_in or []:
        win.open_path(p)
    if inbox:
        from xscreen.gui.arrivals_dock import attach_inbox

        win.lane = attach_inbox(win, inbox, settle=settle)
    elif not paths_in and paths.samples_dir().is_dir():
        win.open_path(paths.samples_dir())  # first run: the shipped sample bags, first one on screen
    try:
        return int(app.exec())
    finally:
        collector.timer.stop()
        gc.enable()  # GarbageCollector turned automatic collection off for the event loop only
