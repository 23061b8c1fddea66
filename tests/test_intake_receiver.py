"""The DICOS/DICOM receiver over loopback with pynetdicom's own SCU: C-ECHO, C-STORE of the DICOS
sample (stored, logged, screened by the lane), a malformed object refused while the next is stored,
the disk-full answer, AE/IP allow lists, and two energies paired into one dual scan. Ephemeral ports."""
import copy
import json
import time

import numpy as np
import pydicom
import pytest

pytest.importorskip("pynetdicom")
from pynetdicom import AE  # noqa: E402

from xscreen.config import ScreenConfig  # noqa: E402
from xscreen.intake import Inbox, Rules, run_lane  # noqa: E402
from xscreen.intake.receiver import Receiver, ReceiverConfig  # noqa: E402
from xscreen.scan import load_scan  # noqa: E402
from xscreen.scoring import Scorer  # noqa: E402

from screen_fixtures import tiny_model, with_calibration  # noqa: E402

SAMPLE = "dicos_samples/SimpleProcessingDX.dcs"


@pytest.fixture
def sample(realdata) -> pydicom.Dataset:
    return pydicom.dcmread(realdata / SAMPLE)


@pytest.fixture
def receiver(tmp_path):
    made = []

    def make(**kw):
        r = Receiver(ReceiverConfig(inbox=tmp_path / "inbox", port=0, bind="127.0.0.1", **kw))
        r.start()
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop()


def _send(port: int, datasets, calling: str = "SCANNER1", tls=None):
    """C-STORE each dataset on one association; returns the status codes (None: no association)."""
    ae = AE(ae_title=calling)
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="XSCREEN", tls_args=tls)
    if not assoc.is_established:
        return None
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def _log(r: Receiver) -> list[dict]:
    return [json.loads(line) for line in r.log_path.read_text().splitlines()]


def test_c_echo_answers(receiver):
    r = receiver()
    ae = AE(ae_title="SCANNER1")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", r.port, ae_title="XSCREEN")
    assert assoc.is_established
    assert int(assoc.send_c_echo().Status) == 0x0000
    assoc.release()


def test_loopback_store_arrives_and_is_screened(receiver, sample, tmp_path):
    r = receiver(pair_wait=0)
    assert _send(r.port, [sample]) == [0x0000]
    stored = list(r.cfg.inbox.glob("*.dcs"))
    assert len(stored) == 1 and load_scan(stored[0], isolated=False).kind == "gray"
    entry = _log(r)[-1]
    assert entry["calling_ae"] == "SCANNER1" and entry["peer"].startswith("127.0.0.1:")
    assert entry["status"] == "0x0000" and len(entry["sha256"]) == 64 and entry["stored"] == stored[0].name
    scorers = {"gray": Scorer(with_calibration(tiny_model("gray"), 0.5, 0.6), device="cpu", precision="fp32")}
    with Inbox(r.cfg.inbox, rules=Rules(settle=0)) as inbox:
        results = [i for i in run_lane(inbox, scorers, ScreenConfig(stride=16), poll=0.01, max_bags=1)]
    assert results[0].record.status == "screened" and results[0].screening.kind == "gray"
    assert results[0].screening.width == 256 and results[0].screening.height == 128


def test_jpeg_lossless_object_is_stored_and_readable(receiver, realdata):
    ds = pydicom.dcmread(realdata / "dicos_samples/SimplePresentationDX.dcs")
    assert ds.file_meta.TransferSyntaxUID.is_compressed
    r = receiver(pair_wait=0)
    assert _send(r.port, [ds]) == [0x0000]
    (stored,) = r.cfg.inbox.glob("*.dcs")
    scan = load_scan(stored)
    assert scan.kind == "gray" and scan.channels.shape == (1, 128, 256)


def test_malformed_object_fails_and_the_next_is_stored(receiver, sample):
    r = receiver(pair_wait=0)
    bad = copy.deepcopy(sample)
    bad.PixelData = bad.PixelData[:1000]  # the header still says 256 x 128 x 16 bit
    bad.SOPInstanceUID = pydicom.uid.generate_uid()
    statuses = _send(r.port, [bad, sample])
    assert statuses[0] == 0xC000 and statuses[1] == 0x0000
    log = _log(r)
    assert "truncated" in log[0]["message"] and log[1]["status"] == "0x0000"
    assert len(list(r.cfg.inbox.glob("*.dcs"))) == 1


