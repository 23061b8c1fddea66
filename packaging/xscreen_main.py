"""PyInstaller entry point: the ``xscreen`` console script, frozen (see xscreen.spec)."""
import multiprocessing
import sys

from xscreen.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # DataLoader workers and torchrun children re-exec this binary
    sys.exit(main())
