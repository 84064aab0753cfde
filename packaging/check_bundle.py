"""Check what the bundle holds, without starting it: the parts the smoke test never touches.

The smoke test runs the simulated venue, so a bundle missing ccxt.pro, alpaca-py or the
keyring backends would pass it and only fail in front of an operator connecting a real
venue. This reads the bundle's module archive and folders and names whatever is missing.

``python packaging/check_bundle.py [dist/trading-console]`` exits 1 on any problem.
"""

from __future__ import annotations

import sys
from pathlib import Path

NAME = "trading-console"

# modules imported lazily or chosen at run time, so an import-graph mistake would hide them
REQUIRED_MODULES = (
    "console.app",
    "engine.venues.simulated",
    "engine.venues.ccxt_venue",
    "engine.venues.alpaca_venue",
    "ccxt.async_support.binance",
    "ccxt.pro.binance",
    "alpaca.trading.client",
    "alpaca.data.historical",
    "keyring.backends.SecretService",
    "keyring.backends.libsecret",
    "keyring.backends.kwallet",
    "keyring.backends.chainer",
    "keyring.backends.fail",
    "secretstorage",
)
REQUIRED_FILES = (
    "resources/theme_dark.qss",
    "resources/theme_light.qss",
    f"resources/{NAME}.desktop",
    f"resources/icons/{NAME}.svg",
    f"resources/icons/{NAME}-256.png",
    "resources/config.example.toml",
    "resources/sounds/alert.wav",
)
REQUIRED_METADATA = ("trading_console-", "keyring-")  # keyring finds its backends through entry points
# one Qt binding: any of these in the bundle means an exclude was lost
FOREIGN = ("PyQt5", "PyQt6", "PySide2", "shiboken2", "tkinter", "_tkinter", "pytest", "uvloop")


def bundled_modules(exe: Path) -> set[str]:
    from PyInstaller.archive.readers import CArchiveReader

    return set(CArchiveReader(str(exe)).open_embedded_archive("PYZ.pyz").toc)


def problems(bundle: Path) -> list[str]:
    exe = bundle / NAME
    internal = bundle / "_internal"
    if not exe.is_file():
        return [f"{exe} is missing: run make installer"]
    found: list[str] = []
    modules = bundled_modules(exe)
    found += [f"module {m} is not bundled" for m in REQUIRED_MODULES if m not in modules]
    found += [f"{f} is not bundled" for f in REQUIRED_FILES if not (internal / f).is_file()]
    dist_infos = [p.name for p in internal.glob("*.dist-info")]
    for prefix in REQUIRED_METADATA:
        if not any(d.startswith(prefix) for d in dist_infos):
            found.append(f"no {prefix}*.dist-info (package metadata) in {internal}")
    for name in FOREIGN:
        if name in modules or any(m.startswith(name + ".") for m in modules) or (internal / name).exists():
            found.append(f"{name} is bundled but must not be")
    return found


def main(argv: list[str]) -> int:
    bundle = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "dist" / NAME
    found = problems(bundle)
    for p in found:
        print(f"bundle check: {p}", file=sys.stderr)
    if not found:
        print(f"bundle check passed: {bundle}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
