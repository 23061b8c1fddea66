"""Issue 31 item 5: progress moves during an epoch shorter than ``log_every`` steps."""
import numpy as np

from xscreen.config import NetConfig, PatchConfig, RunConfig, TrainConfig
from xscreen.scan import Scan, save_scan
from xscreen.train import ProgressReport, loop
from xscreen.train.run import train_model


def _bags(folder, n=4):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        t = rng.uniform(0.05, 0.6, (2, 64, 64))
        save_scan(Scan(f"s{i}", "dual", (t * 60000).astype(np.uint16), 60000.0), folder / f"s{i}.h5")


def test_every_step_is_reported_when_steps_are_slower_than_the_report_interval(tmp_path, monkeypatch):
    _bags(tmp_path / "b")
    monkeypatch.setattr(loop, "PROGRESS_SECONDS", 0.0)  # every step "slow": each one must be reported
    run = RunConfig(benign=(str(tmp_path / "b"),), output=str(tmp_path / "m.xsm"),
                    patch=PatchConfig(size=32, stride=16), net=NetConfig(size=32, ngf=4, ndf=4),
                    train=TrainConfig(epochs=1, batch_size=8, precision="fp32", device="cpu", log_every=50))
    reports = [r for r in train_model(run, tmp_path / "work") if isinstance(r, ProgressReport)]
    steps = reports[-1].steps
    assert 1 < steps < 50  # shorter than log_every: before the fix only the last step was reported
    assert [r.step for r in reports] == list(range(1, steps + 1))
    assert all(np.isfinite(r.patches_per_s) and r.patches_per_s > 0 for r in reports)
