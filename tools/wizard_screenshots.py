"""Screenshots of the training wizard's train and calibrate pages for the README.

    QT_QPA_PLATFORM=offscreen python tools/wizard_screenshots.py BENIGN_DIR [EVAL_DIR] --out resources/readme
Trains a small model (ngf 16, 3 epochs, 32-px patches) on BENIGN_DIR through the real wizard.
"""
import argparse
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication


def wait(app, cond, timeout_s=1800):
    import time
    t0 = time.monotonic()
    while not cond():
        app.processEvents()
        time.sleep(0.02)
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError("wizard job did not finish")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("benign", type=Path)
    ap.add_argument("evaluation", type=Path, nargs="?")
    ap.add_argument("--out", type=Path, default=Path("resources/readme"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/wizard_shots"))
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from xscreen.gui.training_wizard import TrainingWizard

    w = TrainingWizard(workdir=args.work / "run", models_dir=args.work / "models")
    w.resize(1100, 760)
    w.show()
    w.pages["data"].add_inputs([args.benign])
    if args.evaluation:
        w.pages["data"].threat.setText(str(args.evaluation))
        w.pages["data"]._on_threat_edited()
    wait(app, lambda: w.state.inventory.scans and w.quick.running is None)
    w.next()
    p = w.pages["patches"]
    p.size.setCurrentText("32")
    wait(app, lambda: w.state.patch_estimate > 0 and w.quick.running is None)
    p.grab().save(str(args.out / "wizard_patches.png"))
    w.next()
    m = w.pages["model"]
    m.preset.setCurrentText("fast")
    m.epochs.setValue(args.epochs)
    w.next()
    t = w.pages["train"]
    t.start.click()
    wait(app, lambda: not w.state.training and w.state.trained_model is not None)
    w.grab().save(str(args.out / "wizard_train.png"))
    w.next()
    c = w.pages["calibrate"]
    wait(app, lambda: c.calibration is not None)
    if args.evaluation:
        c.evaluate.click()
        wait(app, lambda: c.evaluation is not None and w.quick.running is None)
    w.grab().save(str(args.out / "wizard_calibrate.png"))
    w.shutdown()
    print("saved", *(args.out / n for n in ("wizard_patches.png", "wizard_train.png", "wizard_calibrate.png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
