"""Where exports are offered by default: never the process's current directory.

The operator's documents folder (platformdirs) when it exists, else the app's reports
folder in the data directory; under TRADING_CONSOLE_HOME always the latter, so tests and
portable installs never write into the real home.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from engine.core.paths import app_paths


def default_export_dir() -> Path:
    if not os.environ.get("TRADING_CONSOLE_HOME"):
        documents = Path(platformdirs.user_documents_dir())
        if documents.is_dir():
            return documents / "Trading Console"
    return app_paths().reports_dir


def ensure_export_dir() -> Path:
    """The folder, created (0700) when missing; the data folder's reports if it cannot be made."""
    folder = default_export_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        folder = app_paths().reports_dir
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder
