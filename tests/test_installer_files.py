"""The installer's inputs, checked without building: spec, desktop entry, icons, example config, scripts.

Building the bundle takes a minute and belongs to ``make installer``; these checks catch the
cheap mistakes first (an exclude that removes a Qt module the app loads, a desktop entry a menu
refuses, an icon size missing, a marker the check greps for that the app no longer prints).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "build_installer.spec"
RESOURCES = ROOT / "resources"
DESKTOP = RESOURCES / "trading-console.desktop"
ICONS = RESOURCES / "icons"
INSTALL_SCRIPT = ROOT / "packaging" / "install-desktop.sh"
sys.path.insert(0, str(ROOT / "packaging"))

from render_icons import SIZES  # noqa: E402


def _spec_assignments() -> dict[str, ast.expr]:
    tree = ast.parse(SPEC.read_text(encoding="utf-8"), filename=str(SPEC))
    found: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
    return found


def _strings(node: ast.expr) -> list[str]:
    """String literals of a list, including those passed to starred calls like collect_submodules("x")."""
    out: list[str] = []
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            out.append(n.value)
    return out


def _calls(node: ast.expr) -> list[str]:
    """Calls by plain name, as source text: ``copy_metadata('keyring')``."""
    return [
        ast.unparse(n) for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    ]


def test_spec_collects_resources_metadata_and_lazily_imported_venues() -> None:
    spec = _spec_assignments()
    hidden = _strings(spec["hiddenimports"])
    assert {"ccxt.async_support", "ccxt.pro"} <= set(hidden)
    assert "collect_submodules('keyring.backends')" in _calls(spec["hiddenimports"])
    assert "collect_submodules('engine.venues')" in _calls(spec["hiddenimports"])
    datas = _calls(spec["datas"])
    assert "copy_metadata('keyring')" in datas  # keyring finds its backends through entry points
    assert "copy_metadata(NAME)" in datas  # the version, for --version
    assert "resources" in _strings(spec["datas"])
    assert _strings(spec["NAME"]) == ["trading-console"]
    assert (ROOT / "packaging" / "launcher.py").is_file()


def test_spec_keeps_one_qt_binding_and_never_excludes_what_the_app_loads() -> None:
    excludes = set(_strings(_spec_assignments()["excludes"]))
    assert {"PyQt5", "PyQt6", "PySide2", "tkinter"} <= excludes
    assert not {"PySide6", "shiboken6", "keyring", "ccxt", "alpaca", "pyqtgraph"} & excludes
    # what the window really imports (pyqtgraph pulls QtOpenGL, QtSvg and QtTest at import)
    code = (
        "import json, sys, pyqtgraph, console.app, console.main_window, widgets.equity_chart;"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('PySide6.Qt'))))"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert {"PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets"} <= loaded
    assert not loaded & excludes, f"the spec excludes Qt modules the app loads: {sorted(loaded & excludes)}"


def _desktop_entries(text: str) -> dict[str, dict[str, str]]:
    """Parse per the Desktop Entry spec's basic format, failing on anything a validator would reject."""
    groups: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            assert re.fullmatch(r"\[[^\[\]]+\]", line), f"line {n}: bad group header {line!r}"
            assert line[1:-1] not in groups, f"line {n}: duplicate group"
            current = groups[line[1:-1]] = {}
            continue
        assert current is not None, f"line {n}: key before the first group"
        key, sep, value = line.partition("=")
        assert sep, f"line {n}: not key=value: {line!r}"
        assert re.fullmatch(r"[A-Za-z0-9-]+(\[[A-Za-z_@.]+\])?", key), f"line {n}: bad key {key!r}"
        assert key not in current, f"line {n}: duplicate key {key}"
        current[key] = value
    return groups


