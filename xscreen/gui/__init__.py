"""The desktop GUI: the only package that imports PySide6/pyqtgraph (in its Qt modules).

Plain Python, tested without a display: ``shortcuts`` (the one key registry), ``state`` (view
state transitions, settings schema), ``session`` (operator sign-in and idle lock, bag queue with each bag's decision, decision timing,
record / repeat / amend, scoring plan) and
``probe`` (re-thresholding, layers, inspector crops, the scoring job). Qt side: ``app`` (main
window), ``files`` (its bag flow), ``deciding`` (its decisions), ``signin`` (sign-in page, idle
lock), ``screening_tab``, ``scan_view``, ``panels``, ``controls``,
``dialogs``, ``worker``; the training tab comes from ``training_wizard.create_training_widget``.
"""
