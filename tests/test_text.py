"""Text from files made safe where it goes: valid Unicode, terminal lines, layout (issue 32 items 1, 2, 12)."""
from xscreen.budget import memory_budget_from_env
from xscreen.csvtext import csv_text
from xscreen.text import printable, shorten, valid_data, valid_text


def test_lone_surrogates_become_visible_escapes_and_valid_text_is_untouched():
    assert valid_text("bad\ud800id") == "bad\\ud800id"
    assert valid_text("caf\u00e9 \u2603") == "caf\u00e9 \u2603"
    assert valid_data({"k\udcff": ["x\ud800", 1, ("y", None)]}) == {"k\\udcff": ["x\\ud800", 1, ("y", None)]}
    # a CSV cell of a non-UTF-8 file name (surrogateescape) can be written as UTF-8
    csv_text(["file"], [{"file": "/data/ba\udcffd.h5"}]).encode("utf-8")


def test_printable_shows_control_characters_instead_of_obeying_them():
    line = printable("evil\x1b[2J\x1b]0;title\x07\r\n\x9b31m.h5")
    assert line == "evil\\x1b[2J\\x1b]0;title\\x07\\x0d\\x0a\\x9b31m.h5"
    assert printable("ok: caf\u00e9.h5") == "ok: caf\u00e9.h5"


def test_shorten_keeps_both_ends_and_says_how_much_is_left_out():
    s = "HEAD" + "x" * 5000 + "TAIL"
    short = shorten(s, 300)
    assert len(short) < 320 and short.startswith("HEAD") and short.endswith("TAIL")
    assert "[4749 characters]" in short  # 5008 - 173 kept at the head - 86 at the tail
    assert shorten("short", 300) == "short"


def test_memory_budget_setting_is_strict():
    assert memory_budget_from_env({}) is None and memory_budget_from_env({"XSCREEN_MEMORY_BUDGET": " "}) is None
    assert memory_budget_from_env({"XSCREEN_MEMORY_BUDGET": "512M"}) == 512 << 20
    assert memory_budget_from_env({"XSCREEN_MEMORY_BUDGET": "4GiB"}) == 4 << 30
    for bad in ("inf", "-inf", "nan", "1e30", "100T", "0", "512K", "four"):
        try:
            memory_budget_from_env({"XSCREEN_MEMORY_BUDGET": bad})
        except ValueError as exc:
            assert "XSCREEN_MEMORY_BUDGET" in str(exc) and "1M to 64T" in str(exc)
        else:
            raise AssertionError(f"{bad!r} accepted")
