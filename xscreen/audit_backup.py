"""A consistent single-file copy of a live audit database (``xscreen audit backup``).

Its own module: it needs the log (audit.py) and the chain (audit_chain.py), and audit.py imports
audit_chain, so living in audit_chain it made the two import each other.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from xscreen.atomic import atomic_path
from xscreen.audit import AuditError, AuditLog
from xscreen.audit_schema import open_reader, stamp


def backup(db_path: str | Path, dest: str | Path) -> Any:
    """Consistent single-file copy of the audit database at ``dest`` (atomic); returns the copy's
    VerifyResult, so the caller can show its anchor (a broken chain is copied as it is)."""
    src_path = Path(db_path)
    with AuditLog(src_path, create=False):  # refuses a missing, truncated or foreign file first
        pass
    with atomic_path(dest) as tmp:
        while not _copy(src_path, tmp):  # a writer came during an immutable copy: copy again, live
            pass
    with AuditLog(dest, create=False) as copy:
        return copy.verify()


def _copy(src_path: Path, tmp: Path) -> bool:
    """Copy once; False when the copy was made ``immutable`` (nothing created beside the source)
    and the source changed meanwhile, so the copy may mix two states."""
    before = stamp(src_path)
    src, immutable = open_reader(src_path)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    except sqlite3.Error as exc:
        if not immutable or stamp(src_path) == before:
            raise AuditError(f"{src_path}: backup failed ({exc})") from exc
    finally:
        dst.close()
        src.close()
    return not immutable or stamp(src_path) == before
