"""Pacing for outbound channels: a token bucket, exponential backoff, Retry-After."""

from __future__ import annotations

from collections.abc import Callable, Mapping


class TokenBucket:
    """At most ``capacity`` requests at once, refilled at ``rate_per_s``.

    ``monotonic`` is injected so tests can run minutes of pacing without waiting.
    """

    def __init__(self, rate_per_s: float, capacity: float, monotonic: Callable[[], float]) -> None:
        if rate_per_s <= 0 or capacity < 1:
            raise ValueError("a token bucket needs a positive rate and room for one token")
        self.rate = rate_per_s
        self.capacity = capacity
        self._now = monotonic
        self._tokens = capacity
        self._at = monotonic()

    def _refill(self) -> None:
        now = self._now()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def wait_time(self) -> float:
        """Seconds until a token is available (0 when one is)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self) -> None:
        self._refill()
        self._tokens -= 1


def per_minute_bucket(per_min: float, monotonic: Callable[[], float]) -> TokenBucket:
    """A short burst (a quarter of the minute's budget, 1 to 5) then ``per_min`` spread evenly."""
    return TokenBucket(per_min / 60.0, float(max(1, min(5, int(per_min // 4)))), monotonic)


def backoff(attempt: int, base_s: float, cap_s: float) -> float:
    """1st retry waits base, then 2x, 4x ... up to cap."""
    return min(cap_s, base_s * (2 ** max(0, attempt - 1)))


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds (the form Slack and Discord send); None when absent or a date."""
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if value >= 0 else None
