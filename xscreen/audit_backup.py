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
from xscreen.audit_chain import read_only_uri


def backup(db_path: str | Path, dest: str | Path) -> Any:
    """Consistent single-file copy of the audit database at ``dest`` (atomic); returns the copy's
    VerifyResult, so the caller can show its anchor (a broken chain is copied as it is)."""
    src_path = Path(db_path)
    with AuditLog(src_path, create=False):  # refuses a missing, truncated or foreign file first
        pass
    with atomic_path(dest) as tmp:
        src = sqlite3.connect(read_only_uri(src_path), uri=True, timeout=10.0)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        except sqlite3.Error as exc:
            raise AuditError(f"{src_path}: backup failed ({exc})") from exc
        finally:
            dst.close()
            src.close()
    with AuditLog(dest, create=False) as copy:
        return copy.verify()
