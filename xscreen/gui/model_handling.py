"""Models (a mixin of ``MainWindow``): the selector and its cards (the operator's on the side panel,
the full one on Ctrl+I), choosing a model (the bag on screen is scored with it), the scorer the
worker thread builds."""
from __future__ import annotations

from pathlib import Path

from xscreen import paths
from xscreen.gui import dialogs, probe


class ModelHandling:
    """Expects MainWindow's ``tab``, ``queue``, ``model_path``, ``extra_models``, ``_scorers``,
    ``put_setting``, ``request``, ``show_error`` and ``statusBar``."""

    def refresh_models(self) -> None:
        found = probe.list_models(paths.model_dirs(), self.extra_models)
        self.tab.models.set_models(found, self.model_path)
        self._show_card()

    def set_model(self, path: str) -> None:
        """Select a model ('' = none); the bag on screen is scored with it."""
        path = str(Path(path).resolve()) if path else ""  # the selector lists absolute paths
        if path:
            try:
                probe.describe_model(path)
            except Exception as exc:  # ModelError / OSError: name the file, keep the old model
                self.show_error("Cannot use model", str(exc))
                self.refresh_models()
                return
            if path not in self.extra_models:
                self.extra_models.append(path)
        self.model_path = path
        self.put_setting("model/path", path)
        self.refresh_models()
        if self.queue.current is not None:
            self.request(self.queue.current)

    def _show_card(self) -> None:
        """The operator's card on the side panel; the technical summary as its tooltip."""
        from xscreen.gui.model_card import operator_card

        try:
            text, tip = (operator_card(self.model_path), probe.describe_model(self.model_path)) if self.model_path \
                else ("no model: scans are shown without scoring", "")
        except Exception as exc:
            text, tip = f"cannot read model: {exc}", ""
        self.tab.models.set_card(text)
        self.tab.models.card.setToolTip(tip)

    def show_model_card(self) -> None:
        """Ctrl+I: the whole model card (the side panel shows its summary)."""
        if not self.model_path:
            self.statusBar().showMessage("no model selected", 3000)
            return
        from xscreen.gui.model_card import full_card
        try:
            text = full_card(self.model_path)
        except Exception as exc:  # ModelError / OSError: a file changed on disk since it was chosen
            self.show_error("Cannot read model", str(exc))
            return
        self.dialog = dialogs.TextDialog(f"Model card - {Path(self.model_path).name}", text, self)
        self.dialog.open()

    def scorer_factory(self):
        if not self.model_path:
            return None
        model = self.model_path

        def make():  # runs on the worker thread; one job at a time, so no lock is needed
            if model not in self._scorers:
                from xscreen.scoring import Scorer
                self._scorers[model] = Scorer(model)
            return self._scorers[model]
        return make
