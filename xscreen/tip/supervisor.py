"""The supervisor's TIP setting (on/off, rate, categories, library), behind a supervisor password. No Qt.

One file in the user data dir, ``tip_supervisor.jsonl``: an append-only log, one JSON entry a line,
each entry hash-chained to the previous one (``hash = SHA-256(prev + canonical entry)``), rewritten
whole and atomically on every change (a crash leaves the old log or the new one, never half of one).
The setting in force is the last ``settings`` entry; the password the last ``password`` entry, kept
as a salted scrypt hash (never in clear) and compared in constant time. Every change names who made
it (the supervisor's name as typed and the operator signed in at the console) and when.

Limits (said, not hidden): the chain shows a hand edit, but someone who rewrites every later hash
(nothing secret goes into it) or deletes the file is not detectable from the file alone; a broken
chain switches TIP off and is reported. Keep the file writable by the supervisor's account only.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xscreen.atomic import atomic_write_text
from xscreen.paths import user_data_dir
from xscreen.tip.fti import CATEGORIES

FILE_NAME = "tip_supervisor.jsonl"
GENESIS = "0" * 64
MAX_BYTES = 4 << 20
MIN_PASSWORD = 8
# scrypt cost: ~50 ms and 16 MiB per try here; the bounds refuse a forged file asking for more
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
_BOUNDS = {"n": (2 ** 10, 2 ** 20), "r": (1, 32), "p": (1, 16)}


class TipSettingsError(Exception):
    """A supervisor file that cannot be used, or a refused change. ``str(err)`` names the file."""


class WrongPassword(TipSettingsError):
    """No password, or not the supervisor's."""


@dataclass(frozen=True)
class TipSettings:
    """``rate``: one bag in ``rate`` on average gets a TIP image (drawn per bag, unpredictable);
    ``categories``: empty = every category; ``library``: the TIP library folder."""

    enabled: bool = False
    rate: int = 30
    categories: tuple[str, ...] = ()
    library: str = ""

    def checked(self) -> "TipSettings":
        if not isinstance(self.rate, int) or isinstance(self.rate, bool) or not 1 <= self.rate <= 100000:
            raise ValueError(f"TIP rate must be a whole number of bags from 1 to 100000, got {self.rate!r}")
        bad = [c for c in self.categories if c not in CATEGORIES]
        if bad:
            raise ValueError(f"unknown TIP categor{'y' if len(bad) == 1 else 'ies'}: {', '.join(map(str, bad))}")
        if self.enabled and not str(self.library).strip():
            raise ValueError("TIP on needs a TIP library folder")
        return TipSettings(bool(self.enabled), int(self.rate), tuple(dict.fromkeys(self.categories)), str(self.library))

    @classmethod
    def from_dict(cls, d: Any) -> "TipSettings":
        if not isinstance(d, dict):
            raise ValueError("settings must be an object")
        cats = d.get("categories", [])
        if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
            raise ValueError("categories must be a list of names")
        return cls(d.get("enabled") is True, d.get("rate", 30), tuple(cats), str(d.get("library", ""))).checked()


def default_path() -> Path:
    return user_data_dir() / FILE_NAME


def hash_password(password: str, salt: bytes | None = None, **cost: int) -> dict[str, Any]:
    """{'salt', 'n', 'r', 'p', 'hash'} (hex) for ``password``: scrypt with a random 16-byte salt."""
    params = {**SCRYPT, **cost}
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=params["n"], r=params["r"], p=params["p"],
                            maxmem=256 << 20, dklen=32)
    return {"salt": salt.hex(), **params, "hash": digest.hex()}


def password_matches(password: str, stored: dict[str, Any]) -> bool:
    """Constant-time comparison of ``password``'s scrypt hash with ``stored`` (hash_password's dict)."""
    salt, want = bytes.fromhex(stored["salt"]), bytes.fromhex(stored["hash"])
    got = hash_password(password, salt, n=stored["n"], r=stored["r"], p=stored["p"])["hash"]
    return hmac.compare_digest(bytes.fromhex(got), want)


