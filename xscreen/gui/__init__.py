"""The desktop GUI: the only package that imports PySide6/pyqtgraph (in its Qt modules).

``shortcuts``, ``state``, ``session`` and ``probe`` are plain Python so their logic is tested
without a display; ``app``, ``scan_view``, ``screening_tab``, ``panels``, ``dialogs`` and
``worker`` are the Qt side.
"""
