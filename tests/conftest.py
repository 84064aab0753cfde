"""Shared pytest setup.

Qt must never need a display: the platform is chosen before anything imports Qt.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
