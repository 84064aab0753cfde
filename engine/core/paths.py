"""Where files live: platformdirs, or everything under TRADING_CONSOLE_HOME.

Every folder is owner-only (0700): the journal is trading history, the config folder holds
the journal's identity, the audit anchor and maybe an audit key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP = "trading-console"
_DIR_MODE = 0o700


def _private_dir(path: Path) -> None:
    path.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777
    if mode & ~_DIR_MODE:  # created looser by an older version, or by hand: tighten, never loosen
        os.chmod(path, mode & _DIR_MODE)


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    data_dir: Path
    log_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def journal_file(self) -> Path:
        return self.data_dir / "journal.sqlite"

    @property
    def journal_sidecar(self) -> Path:
        """The journal's identity, kept apart from it: a journal that vanishes is noticed."""
        return self.config_dir / "journal-identity.json"

    @property
    def audit_anchor(self) -> Path:
        """The audit chain's head, kept apart from the journal: a cut-off chain is noticed."""
        return self.config_dir / "audit-anchor.json"

    @property
    def audit_key_dir(self) -> Path:
        """Audit keys where no keyring service runs (one 0600 file per journal id)."""
        return self.config_dir / "audit-keys"

    @property
    def archive_dir(self) -> Path:
        """Journals, sidecars and anchors set aside by an explicit new start."""
        return self.data_dir / "archive"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "trading-console.log"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    def ensure(self) -> AppPaths:
        for d in (self.config_dir, self.data_dir, self.log_dir):
            _private_dir(d)
        return self


def app_paths() -> AppPaths:
    home = os.environ.get("TRADING_CONSOLE_HOME")
    if home:
        root = Path(home)
        return AppPaths(root / "config", root / "data", root / "logs")
    return AppPaths(
        Path(platformdirs.user_config_dir(APP)),
        Path(platformdirs.user_data_dir(APP)),
        Path(platformdirs.user_log_dir(APP)),
    )