def test_full_disk_is_out_of_resources(receiver, sample):
    r = receiver(pair_wait=0, min_free_bytes=1 << 62)  # no disk has that much free
    assert _send(r.port, [sample]) == [0xA700]
    assert "disk full" in _log(r)[-1]["message"] and not list(r.cfg.inbox.glob("*.dcs"))


def test_size_limit_is_checked_before_storing(receiver, sample):
    r = receiver(pair_wait=0, max_pixels=1000)
    assert _send(r.port, [sample]) == [0xA700]
    assert not list(r.cfg.inbox.glob("*.dcs"))


def test_allow_lists_refuse_other_callers(receiver, sample):
    r = receiver(allow_ae=("GOODSCAN",))
    assert _send(r.port, [sample], calling="EVIL") is None
    assert _send(r.port, [sample], calling="GOODSCAN") == [0x0000]
    assert [e.get("event") for e in _log(r)] == ["rejected", "c-store"] and _log(r)[0]["calling_ae"] == "EVIL"
    r2 = receiver(allow_ip=("10.0.0.0/8",))
    assert _send(r2.port, [sample]) is None
    assert _log(r2)[-1]["event"] == "refused" and _log(r2)[-1]["peer"].startswith("127.0.0.1:")


def test_two_energies_are_paired_into_one_dual_scan(receiver, sample):
    r = receiver(pair_wait=30)
    high, low = copy.deepcopy(sample), copy.deepcopy(sample)
    px = sample.pixel_array
    low.PixelData = (px // 2).astype(np.uint16).tobytes()  # the low energy is attenuated more
    for ds, kvp in ((high, 160), (low, 100)):
        ds.KVP = kvp
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
    assert _send(r.port, [low, high]) == [0x0000, 0x0000]
    pairs = list(r.cfg.inbox.glob("*.h5"))
    assert len(pairs) == 1 and not list(r.cfg.inbox.glob("*.dcs"))
    scan = load_scan(pairs[0], isolated=False)
    assert scan.kind == "dual"
    assert np.array_equal(scan.high, px) and np.array_equal(scan.low, px // 2)


def test_a_two_frame_object_is_one_dual_scan(receiver, sample):
    r = receiver(pair_wait=30)
    both = copy.deepcopy(sample)
    px = sample.pixel_array
    both.NumberOfFrames = 2
    both.PixelData = np.stack([px, px // 2]).astype(np.uint16).tobytes()
    assert _send(r.port, [both]) == [0x0000]
    (stored,) = r.cfg.inbox.glob("*.dcs")  # stored as it came; no pairing wait
    scan = load_scan(stored)
    assert scan.kind == "dual" and np.array_equal(scan.high, px) and np.array_equal(scan.low, px // 2)


def test_a_lone_energy_becomes_its_own_scan_after_the_wait(receiver, sample):
    r = receiver(pair_wait=0.2)
    assert _send(r.port, [sample]) == [0x0000]
    assert _log(r)[-1]["message"].startswith("waiting")
    end = time.monotonic() + 30
    while not list(r.cfg.inbox.glob("*.dcs")) and time.monotonic() < end:
        time.sleep(0.05)
    assert len(list(r.cfg.inbox.glob("*.dcs"))) == 1


def test_tls_receiver_takes_tls_peers_only(receiver, sample, tmp_path):
    import shutil
    import ssl
    import subprocess

    from xscreen.cli.receive import tls_context

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    r = receiver(pair_wait=0, ssl_context=tls_context(str(cert), str(key), None), network_timeout=5)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    assert _send(r.port, [sample], tls=(client, "localhost")) == [0x0000]
    assert _send(r.port, [sample]) is None  # plain DICOM to a TLS port: no association
    assert len(list(r.cfg.inbox.glob("*.dcs"))) == 1


def test_association_limit(receiver, sample):
    r = receiver(max_associations=1)
    ae = AE(ae_title="SCANNER1")
    ae.add_requested_context("1.2.840.10008.1.1")
    first = ae.associate("127.0.0.1", r.port, ae_title="XSCREEN")
    assert first.is_established
    try:
        second = ae.associate("127.0.0.1", r.port, ae_title="XSCREEN")
        assert not second.is_established  # over the limit: refused, the first goes on
        assert int(first.send_c_echo().Status) == 0
    finally:
        first.release()
