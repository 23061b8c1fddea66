"""A trained model file appears at its output path only with its final calibration (issue 32 item
11): a kill between training's provisional, patch-derived calibration and the held-out bags' fit
left a "legacy-derived" model there. Tiny network, one epoch, four held-out scans."""
from pathlib import Path

import pytest

from screen_fixtures import dual_scan
from xscreen.checkpoint import load_model
from xscreen.config import NetConfig, PatchConfig, RunConfig, TrainConfig
from xscreen.scan import save_h5
from xscreen.train.finish import TrainResult


class Killed(BaseException):
    """Stands for SIGKILL / Ctrl-C arriving while the held-out bags are being screened."""


def _run(tmp_path: Path) -> RunConfig:
    benign, val = tmp_path / "benign", tmp_path / "val"
    for folder, seeds in ((benign, range(4)), (val, range(10, 14))):
        folder.mkdir()
        for s in seeds:
            save_h5(dual_scan(96, 96 + 8 * s % 64, seed=s, box=(8, 8, 60, 50), scan_id=f"b{s}"), folder / f"b{s}.h5")
    return RunConfig(benign=(str(benign),), val=(str(val),), output=str(tmp_path / "out" / "m.xsm"),
                     net=NetConfig(size=32, channels=2, ngf=4, ndf=4, nz=8), patch=PatchConfig(size=32, stride=16),
                     train=TrainConfig(epochs=1, batch_size=8, precision="fp32", device="cpu", log_every=100))


def test_a_kill_during_the_final_calibration_leaves_no_model_at_the_output(tmp_path, monkeypatch):
    import xscreen.evaluate.recalibrate as recalibrate
    from xscreen.train.run import train_model

    run, work = _run(tmp_path), tmp_path / "work"
    real = recalibrate.calibrate_on_scans

    def killed_midway(*args, **kwargs):
        for i, item in enumerate(real(*args, **kwargs)):
            if i == 2:
                raise Killed
            yield item

    monkeypatch.setattr(recalibrate, "calibrate_on_scans", killed_midway)
    with pytest.raises(Killed):
        list(train_model(run, work))
    assert not Path(run.output).exists()  # before: a model calibrated on patch scores alone stood here
    assert not list(Path(run.output).parent.glob("*.xsm"))
    # the resumed run finishes the job: the file appears once, with the held-out bags' calibration
    monkeypatch.setattr(recalibrate, "calibrate_on_scans", real)
    result = list(train_model(run, work, resume=True))[-1]
    assert isinstance(result, TrainResult) and result.model_path == Path(run.output)
    loaded = load_model(run.output)
    cal = loaded.meta.calibration
    assert cal.alarm_rule == "area" and cal.n_scans == 4 and cal == result.calibration
    assert loaded.meta.card.name == "m" and result.model_id == f"m-{loaded.checksum[:12]}"
    assert not list(work.glob("*.xsm"))  # the staged copy was moved, not left behind
