"""``xscreen watch`` and ``xscreen receive`` as processes: a watcher killed (SIGKILL) mid-run and
started again has screened every bag exactly once; the receiver answers C-ECHO on an ephemeral
port and stops on SIGINT; bad arguments are one-line errors."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from xscreen.cli import main
from xscreen.scan import save_h5

from screen_fixtures import dual_scan, save_tiny_model

def _env() -> dict:
    """Read at call time: the test session's settings (XSCREEN_HOME, caches) reach the child."""
    return {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


def _watch(inbox, out, model, *extra):
    return subprocess.Popen([sys.executable, "-m", "xscreen", "watch", str(inbox), "--out", str(out),
                             "--model", str(model), "--settle", "0", "--poll", "0.05", "--stride", "16",
                             "--device", "cpu", "--precision", "fp32", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def test_watch_killed_and_restarted_screens_every_bag_once(tmp_path):
    from xscreen.checkpoint import update_model_meta
    from xscreen.config import Calibration

    model = save_tiny_model(tmp_path / "tiny.xsm")
    update_model_meta(model, calibration=Calibration(0.5, 0.01, 0.6, 0.05))
    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    names = [f"bag{i}.h5" for i in range(6)]
    for i, name in enumerate(names):
        save_h5(dual_scan(70, 90, seed=i, scan_id=name), inbox / name)
    records = inbox / "done" / ".records"
    first = _watch(inbox, out, model)
    end = time.monotonic() + 120
    while time.monotonic() < end and len(list(records.glob("*.json")) if records.is_dir() else []) < 2:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)  # no clean-up of any kind
    out1, _ = first.communicate(timeout=60)
    assert 2 <= len(list(records.glob("*.json"))) < 6, "the kill should land mid-run"
    second = _watch(inbox, out, model, "--exit-when-idle")
    out2, err2 = second.communicate(timeout=300)
    assert second.returncode == 0, err2
    printed = re.findall(r"bag\d\.h5", out1 + out2)
    assert len(printed) == len(set(printed))  # nothing reported twice
    docs = [json.loads(p.read_text()) for p in records.glob("*.json") if not p.name.startswith(".")]
    assert sorted(n for d in docs for n in d["names"]) == names  # every bag recorded, once
    assert all(d["status"] == "screened" for d in docs)
    assert len(list(out.glob("*.json"))) == 6 and not list(inbox.glob("*.h5"))
    assert len(list((inbox / "done").glob("*.h5"))) == 6


def test_second_watcher_on_the_same_inbox_is_refused(tmp_path, capsys):
    from xscreen.intake import Inbox

    with Inbox(tmp_path / "in"):
        rc = main(["watch", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--exit-when-idle"])
    assert rc == 2 and "another process" in capsys.readouterr().err


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_receive_answers_echo_and_stops_cleanly(tmp_path, stop):
    pytest.importorskip("pynetdicom")
    from pynetdicom import AE

    proc = subprocess.Popen([sys.executable, "-m", "xscreen", "receive", "--inbox", str(tmp_path / "in"),
                             "--port", "0", "--bind", "127.0.0.1", "--ae-title", "LANE1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        line = proc.stderr.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        ae = AE(ae_title="SCANNER1")
        ae.add_requested_context("1.2.840.10008.1.1")
        assoc = ae.associate("127.0.0.1", port, ae_title="LANE1")
        assert assoc.is_established and int(assoc.send_c_echo().Status) == 0
        assoc.release()
    finally:
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "receiver stopped" in err and (tmp_path / "in").is_dir()


def test_receive_bad_tls_arguments_are_an_error(tmp_path, capsys):
    rc = main(["receive", "--inbox", str(tmp_path / "in"), "--port", "0", "--tls-key", "k.pem"])
    assert rc == 2 and "--tls-cert" in capsys.readouterr().err
