"""``xscreen gui [PATH] [--model M]`` (also what ``xscreen`` with no command runs)."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the screening GUI (optionally a scan file or a folder as a bag queue)")
    p.add_argument("path", nargs="*", help="scan file(s), or a folder to review bag by bag")
    p.add_argument("--model", "-m", help="model file (.xsm); default: the last one used")
    p.add_argument("--inbox", metavar="DIR", help="sit at a lane: screen bags arriving in DIR (arrivals queue)")
    p.add_argument("--settle", type=float, default=2.0,
                   help="with --inbox: seconds a file must stay unchanged (0: the sender renames; default 2)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for p in args.path or []:
        if not Path(p).exists():
            print(f"error: {p}: no such file or folder", file=sys.stderr)
            return 2
    if args.model and not Path(args.model).is_file():
        print(f"error: {args.model}: no such model file", file=sys.stderr)
        return 2
    # by name like the app below; plain Python, run before anything loads Qt's platform plugin
    problem = importlib.import_module("xscreen.gui.display_check").display_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    try:
        # imported by name: the CLI layer stays importable (and Qt-free) where no GUI is installed
        app = importlib.import_module("xscreen.gui.app")
    except ImportError as exc:
        print(f"error: the GUI needs PySide6 and pyqtgraph ({exc})", file=sys.stderr)
        return 1
    lane = {"inbox": args.inbox, "settle": args.settle} if args.inbox else {}
    return int(app.run_app(args.path or None, args.model, **lane))
