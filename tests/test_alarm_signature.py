"""The optional site signature on model files (issue 32 item 13): the plain SHA-256 cannot stop a
consistent, plausible edit; a site that sets XSCREEN_MODEL_KEY loads only files signed with its key."""
import pytest

from test_alarm_tampered import REAL, _save
from test_checkpoint import _resign
from xscreen.checkpoint import ModelError, load_model, read_meta, update_model_meta
from xscreen.cli import main as cli_main


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "site.key"
    path.write_bytes(bytes(range(32)))
    return path


def _plausible_edit(meta):  # passes every field check: only a key can tell it from the analysts' file
    meta["calibration"]["scan_far"] = 0.01


def test_without_a_site_key_nothing_is_required(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("XSCREEN_MODEL_KEY", raising=False)
    model = _save(tmp_path / "m.xsm", REAL)
    edited = _resign(model, tmp_path / "edited.xsm", edit_meta=_plausible_edit)
    assert load_model(edited).meta.calibration.scan_far == 0.01  # the documented limit of the SHA-256
    assert cli_main(["model", "info", str(model)]) == 0
    assert "signature  not signed (XSCREEN_MODEL_KEY is not set" in capsys.readouterr().out


def test_a_site_key_refuses_unsigned_edited_and_foreign_files(tmp_path, key_file, capsys, monkeypatch):
    monkeypatch.delenv("XSCREEN_MODEL_KEY", raising=False)
    unsigned = _save(tmp_path / "m.xsm", REAL)
    monkeypatch.setenv("XSCREEN_MODEL_KEY", str(key_file))
    with pytest.raises(ModelError, match="not signed, and this site requires signed model files"):
        load_model(unsigned)
    assert cli_main(["model", "sign", str(unsigned)]) == 0 and "signed with the site key" in capsys.readouterr().out
    assert load_model(unsigned).meta.calibration == REAL
    assert cli_main(["model", "info", str(unsigned)]) == 0
    assert "(verified)" in capsys.readouterr().out.split("signature  ")[1].splitlines()[0]
    # a consistent edit with the checksum recomputed keeps the old signature, which no longer fits
    edited = _resign(unsigned, tmp_path / "edited.xsm", edit_meta=_plausible_edit)
    for load in (load_model, read_meta):
        with pytest.raises(ModelError, match="modified after signing"):
            load(edited)
    # files the site writes under the key are signed: a recalibration stays loadable
    update_model_meta(unsigned, description="recalibrated here")
    assert load_model(unsigned).meta.card.description == "recalibrated here"
    other = tmp_path / "other.key"
    other.write_bytes(b"x" * 40)
    monkeypatch.setenv("XSCREEN_MODEL_KEY", str(other))
    with pytest.raises(ModelError, match="signed with another key"):
        load_model(unsigned)


def test_an_unusable_key_file_is_named(tmp_path, monkeypatch):
    model = _save(tmp_path / "m.xsm", REAL)
    short = tmp_path / "short.key"
    short.write_bytes(b"abc")
    for value, fault in ((short, "holds 32 to 4096 bytes, this one 3"), (tmp_path / "absent.key", "cannot read")):
        monkeypatch.setenv("XSCREEN_MODEL_KEY", str(value))
        with pytest.raises(ModelError, match=f"XSCREEN_MODEL_KEY=.*{fault}"):
            load_model(model)
    assert cli_main(["model", "sign", str(model)]) == 2
