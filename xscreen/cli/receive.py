"""``xscreen receive --port N --ae-title T --inbox DIR``: the DICOS/DICOM network receiver.

Answers C-ECHO and C-STORE of DX image objects, writing each bag atomically into DIR (two energies
paired into one dual-energy HDF5 scan); screening is ``xscreen watch DIR`` or ``xscreen gui --inbox
DIR``. Runs until interrupted. Objects are logged to DIR/.xscreen/received.jsonl (or --log).
"""
from __future__ import annotations

import argparse
import signal
import ssl
import sys
import threading
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("receive", help="receive bags from scanners over DICOS/DICOM (C-STORE) into an inbox",
                       description="A DICOS/DICOM storage service (C-ECHO, C-STORE of DX images) that writes "
                       "received bags into an inbox folder for `xscreen watch` or `xscreen gui --inbox`.")
    p.add_argument("--inbox", required=True, help="inbox folder (created if missing)")
    p.add_argument("--port", type=int, default=11112, help="TCP port (default 11112; 0: any free port)")
    p.add_argument("--ae-title", default="XSCREEN", help="this service's AE title (default XSCREEN)")
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (default all)")
    p.add_argument("--allow-ae", action="append", default=[], metavar="AE",
                   help="calling AE title allowed to connect (repeat; default any). Easily spoofed: "
                   "combine with --allow-ip")
    p.add_argument("--allow-ip", action="append", default=[], metavar="ADDR",
                   help="peer address or network (10.1.2.0/24) allowed to connect (repeat; default any)")
    p.add_argument("--max-associations", type=int, default=4, help="concurrent associations (default 4)")
    p.add_argument("--max-mb", type=float, default=1024.0, help="largest object accepted, MB (default 1024)")
    p.add_argument("--min-free-mb", type=float, default=256.0,
                   help="free disk space to keep; below it stores are refused as out of resources (default 256)")
    p.add_argument("--pair-wait", type=float, default=2.0,
                   help="seconds a single-energy object waits for its other energy (0: no pairing; default 2)")
    p.add_argument("--log", help="received-object log (default DIR/.xscreen/received.jsonl)")
    p.add_argument("--tls-cert", help="TLS: this service's certificate (PEM); enables TLS")
    p.add_argument("--tls-key", help="TLS: its private key (PEM)")
    p.add_argument("--tls-ca", help="TLS: CA bundle; when given, peers must present a certificate it signed")
    p.set_defaults(func=run)


def tls_context(cert: str | None, key: str | None, ca: str | None) -> ssl.SSLContext | None:
    if not cert:
        if key or ca:
            raise ValueError("--tls-key/--tls-ca need --tls-cert")
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if ca:
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    from xscreen.intake.receiver import Receiver, ReceiverConfig

    try:
        cfg = ReceiverConfig(
            inbox=Path(args.inbox), ae_title=args.ae_title, bind=args.bind, port=args.port,
            allow_ae=tuple(args.allow_ae), allow_ip=tuple(args.allow_ip),
            max_associations=args.max_associations, max_bytes=int(args.max_mb * (1 << 20)),
            min_free_bytes=int(args.min_free_mb * (1 << 20)), pair_wait=args.pair_wait,
            log=Path(args.log) if args.log else None,
            ssl_context=tls_context(args.tls_cert, args.tls_key, args.tls_ca))
        receiver = Receiver(cfg)
        port = receiver.start()
    except (OSError, ValueError, ssl.SSLError) as exc:
        print(f"error: {args.inbox}: cannot start the receiver: {exc}", file=sys.stderr)
        return 2
    allowed = ", ".join(cfg.allow_ae + cfg.allow_ip) or "any caller"
    print(f"receiving as {cfg.ae_title} on {cfg.bind}:{port}{' (TLS)' if cfg.ssl_context else ''} into "
          f"{cfg.inbox} ({allowed}); log: {receiver.log_path}", file=sys.stderr, flush=True)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())  # a service manager's stop: a clean one
    try:
        while not stop.wait(0.5):  # forever: Ctrl+C or SIGTERM ends it
            pass
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    print("receiver stopped", file=sys.stderr)
    return 0
