"""Who is at the console (a mixin of ``MainWindow``, and its sign-in page): sign-in at every
launch, the signed-in name always in the toolbar, sign-out / switch, and a lock after the idle time
the settings define (``session/idle_lock_minutes``). No operator name is stored, so the next person's
decisions are never credited to the last one. There are no passwords: unlocking is signing in again,
by name, with the field left empty so nobody continues as someone else by pressing Enter."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (QApplication, QLabel, QLineEdit, QPushButton, QSizePolicy, QToolBar,
                               QVBoxLayout, QWidget)

from xscreen.gui import session

IDLE_CHECK_MS = 1000
_INPUT = {QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.Wheel}


class SignInPage(QWidget):
    """Shown instead of the tabs while nobody is signed in: the bag and the decisions stay hidden."""

    signed_in = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        title = QLabel("xscreen - sign in")
        title.setStyleSheet("font-size: 22px; font-weight: bold;")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.name = QLineEdit()
        self.name.setPlaceholderText("your name (recorded with each decision)")
        self.name.setMaxLength(80)
        self.button = QPushButton("Sign in")
        box = QWidget()
        box.setFixedWidth(460)
        col = QVBoxLayout(box)
        col.setSpacing(12)
        for w in (title, self.message, self.name, self.button):
            col.addWidget(w)
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        lay.addWidget(box, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addStretch(2)
        self.name.textChanged.connect(self._on_name_text_changed)
        self.name.returnPressed.connect(self._on_button_clicked)
        self.button.clicked.connect(self._on_button_clicked)
        self._on_name_text_changed("")

    def set_message(self, text: str) -> None:
        self.message.setText(text)

    def _on_name_text_changed(self, text: str) -> None:
        self.button.setEnabled(bool(text.strip()))

    def _on_button_clicked(self) -> None:
        name = self.name.text().strip()
        if name:
            self.name.clear()
            self.signed_in.emit(name)


class ActivityFilter(QObject):
    """Any key or mouse input anywhere in the application restarts the idle clock."""

    def __init__(self, touch, parent: QObject):
        super().__init__(parent)
        self._touch = touch

    def eventFilter(self, obj, event) -> bool:
        if event.type() in _INPUT:
            self._touch()
        return False


class OperatorHandling:
    """Expects MainWindow's ``stack``, ``tabs``, ``timer``, ``tab`` and ``setting``."""

    def _build_operator(self, bar: QToolBar) -> None:
        self.operator = session.OperatorSession(60.0 * self.setting("session/idle_lock_minutes"))
        self.sign_in_page = SignInPage()
        self.sign_in_page.signed_in.connect(self.sign_in)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.operator_label = QLabel()
        bar.addWidget(spacer)
        bar.addWidget(self.operator_label)
        bar.addAction(self.actions_by_id["operator.change"])
        self.actions_by_id["operator.change"].setIconText("Sign out")
        self._activity = ActivityFilter(self.operator.touch, self)
        QApplication.instance().installEventFilter(self._activity)
        self.idle_timer = QTimer(self)
        self.idle_timer.setInterval(IDLE_CHECK_MS)
        self.idle_timer.timeout.connect(self._on_idle_timer_timeout)
        self.idle_timer.start()

    def sign_in(self, name: str) -> str:
        """Start ``name``'s session; the bag on screen is timed from now (their decision time)."""
        name = self.operator.sign_in(name)
        self.stack.setCurrentWidget(self.tabs)
        self._show_operator()
        if self.tab.outcome is not None:
            self.timer.start(self.tab.outcome.path)
        self.tab.setFocus()
        self.statusBar().showMessage(f"signed in: {name}", 3000)
        return name

    def sign_out(self, message: str = "Signed out. Sign in to review bags.") -> None:
        """Hide the bag behind the sign-in page; any pending amendment question is dropped."""
        box = getattr(self, "amend_box", None)
        if box is not None:
            box.reject()
            self.amend_box = None
        self.operator.sign_out()
        self.cursor_label.setText("")  # no readout of a hidden bag beside the sign-in page
        self.statusBar().clearMessage()  # nor the last operator's messages
        self.sign_in_page.set_message(message)
        self.stack.setCurrentWidget(self.sign_in_page)
        self.sign_in_page.name.setFocus()
        self._show_operator()

    def _show_operator(self) -> None:
        name = self.operator.name
        self.operator_label.setText(f"  Operator: {name}  " if name else "  not signed in  ")
        self.operator_label.setStyleSheet("font-weight: bold; padding: 2px 6px;" +
                                          ("" if name else " color: white; background: #c62828;"))
        self.setWindowTitle(f"xscreen - X-ray baggage screening - {name or 'not signed in'}")
        self.update_actions()

    def _on_idle_timer_timeout(self) -> None:
        if self.operator.idle_expired():
            minutes = self.operator.idle_seconds / 60
            self.sign_out(f"Locked after {minutes:g} min without input (was: {self.operator.name}). "
                          "Sign in to continue.")
