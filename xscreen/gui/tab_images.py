"""The screening tab's image layer (a mixin of ``ScreeningTab``): the scan, its reconstruction and
residual as displayed, rendered on a worker thread when a view of a large scan is not ready yet."""
from __future__ import annotations

import numpy as np

from xscreen.gui import probe


class ImageLayers:
    """Expects ScreeningTab's ``state``, ``outcome``, ``screening``, ``renderer``, ``recon_renderer``,
    ``view``, ``display``, ``progress``, ``renderer_jobs`` and ``_redraw``."""

    def _display(self, renderer: probe.Renderer) -> np.ndarray:
        s = self.state
        return renderer.image(s.view, s.window, s.level, s.gamma, s.edge)

    def current_image(self) -> np.ndarray:
        """(H, W, 3) uint8 shown in the main view for the current layer."""
        layer = self.state.layer if self.screening is not None else "image"
        if layer == "reconstruction" and self.recon_renderer is not None:
            return self._display(self.recon_renderer)
        if layer == "residual":
            return self.residual_image()
        return self._display(self.renderer)

    def residual_image(self) -> np.ndarray:
        if self._residual_rgb is None:
            self._residual_rgb = probe.residual_rgb(self.screening.residual, self.residual_scale())
        return self._residual_rgb

    def residual_scale(self) -> float:
        if self._residual_scale is None:
            self._residual_scale = probe.residual_scale(self.screening.residual)
        return self._residual_scale

    def _draw_image(self) -> None:
        if self._render_in_background():
            return
        self.view.set_image(self.current_image())
        side = self.state.layer == "side" and self.recon_renderer is not None
        self.view.set_side(self._display(self.recon_renderer) if side else None)
        if self.renderer is not None:
            self.display.set_histogram(*self.renderer.histogram(self.state.view))

    def _render_in_background(self) -> bool:
        """A view not yet rendered on a large scan is rendered on a worker thread (seconds for
        8000x3000) while the old picture stays up; True when that was started."""
        view = self.state.view
        todo = [r for r in (self.renderer, self.recon_renderer) if r is not None and not r.has(view)]
        if not todo or self.outcome.scan.width * self.outcome.scan.height <= probe.LAYER_PIXELS:
            return False
        self.progress.set_busy(f"rendering {view}")

        def job():
            for r in todo:
                r.prepare(view)
                yield view
        self.renderer_jobs.start(f"{self.outcome.path}|{view}", job)
        return True

    def _on_render_done(self, key: str, view: object) -> None:
        self.progress.set_busy(None)
        if self.outcome is not None and key == f"{self.outcome.path}|{self.state.view}":
            self._redraw(image=True, layer=False, regions=False)
