"""Leftovers of a killed process (issue 16 item 9): our stale temporaries are removed by the next
write into the folder, live or foreign files never are; lists of models skip temporaries; a model
file appears at its output path only once calibrated."""
import os
import subprocess
import sys
import time

import pytest

from xscreen.atomic import STALE_SECONDS, atomic_write_text, is_temp_name, sweep_stale


def _aged(path, seconds=STALE_SECONDS + 60):
    path.write_bytes(b"half")
    old = time.time() - seconds
    os.utime(path, (old, old))
    return path


def test_next_write_removes_our_stale_temporaries_only(tmp_path):
    stale = [_aged(tmp_path / n) for n in (".state.xstmp-ab12cd34.pt", ".patches.xstmp-zz_9y8x7.h5",
                                            ".m.xstmp-0a1b2c3d.xsm", ".state.k2j3h4g5.pt")]  # last: old-style
    fresh = tmp_path / ".m.xstmp-11112222.xsm"
    fresh.write_bytes(b"being written")
    foreign = [_aged(tmp_path / n) for n in (".bashrc", ".notes.k2j3h4g5.txt", "state.pt.bak",
                                             ".other.k2j3h4g5.pt")]  # old-style, but not this target
    atomic_write_text(tmp_path / "state.pt", "new")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([fresh.name, "state.pt"] + [p.name for p in foreign])
    assert all(not p.exists() for p in stale)


def test_a_temporary_locked_by_a_live_writer_is_kept(tmp_path):
    path = _aged(tmp_path / ".m.xstmp-ab12cd34.xsm")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR); fcntl.lockf(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert sweep_stale(tmp_path) == [] and path.exists()
    finally:
        holder.kill()
        holder.wait()
    assert sweep_stale(tmp_path) == [path] and not path.exists()  # its writer is gone now


def test_a_killed_writer_leaves_a_hidden_marked_temporary(tmp_path):
    code = ("import os, signal\nfrom xscreen.atomic import atomic_path\n"
            f"with atomic_path({str(tmp_path / 'model.xsm')!r}) as tmp:\n"
            "    tmp.write_bytes(b'half')\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    (orphan,) = tmp_path.iterdir()
    assert is_temp_name(orphan.name) and orphan.name.startswith(".model.") and orphan.suffix == ".xsm"
    os.utime(orphan, (0, 0))
    atomic_write_text(tmp_path / "other.txt", "x")  # any later write into the folder sweeps it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt"]


def test_model_lists_skip_temporaries(tmp_path, monkeypatch):
    from xscreen import paths
    from xscreen.gui.probe import list_models

    for name in ("a.xsm", ".a.xstmp-ab12cd34.xsm", ".b.k2j3h4g5.xsm"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_models([tmp_path])] == ["a.xsm"]
    monkeypatch.setattr(paths, "models_dir", lambda: tmp_path)
    assert paths.default_model().name == "a.xsm"


def test_model_appears_only_once_calibrated(tmp_path, monkeypatch):
    from xscreen.train import finish as finish_module
    from test_train import _fit, _run

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # stands in for a kill between writing and calibrating

    monkeypatch.setattr(finish_module, "calibrate_file", killed)
    with pytest.raises(KeyboardInterrupt):
        list(_fit(tmp_path, _run(epochs=1)))
    assert not (tmp_path / "m.xsm").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".xsm")]
    monkeypatch.undo()
    list(_fit(tmp_path, _run(epochs=1), resume=True))
    from xscreen.checkpoint import read_meta
    assert read_meta(tmp_path / "m.xsm")[0].calibration is not None
