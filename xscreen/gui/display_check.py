"""Before Qt starts: are the system libraries that Qt's X11 (xcb) platform plugin loads present?

Plain Python, no Qt import. A stock Debian lacks e.g. libxcb-icccm4 and libxcb-keysyms1; Qt then
aborts with "Could not load the Qt platform plugin 'xcb'" and a hint naming a package that does not
exist on Debian (libxcb-cursor0 is not the one missing). Here the plugin's own shared-library
dependencies (``ldd libqxcb.so`` of PySide6 6.x, plus the GL/EGL/font libraries QtGui loads) are
looked up by soname in the dynamic linker's cache, and the exact install command is printed.
"""
from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable, Mapping

# soname -> Debian/Ubuntu package that ships it
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}


def linker_cache(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> set[str] | None:
    """Sonames in ``ldconfig -p`` (None when ldconfig cannot be run). /sbin is often not on a
    user's PATH on Debian, so the usual places are tried too."""
    exe = shutil.which("ldconfig") or next(
        (p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if Path(p).is_file()), None)
    if exe is None:
        return None
    try:
        out = run([exe, "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {line.split()[0] for line in out.splitlines()[1:] if line.strip()}


def _in_library_path(soname: str, env: Mapping[str, str]) -> bool:
    dirs = [d for d in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    return any((Path(d) / soname).exists() for d in dirs)


def missing_libraries(found: set[str] | None, env: Mapping[str, str] = os.environ,
                      find_library: Callable[[str], str | None] = ctypes.util.find_library,
                      sonames: Iterable[str] = XCB_LIBRARIES) -> list[str]:
    """Sonames not found. ``found``: the linker cache (``linker_cache()``); None falls back to
    ``ctypes.util.find_library`` per library. LD_LIBRARY_PATH counts as found."""
    missing = []
    for soname in sonames:
        if _in_library_path(soname, env):
            continue
        if found is not None:
            ok = soname in found
        else:
            ok = find_library(soname[3:].split(".so")[0]) is not None
        if not ok:
            missing.append(soname)
    return missing


def install_command(missing: Iterable[str]) -> str:
    packages = sorted({XCB_LIBRARIES[s] for s in missing})
    return "sudo apt-get install " + " ".join(packages)


def uses_xcb(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> bool:
    """Qt loads the xcb plugin on Linux unless another platform is asked for or a Wayland session
    lets Qt 6 pick its Wayland plugin."""
    if not platform.startswith("linux"):
        return False
    asked = env.get("QT_QPA_PLATFORM", "")
    if asked:
        return asked.split(":")[0].split(";")[0] == "xcb"
    return not env.get("WAYLAND_DISPLAY")


def display_problem(env: Mapping[str, str] = os.environ, platform: str = sys.platform,
                    found: set[str] | None | bool = False) -> str | None:
    """A message with the install command when the xcb plugin's libraries are missing, else None.
    ``found`` False: read the linker cache here (tests pass a set, or None for the fallback)."""
    if not uses_xcb(env, platform):
        return None
    cache = linker_cache() if found is False else found
    missing = missing_libraries(cache, env)  # type: ignore[arg-type]
    if not missing:
        return None
    return ("error: the GUI cannot start: Qt's X11 (xcb) platform plugin needs system libraries that "
            f"are not installed: {', '.join(missing)}.\nOn Debian/Ubuntu install them with:\n\n    "
            f"{install_command(missing)}\n\n(On another distribution install the packages that "
            "provide these files. QT_QPA_PLATFORM=offscreen runs without a display.)")