def _entry_hash(prev: str, entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256((prev + text).encode("ascii")).hexdigest()


def _check_password_field(p: Any, where: str) -> None:
    ok = isinstance(p, dict) and all(isinstance(p.get(k), int) and lo <= p[k] <= hi for k, (lo, hi) in _BOUNDS.items())
    try:
        ok = ok and len(bytes.fromhex(p["salt"])) >= 8 and len(bytes.fromhex(p["hash"])) == 32
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise TipSettingsError(f"{where}: malformed password entry")


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The verified entries of the supervisor file ([] when it does not exist). Raises TipSettingsError
    naming the file and line for anything else: unreadable, not JSON, a broken chain, a bad field."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        if path.stat().st_size > MAX_BYTES:
            raise TipSettingsError(f"{path}: larger than {MAX_BYTES} bytes, not a TIP supervisor file")
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeError) as exc:
        raise TipSettingsError(f"{path}: cannot read ({exc})") from exc
    entries, prev = [], GENESIS
    for n, line in enumerate(lines, 1):
        where = f"{path}: line {n}"
        try:
            e = json.loads(line)
        except ValueError as exc:
            raise TipSettingsError(f"{where}: not JSON ({exc})") from exc
        if not isinstance(e, dict) or e.get("seq") != n or e.get("prev") != prev or e.get("hash") != _entry_hash(prev, e):
            raise TipSettingsError(f"{where}: the hash chain is broken (edited, reordered or cut)")
        if e.get("action") == "password":
            _check_password_field(e.get("password"), where)
        elif e.get("action") == "settings":
            try:
                TipSettings.from_dict(e.get("settings"))
            except ValueError as exc:
                raise TipSettingsError(f"{where}: {exc}") from exc
        else:
            raise TipSettingsError(f"{where}: unknown action {str(e.get('action'))[:40]!r}")
        entries.append(e)
        prev = e["hash"]
    return entries


class SupervisorStore:
    """The TIP setting and the supervisor password in ``path`` (default: the user data dir)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_path()

    def entries(self) -> list[dict[str, Any]]:
        return read_log(self.path)

    def has_password(self) -> bool:
        return any(e["action"] == "password" for e in self.entries())

    def settings(self) -> TipSettings:
        """The setting in force (TIP off when none was ever saved)."""
        last = [e for e in self.entries() if e["action"] == "settings"]
        return TipSettings.from_dict(last[-1]["settings"]) if last else TipSettings()

    def check_password(self, password: str) -> None:
        """Raises WrongPassword unless ``password`` is the supervisor's (none set: always refused)."""
        stored = [e["password"] for e in self.entries() if e["action"] == "password"]
        if not stored or not isinstance(password, str) or not password_matches(password, stored[-1]):
            raise WrongPassword(f"{self.path}: wrong supervisor password" if stored
                                else f"{self.path}: no supervisor password set")

    def set_password(self, new: str, *, old: str | None, who: str, operator: str = "") -> None:
        """First password (``old`` None, none set yet) or a change (``old`` must match)."""
        if self.has_password():
            self.check_password(old or "")
        elif old is not None:
            raise WrongPassword(f"{self.path}: no supervisor password set yet")
        if len(new) < MIN_PASSWORD:
            raise TipSettingsError(f"supervisor password too short (at least {MIN_PASSWORD} characters)")
        self._append("password", who, operator, password=hash_password(new))

    def save(self, settings: TipSettings, *, password: str, who: str, operator: str = "") -> TipSettings:
        """Change the setting (password checked first); audited with who, when and the new setting."""
        self.check_password(password)
        try:
            settings = settings.checked()
        except ValueError as exc:
            raise TipSettingsError(str(exc)) from exc
        self._append("settings", who, operator, settings={**asdict(settings), "categories": list(settings.categories)})
        return settings

    def _append(self, action: str, who: str, operator: str, **body: Any) -> None:
        if not str(who).strip():
            raise TipSettingsError("the supervisor's name is required for the change log")
        entries = self.entries()  # verifies the chain: a broken file is never extended
        prev = entries[-1]["hash"] if entries else GENESIS
        entry = {"seq": len(entries) + 1, "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "who": str(who).strip(), "console_operator": str(operator), "action": action, **body, "prev": prev}
        entry["hash"] = _entry_hash(prev, entry)
        lines = [json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=True) for e in entries + [entry]]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, "\n".join(lines) + "\n")
