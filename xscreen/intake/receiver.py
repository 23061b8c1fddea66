"""The DICOS/DICOM receiver: C-ECHO and C-STORE of DX objects (pynetdicom), written into an inbox.

It only receives: screening is the inbox watcher's (``xscreen watch``) or the GUI's. Every store
is answered with a status and never raises out of the handler: a malformed object gets a failure
status (0xC000 cannot understand, 0xA900 not the DX image it claims), a full disk or an object
over the size limits 0xA700 (out of resources), and the next object is served as usual. The size
limits are checked on the header and on the encoded length before anything is decoded or stored.
Every object is logged (one JSON line: time, calling AE, peer, SHA-256, size, status, file).
AE titles are easily spoofed, so ``allow_ip`` (addresses or networks) is checked on connect too.
"""
from __future__ import annotations

import errno
import hashlib
import ipaddress
import json
import os
import shutil
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from xscreen.atomic import atomic_write_bytes
from xscreen.intake.pairing import Pairing
from xscreen.scan import DEFAULT_MAX_PIXELS
from xscreen.scan._dicom import _DX as DX_CLASSES  # the SOP classes the reader accepts

OK, OUT_OF_RESOURCES, NOT_MATCHING, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0xA900, 0xC000
TRANSFER_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99",  # implicit, explicit, deflated
                     "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",  # JPEG lossless (process 14, SV1)
                     "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.5")  # JPEG-LS lossless, RLE


@dataclass(frozen=True)
class ReceiverConfig:
    inbox: Path
    ae_title: str = "XSCREEN"
    bind: str = "0.0.0.0"
    port: int = 11112  # 0: an ephemeral port (tests); Receiver.port says which
    allow_ae: tuple[str, ...] = ()  # empty: any calling AE title
    allow_ip: tuple[str, ...] = ()  # addresses or networks (10.0.0.0/8); empty: any
    max_associations: int = 4
    max_bytes: int = 1 << 30  # encoded object
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_free_bytes: int = 256 << 20  # free space left on the inbox's disk after storing
    pair_wait: float = 2.0  # seconds a single-energy object waits for its twin (0: no pairing)
    log: Path | None = None  # default <inbox>/.xscreen/received.jsonl
    ssl_context: object | None = None  # ssl.SSLContext: TLS on every association
    network_timeout: float = 30.0


@dataclass(frozen=True)
class StoreOutcome:
    status: int
    message: str
    stored: str = ""
    sha256: str = ""
    size: int = 0


