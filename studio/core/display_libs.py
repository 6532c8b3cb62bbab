"""Which system libraries Qt's X11 platform plugin needs, which are missing, and how to install them.

Qt aborts (exit 134) when its ``xcb`` plugin cannot be loaded, and its message names
``libxcb-cursor0`` whatever is actually missing. The GUI calls ``check_display()`` before it
creates the QApplication and prints what this module finds instead: the missing libraries and the
``apt install`` line that adds them. ``PACKAGES`` is the one list of those packages; the README's
install line and the .deb's ``Depends`` are tested against it. No Qt is imported here: the caller
passes the plugin's path.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional

# The shared libraries libqxcb.so and libQt6XcbQpa/Gui/Core load that a Linux desktop may lack
# (PySide6 6.8-6.11 wheels; `ldd libqxcb.so` lists them), with the Debian/Ubuntu package of each.
SONAME_PACKAGES = {
    "libxcb.so.1": "libxcb1",
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
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}
PACKAGES = tuple(dict.fromkeys(SONAME_PACKAGES.values()))  # in order, each once
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)
_DLERROR = re.compile(r"(lib[^\s:/]+\.so[.\d]*): cannot open shared object file")


def apt_line(packages: Iterable[str]) -> str:
    return "sudo apt install " + " ".join(dict.fromkeys(packages))


def package_for(soname: str) -> Optional[str]:
    return SONAME_PACKAGES.get(soname)


def missing_libraries(binary: Path, *, ldd: Optional[str] = None,
                      loads: Optional[Callable[[str], bool]] = None) -> list[str]:
    """The shared libraries ``binary`` needs (directly or through its own libraries) that are not found.

    Asks ``ldd`` (glibc's, always there on Debian/Ubuntu); without it, tries to load each library
    this module knows about.
    """
    ldd = ldd if ldd is not None else shutil.which("ldd")
    if ldd:
        try:
            out = subprocess.run([ldd, str(binary)], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            out = None
        if out is not None:
            return list(dict.fromkeys(_NOT_FOUND.findall(out)))
    loads = loads or _loads
    return [soname for soname in SONAME_PACKAGES if not loads(soname)]


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname, mode=os.RTLD_LAZY)
    except OSError:
        return False
    return True


def describe_missing(missing: list[str], plugin: Path) -> str:
    """What to tell someone whose Qt cannot open a window: the libraries, the packages, the command."""
    packages = [p for p in (package_for(s) for s in missing) if p]
    unknown = [s for s in missing if not package_for(s)]
    lines = [f"The studio cannot open its window: Qt's X11 plugin ({plugin.name}) needs system "
             f"libraries that are not installed: {', '.join(missing)}."]
    if packages:
        lines.append(f"On Debian or Ubuntu install them with:\n\n    {apt_line(packages)}\n")
    if unknown:
        lines.append(f"Find the package that provides {', '.join(unknown)} with your package manager "
                     "(on Debian/Ubuntu: apt-file search NAME).")
    lines.append("Without a display the command line works: studio --help, studio train --demo.")
    return "\n".join(lines)


def display_problem(platform_plugins: Path, env: Optional[dict[str, str]] = None,
                    platform: str = sys.platform,
                    can_load: Optional[Callable[[Path], Optional[str]]] = None,
                    find_missing: Callable[[Path], list[str]] = missing_libraries) -> str:
    """Why Qt will not be able to open a window on this Linux desktop, in words, or "" when it can.

    Only the X11 (xcb) case is checked: it is what Qt uses unless the session is Wayland or
    ``QT_QPA_PLATFORM`` names another plugin. ``can_load`` returns the loader's error, or None.
    """
    env = os.environ if env is None else env
    if not platform.startswith("linux"):
        return ""
    wanted = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    wayland = bool(env.get("WAYLAND_DISPLAY")) and env.get("XDG_SESSION_TYPE") == "wayland"
    if wanted not in ("", "xcb") or (not wanted and wayland):
        return ""
    if not env.get("DISPLAY") and not (not wanted and env.get("WAYLAND_DISPLAY")):
        return ("The studio cannot open its window: no display is set (DISPLAY is empty). Start it from a "
                "desktop session, or over SSH with `ssh -X`. The command line needs no display: "
                "studio --help, studio train --demo.")
    plugin = platform_plugins / "platforms" / "libqxcb.so"
    if not plugin.exists():
        return ""  # a build without the plugin: Qt's own message says so
    error = (can_load or _load_error)(plugin)
    if error is None:
        return ""
    missing = find_missing(plugin) or _DLERROR.findall(error)
    if not missing:
        return f"The studio cannot open its window: Qt's X11 plugin {plugin} does not load ({error})."
    return describe_missing(missing, plugin)


def _load_error(plugin: Path) -> Optional[str]:
    try:
        ctypes.CDLL(str(plugin), mode=os.RTLD_LAZY)
    except OSError as e:
        return str(e)
    return None
