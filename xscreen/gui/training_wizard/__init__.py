"""The training wizard (Qt): benign folder -> calibrated model in the screening tab.

Named ``training_wizard`` rather than ``wizard`` so it is not mistaken for the Qt-free core
``xscreen.wizard`` whose rules and jobs it displays. Imports point one way: ``window`` -> the page
modules -> ``base``.
"""
from xscreen.gui.training_wizard.window import TrainingWizard, create_training_widget

__all__ = ["TrainingWizard", "create_training_widget"]
