"""The training wizard's core, without Qt (the GUI is ``xscreen.gui.training_wizard``).

``logic``: scan inventory, patch estimates, page gates, run config (re-exported here). ``run``: the
jobs behind the wizard's buttons (warm-up timing, live reconstructions, recalibration, saving); it
imports torch, so it is not imported here - ``from xscreen.wizard.run import ...``.
"""
from xscreen.wizard.logic import (ESTIMATE_SAMPLE, MIN_PATCHES, MIN_SCANS, PAGES, PATCH_SIZES, PRESETS, Inventory,
                                  ScanInfo, WizardState, apply_preset, count_patches, data_kind, estimate_patches,
                                  expand_inputs, model_net, model_preprocess, page_errors, safe_model_filename, take_inventory,
                                  tiling_preview, to_run_config,
                                  with_inventory)
# The configs that ``xscreen.wizard`` has always re-exported (the GUI builds them as ``wz.PatchConfig``).
from xscreen.wizard.logic import NetConfig, PatchConfig, Preprocess, RunConfig, TrainConfig

__all__ = [
    "ESTIMATE_SAMPLE", "MIN_PATCHES", "MIN_SCANS", "PAGES", "PATCH_SIZES", "PRESETS", "Inventory", "ScanInfo",
    "WizardState", "apply_preset", "count_patches", "data_kind", "estimate_patches", "expand_inputs", "model_net",
    "model_preprocess",
    "page_errors", "safe_model_filename", "take_inventory", "tiling_preview", "to_run_config", "with_inventory",
    "NetConfig", "PatchConfig", "Preprocess", "RunConfig", "TrainConfig",
]