class Receiver:
    def __init__(self, cfg: ReceiverConfig):
        self.cfg = cfg
        Path(cfg.inbox).mkdir(parents=True, exist_ok=True)
        self.log_path = Path(cfg.log) if cfg.log else Path(cfg.inbox) / ".xscreen" / "received.jsonl"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pairing = Pairing(cfg.inbox, cfg.pair_wait)
        self._networks = [ipaddress.ip_network(a, strict=False) for a in cfg.allow_ip]
        self._log_lock = threading.Lock()
        self._stop = threading.Event()
        self.server = None
        self.port = cfg.port

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> int:
        from pynetdicom import AE, evt
        from pynetdicom.transport import ThreadedAssociationServer

        register_dicos()
        ae = AE(ae_title=self.cfg.ae_title)
        ae.maximum_associations = self.cfg.max_associations
        ae.network_timeout = self.cfg.network_timeout
        ae.require_calling_aet = list(self.cfg.allow_ae)
        ae.add_supported_context("1.2.840.10008.1.1")  # Verification (C-ECHO)
        for sop in DX_CLASSES:
            ae.add_supported_context(sop, list(TRANSFER_SYNTAXES))
        allowed = self.allowed

        class _Server(ThreadedAssociationServer):
            def verify_request(self, request, client_address) -> bool:  # before any PDU is read
                return allowed(client_address[0], client_address[1])

        handlers = [(evt.EVT_C_ECHO, self.handle_echo), (evt.EVT_C_STORE, self.handle_store),
                    (evt.EVT_REJECTED, self._on_rejected)]
        self.server = ae.make_server((self.cfg.bind, self.cfg.port), evt_handlers=handlers,
                                     ssl_context=self.cfg.ssl_context, server_class=_Server)
        ae._servers.append(self.server)  # as start_server does: the server's shutdown() removes it
        self.port = int(self.server.server_address[1])
        self.pairing.flush()  # what waited when the last run stopped
        threading.Thread(target=self.server.serve_forever, name="dicom-receiver", daemon=True).start()
        threading.Thread(target=self._flush_loop, name="dicom-pairing", daemon=True).start()
        return self.port

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.shutdown()  # also closes the socket
            self.server = None

    def _flush_loop(self) -> None:
        step = min(max(self.cfg.pair_wait / 4, 0.05), 1.0)
        while not self._stop.wait(step):
            try:
                self.pairing.flush()
            except OSError as exc:  # a full disk: the objects stay pending and are retried
                self._log({"event": "pairing", "message": f"cannot move pending objects: {exc}"})

    def allowed(self, address: str, port: int = 0) -> bool:
        """Whether a peer address may connect (``allow_ip``); a refusal is logged."""
        if not self._networks:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
            ok = any(ip in net for net in self._networks)
        except ValueError:
            ok = False
        if not ok:
            self._log({"event": "refused", "peer": f"{address}:{port}", "message": "address not in --allow-ip"})
        return ok

    def _on_rejected(self, event) -> None:
        req = event.assoc.requestor
        self._log({"event": "rejected", "calling_ae": str(req.ae_title).strip(), "peer": f"{req.address}:{req.port}",
                   "message": "association rejected (calling AE title not allowed, or no common context)"})

    # --- handlers (association threads) -------------------------------------------------------------
    def handle_echo(self, event) -> int:
        return OK

    def handle_store(self, event):
        try:
            out = self._store(event)
        except Exception as exc:  # never out of the handler: this object fails, the service goes on
            out = StoreOutcome(CANNOT_UNDERSTAND, f"internal error: {type(exc).__name__}: {exc}")
        req = event.assoc.requestor
        self._log({"event": "c-store", "calling_ae": str(req.ae_title).strip(), "peer": f"{req.address}:{req.port}",
                   "status": f"0x{out.status:04X}", "sha256": out.sha256, "bytes": out.size,
                   "stored": out.stored, "message": out.message})
        return _status(out.status, out.message)

    def _store(self, event) -> StoreOutcome:
        size = len(event.request.DataSet.getvalue())  # encoded, not yet decoded
        if size > self.cfg.max_bytes:
            return StoreOutcome(OUT_OF_RESOURCES, f"object of {size} bytes is over the limit of "
                                                  f"{self.cfg.max_bytes}", size=size)
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
            problem = check_dataset(ds, self.cfg.max_pixels)
        except Exception as exc:
            return StoreOutcome(CANNOT_UNDERSTAND, f"malformed dataset ({type(exc).__name__}: {exc})", size=size)
        if problem is not None:
            return StoreOutcome(problem[0], problem[1], size=size)
        data = event.encoded_dataset(include_meta=True)
        sha = hashlib.sha256(data).hexdigest()
        free = shutil.disk_usage(self.cfg.inbox).free
        if free - len(data) < self.cfg.min_free_bytes:
            return StoreOutcome(OUT_OF_RESOURCES, f"disk full: {free} bytes free on the inbox's disk",
                                sha256=sha, size=size)
        try:
            stored = self._write(ds, data, sha)
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            return StoreOutcome(OUT_OF_RESOURCES, ("disk full" if full else "cannot store") + f": {exc}",
                                sha256=sha, size=size)
        return StoreOutcome(OK, "stored" if stored else "waiting for the other energy", stored or "", sha, size)

    def _write(self, ds, data: bytes, sha: str) -> str | None:
        if int(ds.get("NumberOfFrames") or 1) == 2:  # both energies in one object: the reader makes it dual
            target = Path(self.cfg.inbox) / f"{sha[:16]}.dcs"
            atomic_write_bytes(target, data)
            return target.name
        path = self.pairing.add(data, ds, sha)
        return path.name if path is not None else None

    def _log(self, entry: dict) -> None:
        entry = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **entry}
        line = (json.dumps(entry) + "\n").encode()
        with self._log_lock:  # an append-only log: one line per object, never rewritten
            try:
                fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, line)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                pass  # a full disk must not turn into a crashed receiver; the peer got its status


def register_dicos() -> None:
    """pynetdicom knows DICOM's DX storage classes but not DICOS's (NEMA IIC 1): register those as
    storage SOP classes, once per process (a second call changes nothing)."""
    from pynetdicom.service_class import StorageServiceClass
    from pynetdicom.sop_class import register_uid, uid_to_service_class

    for uid in DX_CLASSES:
        if uid_to_service_class(uid) is not StorageServiceClass:
            register_uid(uid, "DICOS" + "".join(w.title() for w in DX_CLASSES[uid].split()[2:]) + "Storage",
                         StorageServiceClass)


def check_dataset(ds, max_pixels: int) -> tuple[int, str] | None:
    """(status, reason) when the object is not a DX image we can store, else None. Header only."""
    sop = str(ds.get("SOPClassUID", ""))
    if sop not in DX_CLASSES:
        return NOT_MATCHING, f"not a DX image object (SOP class {sop or 'missing'})"
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    frames, samples = int(ds.get("NumberOfFrames") or 1), int(ds.get("SamplesPerPixel") or 1)
    if rows <= 0 or cols <= 0:
        return CANNOT_UNDERSTAND, "no image size (Rows/Columns missing or zero)"
    if frames not in (1, 2):
        return NOT_MATCHING, f"{frames} frames: expected one image or two energies"
    if rows * cols * frames > max_pixels:
        return OUT_OF_RESOURCES, f"{rows}x{cols}x{frames} pixels is over the limit of {max_pixels}"
    if "PixelData" not in ds:
        return CANNOT_UNDERSTAND, "no pixel data"
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is not None and not syntax.is_compressed:
        need = rows * cols * frames * samples * max(1, int(ds.get("BitsAllocated") or 16) // 8)
        have = len(ds.PixelData)
        if have < need:
            return CANNOT_UNDERSTAND, f"pixel data truncated: {have} of {need} bytes"
    return None


def _status(code: int, message: str):
    if code == OK:
        return OK
    from pydicom import Dataset

    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = message[:64]  # LO: 64 characters
    return ds