def test_desktop_entry_is_valid_and_points_at_the_command_and_icon() -> None:
    text = DESKTOP.read_text(encoding="utf-8")
    first = next(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    assert first == "[Desktop Entry]"
    entry = _desktop_entries(text)["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Name"]
    assert entry["Terminal"] in ("true", "false") and entry["StartupNotify"] in ("true", "false")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert entry["Exec"].split()[0] in scripts and entry["TryExec"] == entry["Exec"].split()[0]
    assert entry["Icon"] == "trading-console" and (ICONS / f"{entry['Icon']}.svg").is_file()
    for key in ("Categories", "Keywords"):
        assert entry[key].endswith(";"), f"{key} is a list and must end with ';'"
    assert "Office" in entry["Categories"].split(";")  # Finance is an additional category and needs a main one


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed")
def test_desktop_entry_passes_desktop_file_validate() -> None:
    out = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_icon_exists_as_svg_and_in_every_png_size() -> None:
    root = ET.parse(ICONS / "trading-console.svg").getroot()
    assert root.tag.endswith("svg")
    _, _, w, h = (float(v) for v in root.attrib["viewBox"].split())
    assert w == h, "an application icon is square"
    for size in SIZES:
        assert _png_size(ICONS / f"trading-console-{size}.png") == (size, size)


def test_example_config_is_valid_and_holds_the_defaults() -> None:
    from engine.core.config import Settings, load_settings

    assert load_settings(RESOURCES / "config.example.toml") == Settings()


def test_themes_are_found_in_a_frozen_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from widgets.theme import load_stylesheet, resources_dir

    assert resources_dir() == RESOURCES  # from the source tree
    bundled = tmp_path / "resources"
    bundled.mkdir()
    (bundled / "theme_dark.qss").write_text("/* bundled */", encoding="utf-8")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources_dir() == bundled
    assert load_stylesheet("dark") == "/* bundled */"


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    from console.__main__ import build_parser

    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().err.strip() == f"trading-console {version}"


def test_installer_check_greps_for_the_marker_the_app_prints() -> None:
    from console.app import SMOKE_MARKER

    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    check = makefile.split("\ninstaller-check:", 1)[1].split("\n\n", 1)[0]
    assert "--smoke-test" in check and "QT_QPA_PLATFORM=offscreen" in check
    assert f"'{SMOKE_MARKER}'" in check
    assert "build_installer.spec" in makefile.split("\ninstaller:", 1)[1].split("\n\n", 1)[0]


def _fake_bundle(root: Path) -> Path:
    bundle = root / "dist" / "trading-console"
    shutil.copytree(RESOURCES, bundle / "_internal" / "resources")
    exe = bundle / "trading-console"
    exe.write_text("#!/bin/sh\necho fake\n", encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return bundle


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_desktop_install_and_uninstall_touch_only_their_own_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    data = home / ".local" / "share" / "trading-console"
    data.mkdir(parents=True)
    (data / "journal.sqlite").write_text("keep me", encoding="utf-8")
    bundle = _fake_bundle(tmp_path)
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def run(*args: str) -> None:
        out = subprocess.run(["bash", str(INSTALL_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr

    run(str(bundle))
    app_dir = home / ".local" / "lib" / "trading-console"
    desktop = home / ".local" / "share" / "applications" / "trading-console.desktop"
    entry = _desktop_entries(desktop.read_text(encoding="utf-8"))["Desktop Entry"]
    assert entry["Exec"] == str(app_dir / "trading-console")  # absolute: works without ~/.local/bin on PATH
    assert (home / ".local" / "bin" / "trading-console").resolve() == (app_dir / "trading-console").resolve()
    assert (home / ".local/share/icons/hicolor/256x256/apps/trading-console.png").is_file()
    assert (home / ".local/share/icons/hicolor/scalable/apps/trading-console.svg").is_file()

    run("--uninstall")
    assert not app_dir.exists() and not desktop.exists()
    assert not (home / ".local" / "bin" / "trading-console").exists()
    assert not (home / ".local/share/icons/hicolor/256x256/apps/trading-console.png").exists()
    assert (data / "journal.sqlite").read_text(encoding="utf-8") == "keep me"


def test_app_icon_has_every_size(qtbot: object) -> None:
    from console.app import app_icon

    icon = app_icon()
    assert not icon.isNull()
    assert max(s.width() for s in icon.availableSizes()) == max(SIZES)
