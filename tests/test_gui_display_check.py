"""`xscreen gui` names the missing X11 libraries and the exact install command before Qt starts
(xscreen.gui.display_check; fed fake linker-cache results, no Qt, no display)."""
import subprocess

from xscreen.gui import display_check as dc

STOCK_DEBIAN = set(dc.XCB_LIBRARIES) - {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}


def test_missing_xcb_libraries_give_the_exact_apt_command():
    msg = dc.display_problem(env={"DISPLAY": ":0"}, platform="linux", found=STOCK_DEBIAN)
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in msg
    assert "\n    sudo apt-get install libxcb-icccm4 libxcb-keysyms1\n" in msg
    assert "libxcb-cursor0" not in msg  # Qt's own hint names this one; it is not what is missing


def test_complete_system_or_other_platform_passes():
    full = set(dc.XCB_LIBRARIES)
    assert dc.display_problem(env={}, platform="linux", found=full) is None
    nothing = set()
    assert dc.display_problem(env={"QT_QPA_PLATFORM": "offscreen"}, platform="linux", found=nothing) is None
    assert dc.display_problem(env={"WAYLAND_DISPLAY": "wayland-0"}, platform="linux", found=nothing) is None
    assert dc.display_problem(env={}, platform="darwin", found=nothing) is None
    assert dc.display_problem(env={"QT_QPA_PLATFORM": "xcb"}, platform="linux", found=nothing) is not None
    assert dc.display_problem(env={"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "w"}, platform="linux",
                              found=nothing) is not None


def test_without_ldconfig_find_library_decides_and_ld_library_path_counts(tmp_path):
    asked = []

    def fake_find(name):
        asked.append(name)
        return None if name == "xcb-keysyms" else f"lib{name}.so"

    assert dc.missing_libraries(None, env={}, find_library=fake_find) == ["libxcb-keysyms.so.1"]
    assert "xcb-icccm" in asked and "X11-xcb" in asked
    (tmp_path / "libxcb-keysyms.so.1").write_bytes(b"")
    assert dc.missing_libraries(None, env={"LD_LIBRARY_PATH": str(tmp_path)}, find_library=fake_find) == []
    assert dc.install_command(["libxkbcommon-x11.so.0", "libGL.so.1"]) == \
        "sudo apt-get install libgl1 libxkbcommon-x11-0"


def test_linker_cache_parses_ldconfig_output():
    out = ("3 libs found in cache `/etc/ld.so.cache'\n"
           "\tlibxcb.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libxcb.so.1\n"
           "\tlibxcb-shm.so.0 (libc6,x86-64) => /lib/x86_64-linux-gnu/libxcb-shm.so.0\n")

    def fake_run(cmd, **kw):
        assert cmd[-1] == "-p"
        return subprocess.CompletedProcess(cmd, 0, stdout=out)

    assert dc.linker_cache(run=fake_run) == {"libxcb.so.1", "libxcb-shm.so.0"}

    def failing_run(cmd, **kw):
        raise OSError("no ldconfig")

    assert dc.linker_cache(run=failing_run) is None


def test_gui_command_prints_the_command_and_stops_before_qt(monkeypatch, capsys):
    import argparse

    from xscreen.cli import gui as cli_gui
    monkeypatch.setattr(dc, "linker_cache", lambda: STOCK_DEBIAN)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert cli_gui.run(argparse.Namespace(path=[], model=None)) == 1
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in capsys.readouterr().err
