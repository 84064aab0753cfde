"""What the chart tests share: a time origin, minute-spaced timestamps, and the data a pyqtgraph
curve really holds (before downsampling and clipping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def minutes(n: int) -> list[datetime]:
    return [T0 + timedelta(minutes=i) for i in range(n)]


def curve_xy(item: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = item.getOriginalDataset()
    return (np.empty(0), np.empty(0)) if x is None else (x, y)
