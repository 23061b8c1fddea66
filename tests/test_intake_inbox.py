"""Inbox rules and the lane loop: a slow writer is never read half-way, a restart neither loses nor
repeats, done names are keyed by content, one consumer per inbox. Short settle times; no timing
assertions (the outcomes are which bags were taken, when relative to the writer, and how often)."""
import hashlib
import io
import json
import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from xscreen.atomic import atomic_write_text
from xscreen.config import ScreenConfig
from xscreen.intake import Inbox, IntakeError, IntakeIdle, IntakeResult, Record, Rules, run_lane, screen_arrival
from xscreen.intake.rules import format_complete
from xscreen.scan import load_scan, save_h5, save_tiff_pair
from xscreen.scoring import Scorer

from screen_fixtures import dual_scan, tiny_model, with_calibration

DICOS = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "dicos_samples" / "SimpleProcessingDX.dcs"


def _h5_bytes(tmp_path: Path, seed: int) -> bytes:
    p = tmp_path / f"src{seed}.h5"
    save_h5(dual_scan(70, 90, seed=seed, scan_id=f"bag{seed}"), p)
    return p.read_bytes()


def _slow_write(target: Path, data: bytes, chunks: int, gap: float, done: threading.Event) -> None:
    with open(target, "wb") as fh:
        for i in range(chunks):
            if i:
                time.sleep(gap)
            fh.write(data[i * len(data) // chunks:(i + 1) * len(data) // chunks])
            fh.flush()
        done.set()  # before close: a reader that saw the last byte must find the flag set


def _wait_ready(inbox: Inbox, writer_done: threading.Event, seconds: float = 60.0):
    """Poll like the lane does; record whether the writer had finished each time a bag was ready."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        finished_before = writer_done.is_set()
        found = inbox.ready()
        if found:
            return found, finished_before
        time.sleep(0.01)
    raise AssertionError("nothing became ready")


@pytest.mark.parametrize("name, settle, gap", [
    ("slow.h5", 0.4, 0.05),  # gaps shorter than the settle time: the settle rule holds it back
    ("slow.h5", 0.02, 0.15),  # gaps longer than settle: HDF5's own structure is incomplete
])
def test_slow_chunked_writer_is_never_taken_partially(tmp_path, name, settle, gap):
    data = _h5_bytes(tmp_path, 1)
    inbox = Inbox(tmp_path / "in", rules=Rules(settle=settle, corrupt_after=60))
    with inbox:
        done = threading.Event()
        t = threading.Thread(target=_slow_write, args=(inbox.folder / name, data, 12, gap, done))
        t.start()
        found, finished_before = _wait_ready(inbox, done)
        t.join()
    assert finished_before, "a bag was reported ready while its writer was still writing"
    assert len(found) == 1 and found[0].key == hashlib.sha256(data + b"\0").hexdigest()
    assert load_scan(found[0].path, isolated=False).scan_id == "bag1"


def test_truncated_dicos_and_png_are_incomplete(tmp_path, realdata):
    from PIL import Image

    full = DICOS.read_bytes()
    (tmp_path / "cut.dcs").write_bytes(full[: len(full) - 1000])
    (tmp_path / "whole.dcs").write_bytes(full)
    buf = io.BytesIO()
    Image.fromarray(np.full((80, 80), 200, np.uint8)).save(buf, format="PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[:-12])
    (tmp_path / "whole.png").write_bytes(buf.getvalue())
    assert [format_complete(tmp_path / n) for n in ("cut.dcs", "whole.dcs", "cut.png", "whole.png")] == \
        [False, True, False, True]


def test_part_names_and_lone_pair_halves_wait(tmp_path):
    scan = dual_scan(70, 90, seed=2, scan_id="pair")
    inbox = Inbox(tmp_path / "in", rules=Rules(settle=0))
    with inbox:
        save_h5(scan, tmp_path / "x.h5")
        shutil.copy(tmp_path / "x.h5", inbox.folder / "a.h5.part")
        high, low = save_tiff_pair(scan, tmp_path / "p")
        shutil.copy(high, inbox.folder / high.name)
        assert inbox.ready() == []  # a .part file and a half pair are not bags
        shutil.copy(low, inbox.folder / low.name)
        (inbox.folder / "a.h5.part").rename(inbox.folder / "a.h5")
        found = inbox.ready()
    assert sorted(len(a.files) for a in found) == [1, 2]
    pair = next(a for a in found if len(a.files) == 2)
    assert pair.path.name == high.name and load_scan(pair.path, isolated=False).kind == "dual"


def test_a_half_pair_is_handed_over_only_after_corrupt_after(tmp_path):
    scan = dual_scan(70, 90, seed=3, scan_id="half")
    high, _ = save_tiff_pair(scan, tmp_path / "h")
    now = [0.0]
    inbox = Inbox(tmp_path / "in", rules=Rules(settle=0, corrupt_after=5))
    inbox.tracker.clock = lambda: now[0]
    with inbox:
        shutil.copy(high, inbox.folder / high.name)
        assert inbox.ready() == []
        now[0] = 4.0
        assert inbox.ready() == []
        now[0] = 6.0  # the twin never came: the reader is to name the missing half
        (lone,) = inbox.ready()
    assert lone.files == (inbox.folder / high.name,)


def test_second_consumer_is_refused(tmp_path):
    with Inbox(tmp_path / "in"):
        with pytest.raises(IntakeError, match="another process"):
            Inbox(tmp_path / "in").open()
    Inbox(tmp_path / "in").open()  # free again once the first closed


def test_lane_screens_in_arrival_order_and_keys_done_by_content(tmp_path):
    from PIL import Image

    scorers = {"dual": Scorer(with_calibration(tiny_model("dual"), 0.5, 0.6), device="cpu", precision="fp32")}
    inbox = Inbox(tmp_path / "in", rules=Rules(settle=0))
    with inbox:
        for i, name in enumerate(["z.h5", "a.h5"]):  # z arrives first: order is arrival, not name
            (inbox.folder / name).write_bytes(_h5_bytes(tmp_path, 10 + i))
            inbox.ready()
            time.sleep(0.02)
        Image.fromarray(np.full((80, 80), 200, np.uint8)).save(inbox.folder / "picture.png")
        items = [i for i in run_lane(inbox, scorers, ScreenConfig(stride=16), poll=0.01, max_bags=3)]
    results = [i for i in items if isinstance(i, IntakeResult)]
    assert [r.record.names[0] for r in results][:2] == ["z.h5", "a.h5"]
    statuses = {r.record.names[0]: r.record.status for r in results}
    assert statuses == {"z.h5": "screened", "a.h5": "screened", "picture.png": "stored"}  # no gray model
    assert "no model for gray scans" in results[2].record.message
    assert results[0].screening.scan_id == "bag10"
    assert not list(inbox.folder.glob("*.h5")) and not list(inbox.folder.glob("*.png"))
    for r in results:
        assert r.done_path.name.startswith(r.arrival.key[:16]) and r.done_path.is_file()
        assert inbox.record_for(r.arrival.key).status == r.record.status


def test_crash_before_record_rescreens_and_after_record_only_moves(tmp_path):
    """The two crash windows of one bag: on_result dies (before the record) -> the bag stays in the
    inbox and the next start screens it; the record is written but the move never happens -> the
    next start moves it without a second result."""
    scorers = {"dual": Scorer(with_calibration(tiny_model("dual"), 0.5, 0.6), device="cpu", precision="fp32")}
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "one.h5").write_bytes(_h5_bytes(tmp_path, 20))
    (folder / "two.h5").write_bytes(_h5_bytes(tmp_path, 21))

    def crash(arrival, result):
        raise KeyboardInterrupt  # an interrupted process, not an error of the bag

    with Inbox(folder, rules=Rules(settle=0)) as inbox:
        one = next(a for a in inbox.ready() if a.path.name == "one.h5")
        with pytest.raises(KeyboardInterrupt):
            screen_arrival(inbox, one, scorers, ScreenConfig(stride=16), on_result=crash)
        assert (folder / "one.h5").is_file() and inbox.record_for(one.key) is None
        two = next(a for a in inbox.ready() if a.path.name == "two.h5")
        # finish() = record, then move: a process dying between the two leaves the record only
        atomic_write_text(inbox.record_path(two.key),
                          json.dumps(asdict(Record(two.key, ["two.h5"], 0, 0, "screened"))))

    seen = []
    with Inbox(folder, rules=Rules(settle=0)) as inbox:  # the restart
        for item in run_lane(inbox, scorers, ScreenConfig(stride=16), poll=0.01):
            if isinstance(item, IntakeIdle):
                break
            seen.append(item.record.names[0])
    assert seen == ["one.h5"]  # screened once now; two.h5 was already recorded: moved, not repeated
    assert not list(folder.glob("*.h5"))
    assert len(list((folder / "done").glob("*.h5"))) == 2


def test_retention_prunes_old_done_files(tmp_path):
    import os

    inbox = Inbox(tmp_path / "in", retention=3600)
    with inbox:
        old, new = inbox.done / "old.h5", inbox.done / "new.h5"
        old.write_bytes(b"x")
        new.write_bytes(b"y")
        os.utime(old, (time.time() - 7200, time.time() - 7200))
        assert inbox.prune() == 1
    assert not old.exists() and new.exists()
