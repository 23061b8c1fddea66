"""Decisions (a mixin of ``MainWindow``): only on the screening tab with a scored bag on screen and
someone signed in; the decision standing on each bag shown in the queue and on the bag; a key
that repeats the standing decision writes nothing, a different one asks, then writes an amendment
linked to the row it replaces."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from xscreen.audit import machine_fields
from xscreen.drift import screening_drift
from xscreen.gui import session
from xscreen.gui.worker import JobRunner


class DecisionHandling:
    """Expects MainWindow's ``operator``, ``queue``, ``tab``, ``tabs``, ``stack``, ``timer``, ``audit_path``."""

    amend_box: QMessageBox | None = None
    min_view_seconds = session.MIN_VIEW_SECONDS
    failed_path: str | None = None  # the bag on screen could not be read or scored (files.py sets it)

    def bag_on_screen(self) -> str | None:
        """Path of the bag the decision keys act on: a shown scan, or one that failed to open."""
        return self.tab.outcome.path if self.tab.outcome is not None else self.failed_path

    def can_decide(self, action: str = "decide.clear") -> bool:
        """Verdicts need a scored bag; 'unreadable' a bag that could not be read or scored."""
        shown = (self.operator.signed_in and self.stack.currentWidget() is self.tabs
                 and self.tabs.currentWidget() is self.tab)
        if action == "decide.unreadable":
            return shown and self.tab.outcome is None and self.failed_path is not None
        return shown and self.tab.screening is not None

    def decide(self, action: str) -> int | None:
        """The operator's key or button for the bag on screen; returns the audit row id written."""
        if not self.can_decide(action):
            self.statusBar().showMessage("decisions are taken on the screening tab, signed in, with a scored "
                                         "bag on screen (X: a bag that could not be read)", 5000)
            return None
        shown_for = self.timer.elapsed()
        if shown_for is not None and shown_for < self.min_view_seconds:
            self.statusBar().showMessage(f"bag on screen for {shown_for:.1f} s only: decision key ignored", 5000)
            return None
        current = self.queue.decision(self.bag_on_screen())
        plan = session.plan_decision(action, current)
        if plan == "same":
            self.statusBar().showMessage(f"already recorded: {current.describe()} - nothing written", 5000)
            return None
        if plan == "amend":
            self._ask_amend(action, current)
            return None
        return self._record(action, None)

    def _ask_amend(self, action: str, current: session.BagDecision) -> None:
        new = session.DECISIONS[action].upper()
        box = QMessageBox(QMessageBox.Icon.Question, "Amend decision?",
                          f"This bag stands as {current.describe()}.\n\nAmend it to {new}? The amendment "
                          f"is a new audit row linked to #{current.row}.", parent=self)
        amend = box.addButton(f"&Amend to {new}", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)  # Enter never amends by accident
        box.setWindowModality(Qt.WindowModality.WindowModal)  # no decision key fires behind it
        path = self.bag_on_screen()
        box.buttonClicked.connect(lambda b: self._on_amend_box_clicked(b is amend, action, path, current))
        box.finished.connect(lambda _result: self._on_amend_box_finished(box))
        self.amend_box = box
        box.open()

    def _on_amend_box_finished(self, box: QMessageBox) -> None:
        if self.amend_box is box:  # closed without a button (window close, sign-out)
            self.amend_box = None

    def _on_amend_box_clicked(self, accepted: bool, action: str, path: str, current) -> None:
        self.amend_box = None
        still = self.bag_on_screen() == path and self.queue.decision(path) == current
        if accepted and still and self.can_decide(action):
            self._record(action, current.row)

    def _record(self, action: str, amends: int | None) -> int | None:
        from xscreen.audit import AlreadyDecided, AuditLog

        path, s = self.bag_on_screen(), self.tab.screening
        decision = self._unreadable(amends) if action == "decide.unreadable" else self._verdict(action, amends)
        try:
            with AuditLog(self.audit_path) as log:
                row = log.record(decision, exclusive=True)
                standing = session.bag_decision(log.rows_for(decision.file_sha256), decision.scan_id)
        except (AlreadyDecided, ValueError) as exc:  # another console decided this bag meanwhile
            self.load_bag_decision()
            self.show_error("Decision NOT recorded", f"{exc}\nThe bag's decision now shown is the standing one.")
            return None
        except Exception as exc:  # AuditError: say so loudly - a lost decision must be noticed
            self.show_error("Decision NOT recorded", str(exc))
            return None
        self.queue.mark(path, standing)
        self.show_decisions()
        link = f", amends #{amends}" if amends is not None else ""
        drift = screening_drift(self.audit_path, s) if s is not None else ""  # issue 13: alarm rate off target
        self.statusBar().showMessage(f"recorded #{row}: {decision.decision} by {decision.operator}{link} "
                                     f"({decision.decision_seconds:.1f} s)" + (f"  -  {drift}" if drift else ""),
                                     30000 if drift else 5000)
        self.last_decision = row
        if amends is None:  # an amendment keeps the bag the operator went back to
            self.advance_to_undecided()
        return row

    def advance_to_undecided(self) -> None:
        """After a decision: the next bag nobody has decided yet (never one already decided)."""
        nxt = self.queue.next_undecided()
        if nxt is None:
            self.statusBar().showMessage(f"all {len(self.queue.paths)} bags of the queue are decided", 30000)
        elif self.queue.go(nxt) is not None:
            self.request(self.queue.current)

    def _verdict(self, action: str, amends: int | None):
        """clear / suspect / unresolved on the scored bag: the calibrated alarm threshold, the live
        one if the operator moved it, the regions drawn and what the machine said."""
        outcome, s, scale = self.tab.outcome, self.tab.screening, self.tab.scale
        decision = session.make_decision(
            action, operator=self.operator.name, scan_id=outcome.scan.scan_id, file_sha256=outcome.sha256,
            model_id=s.model_id, threshold=s.scan_threshold,
            live_threshold=scale.live * s.scan_threshold if scale.moved else None,
            regions_shown=self.tab.regions_shown(), seconds=self.timer.elapsed() or 0.0, amends=amends)
        return dataclasses.replace(decision, **machine_fields(s))  # threshold version, bag score, alarm

    def _unreadable(self, amends: int | None):
        """'unreadable -> re-scan / hand search' for a bag that could not be read or scored: no
        scan, no model verdict, no threshold; the file's hash when it can still be read."""
        from xscreen.scan import file_sha256

        path = self.failed_path
        try:
            sha = file_sha256(path)
        except Exception:  # gone or unreadable: the row names the file, the hash stays empty
            sha = ""
        return session.make_decision("decide.unreadable", operator=self.operator.name, scan_id=Path(path).name,
                                     file_sha256=sha, model_id="", threshold=0.0, regions_shown=[],
                                     seconds=self.timer.elapsed() or 0.0, amends=amends)

    def load_bag_decision(self) -> None:
        """The standing decision on the bag on screen, from the audit log (it may predate this session)."""
        from xscreen.audit import AuditLog

        outcome = self.tab.outcome
        if outcome is None or not outcome.sha256:
            self.show_decisions()
            return
        try:
            with AuditLog(self.audit_path) as log:
                rows = log.rows_for(outcome.sha256)
        except Exception as exc:  # shown, not fatal: the decision keys will report the same fault
            self.statusBar().showMessage(f"audit log unreadable: {exc}", 10000)
            rows = []
        if rows or outcome.path not in self.queue.decided:  # an unreadable log keeps what we know
            self.queue.mark(outcome.path, session.bag_decision(rows, outcome.scan.scan_id))
        self.show_decisions()

    def show_decisions(self) -> None:
        """Queue list and decision bar from the queue's decisions."""
        q, outcome = self.queue, self.tab.outcome
        model_id = self.tab.screening.model_id if self.tab.screening is not None else ""
        self.tab.queue_panel.set_queue([p.name for p in q.paths], [q.decision(p) for p in q.paths], q.index, model_id)
        on_screen = q.decision(self.bag_on_screen())
        note = ("This bag could not be read: X records it as unreadable (re-scan / hand search)"
                if outcome is None and self.failed_path else "No bag on screen" if outcome is None
                else "Not decided yet" if self.tab.screening is not None
                else "Decisions wait for the bag to be scored (a model must be chosen)")
        self.tab.decisions.set_decided(on_screen, note, session.disagreement(on_screen, self.tab.screening))

    def look_up_queue(self) -> None:
        """The standing decision of every bag of a newly opened queue, from the audit log on a worker
        thread (by file hash): '3/7 decided' from the start, not as the bags are visited."""
        if getattr(self, "lookup", None) is None:
            self.lookup = JobRunner(self)
            self.lookup.item.connect(self._on_lookup_item)
            self.lookup.done.connect(lambda *_: self.show_decisions())
        paths, audit, key = list(self.queue.paths), self.audit_path, f"lookup|{id(self.queue)}"
        self._lookup_key, self._lookup_seen = key, 0
        self.lookup.start(key, lambda: session.queue_decisions(paths, audit))

    def _on_lookup_item(self, key: str, item) -> None:
        if key != self._lookup_key:
            return  # a queue since replaced
        path, found = item
        known = self.queue.decision(path)
        if found is not None and (known is None or found.row > known.row):  # never older than this console's
            self.queue.mark(path, found)
        self._lookup_seen += 1
        if len(self.queue.paths) <= 50 or self._lookup_seen % 50 == 0:  # a long queue: redraw in steps
            self.show_decisions()

    def _on_queue_chosen(self, index: int) -> None:
        if index != self.queue.index and self.queue.go(index) is not None:
            self.request(self.queue.current)

