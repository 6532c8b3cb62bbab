"""Qt's X11 libraries: the missing ones are named with their Debian/Ubuntu packages before Qt aborts.

Qt's own message (issue #13) said ``libxcb-cursor0 … is needed`` on a Debian 12 machine that had
it and lacked libxcb-icccm4 and libxcb-keysyms1.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core import display_libs as d

ROOT = Path(__file__).resolve().parents[2]
X11 = {"DISPLAY": ":0"}
LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffc)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f83)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f83)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
"""


@pytest.fixture
def plugins(tmp_path):
    (tmp_path / "platforms").mkdir()
    (tmp_path / "platforms" / "libqxcb.so").write_bytes(b"\x7fELF")
    return tmp_path


def fake_ldd(tmp_path: Path, output: str) -> str:
    script = tmp_path / "ldd"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\n")
    script.chmod(0o755)
    return str(script)


def test_missing_libraries_come_from_ldd_once_each(tmp_path):
    missing = d.missing_libraries(tmp_path / "libqxcb.so", ldd=fake_ldd(tmp_path, LDD_OUTPUT))
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]


def test_without_ldd_each_known_library_is_tried(tmp_path):
    missing = d.missing_libraries(tmp_path / "x.so", ldd="", loads=lambda soname: soname != "libxcb-sync.so.1")
    assert missing == ["libxcb-sync.so.1"]


def test_the_message_names_the_libraries_and_the_apt_line(plugins):
    problem = d.display_problem(plugins, X11, "linux", can_load=lambda p: "libxcb-icccm.so.4: cannot open shared object file",
                                find_missing=lambda p: ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"])
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in problem
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in problem
    assert "libxcb-cursor0" not in problem


def test_the_loader_error_is_used_when_ldd_finds_nothing(plugins):
    problem = d.display_problem(plugins, X11, "linux", can_load=lambda p: "libxcb-sync.so.1: cannot open shared object file",
                                find_missing=lambda p: [])
    assert "sudo apt install libxcb-sync1" in problem


def test_an_unknown_library_gets_a_way_to_find_its_package(plugins):
    problem = d.display_problem(plugins, X11, "linux", can_load=lambda p: "nope", find_missing=lambda p: ["libweird.so.3"])
    assert "libweird.so.3" in problem and "apt-file search" in problem and "sudo apt install" not in problem


def test_no_problem_when_the_plugin_loads_or_another_platform_is_used(plugins):
    assert d.display_problem(plugins, X11, "linux", can_load=lambda p: None) == ""
    broken = dict(can_load=lambda p: "missing", find_missing=lambda p: ["libxcb-icccm.so.4"])
    assert d.display_problem(plugins, {**X11, "QT_QPA_PLATFORM": "offscreen"}, "linux", **broken) == ""
    assert d.display_problem(plugins, {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "linux",
                             **broken) == ""
    assert d.display_problem(plugins, X11, "darwin", **broken) == ""
    assert d.display_problem(plugins, {**X11, "QT_QPA_PLATFORM": "xcb"}, "linux", **broken) != ""


def test_no_display_is_said_in_words(plugins):
    problem = d.display_problem(plugins, {}, "linux", can_load=lambda p: None)
    assert "no display" in problem and "studio train --demo" in problem


def test_this_machines_plugin_is_checked_for_real():
    QLibraryInfo = pytest.importorskip("PySide6.QtCore").QLibraryInfo

    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    missing = d.missing_libraries(plugins / "platforms" / "libqxcb.so")
    assert all(d.package_for(soname) for soname in missing), f"unknown library, add it to SONAME_PACKAGES: {missing}"


def test_the_readme_install_line_and_the_deb_depend_on_every_package():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = re.search(r"sudo apt install (python3-venv [^`]+?)\npython3 -m venv", readme)
    assert line, "the README's first command block starts with the system packages"
    readme_packages = set(line.group(1).replace("\\\n", " ").split())
    assert set(d.PACKAGES) <= readme_packages
    control = (ROOT / "packaging" / "linux" / "control.in").read_text()
    depends = {alt.strip().split(" ")[0] for dep in re.search(r"^Depends: (.*)$", control, re.M).group(1).split(",")
               for alt in dep.split("|")}
    assert set(d.PACKAGES) <= depends


def test_the_gui_entry_prints_the_problem_instead_of_aborting(tmp_path):
    """With no display the studio exits 1 with a sentence, where Qt would abort with 134."""
    env = {"PATH": "/usr/bin:/bin", "STUDIO_HOME": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "studio"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result.stderr
    assert "no display is set" in result.stderr
