"""An optional site signature on model files (issue 32 item 13).

The file's SHA-256 is not keyed: whoever edits a model file can recompute it, and the load checks
only refuse values no real calibration produces - a consistent, plausible edit passes them. A site
that must know its model files came from its own analysts sets ``XSCREEN_MODEL_KEY`` to a key file
(32 or more secret bytes, e.g. ``head -c 32 /dev/urandom > site.key``, readable only by xscreen's
users). Then every model file written is signed (HMAC-SHA256 of its checksum under the key), and
every model file loaded must carry a valid signature under that key, or it is refused. Without the
variable nothing is required and a signature is not checked (``model info`` says so). HMAC, not a
public-key signature: the standard library has no Ed25519, so a station that verifies can also
sign - keep the key where operators cannot write model files.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

ENV = "XSCREEN_MODEL_KEY"
MIN_KEY_BYTES = 32
MAX_KEY_BYTES = 4096


class SiteKeyError(ValueError):
    """The configured site key cannot be used (missing, unreadable, too short)."""


def site_key() -> bytes | None:
    """The site key from the file ``XSCREEN_MODEL_KEY`` names, None when the variable is unset."""
    name = os.environ.get(ENV, "").strip()
    if not name:
        return None
    path = Path(name)
    try:
        with open(path, "rb") as fh:
            key = fh.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise SiteKeyError(f"{ENV}={name}: cannot read the model key file ({exc.strerror or exc})") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise SiteKeyError(f"{ENV}={name}: a model key file holds {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, "
                        f"this one {len(key)}{'+' if len(key) > MAX_KEY_BYTES else ''}")
    return key


def key_id(key: bytes) -> str:
    """Names the key in the file (8 hex digits of its hash) without revealing it."""
    return hashlib.sha256(b"xscreen-model-key|" + key).hexdigest()[:8]


def sign(checksum: str, key: bytes) -> dict[str, str]:
    """Header fields that sign a file with this checksum."""
    mac = hmac.new(key, f"xscreen-model/1|{checksum}".encode(), hashlib.sha256).hexdigest()
    return {"signature": mac, "signature_key": key_id(key)}


def verify(header: dict[str, str], checksum: str, key: bytes | None) -> str:
    """'' when no key is required or the signature is valid; else the fault, for ModelError."""
    if key is None:
        return ""
    mac = header.get("signature")
    if not mac:
        return f"not signed, and this site requires signed model files ({ENV})"
    if header.get("signature_key") != key_id(key):
        return (f"signed with another key ({header.get('signature_key', '?')!r}, this site's is "
                f"{key_id(key)!r})")
    if not hmac.compare_digest(sign(checksum, key)["signature"], str(mac)):
        return "the signature does not match the file: it was modified after signing"
    return ""


def signature_text(header: dict[str, str], key: bytes | None) -> str:
    """One line for `model info`: whether the file is signed, and whether that was checked."""
    signed = header.get("signature_key")
    if key is None:
        return (f"signed with key {signed} (not checked: {ENV} is not set)" if signed
                else f"not signed ({ENV} is not set, so none is required)")
    return f"signed with this site's key {key_id(key)} (verified)"
