"""``xscreen`` command line: a dispatcher over one module per area.

Each area module (``xscreen.cli.<area>``) defines ``register(subparsers)`` which adds its
sub-command(s) and sets ``func`` (``args -> int`` exit code) on the parser defaults. An area whose
module is missing or fails to import is simply absent, so one broken area never takes the
others down.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from xscreen import __version__

AREAS = ("gui", "demo", "screen", "report", "synth", "patches", "train", "model", "evaluate", "audit",
         "export", "watch", "receive", "tip", "known_threat")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xscreen",
        description="X-ray baggage screening with a Skip-GANomaly anomaly detector. "
        "Without a command, opens the GUI.",
    )
    parser.add_argument("--version", action="version", version=f"xscreen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for area in AREAS:
        try:
            module = importlib.import_module(f"xscreen.cli.{area}")
        except ModuleNotFoundError as exc:
            if exc.name == f"xscreen.cli.{area}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        gui = next((a for a in sub_actions(parser) if a == "gui"), None)
        if gui is None:
            parser.print_help()
            return 0
        args = parser.parse_args(["gui"])
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of our output went away (``xscreen model info M | head``): stop quietly, as a
        # SIGPIPE'd tool does; stdout goes to devnull so the interpreter's final flush cannot raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def sub_actions(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []
