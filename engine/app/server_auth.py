"""Who may talk to the control server, and how fast a stranger may keep guessing.

Loopback: a bearer token from the per-install 0600 file, compared in constant time.
Any other address: mutual TLS; the handshake itself refuses a client without a
certificate from our CA, so a request that arrives carries a verified certificate.
Failed attempts are counted per peer; past the limit the peer gets 429 for a while
without the token even being looked at, and each lock-out is journaled once.
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from dataclasses import dataclass, field

MAX_FAILURES = 5
WINDOW_S = 60.0
LOCKOUT_S = 60.0



def token_matches(header: str | None, token: str | None) -> bool:
    if not token or not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


def peer_common_name(peercert: dict | None) -> str:
    """The CN of a verified client certificate (the operator it was made for), or ''."""
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


@dataclass
class FailedAuthGuard:
    """Failed attempts per peer in a sliding window; a locked peer is refused at once."""

    max_failures: int = MAX_FAILURES
    window_s: float = WINDOW_S
    lockout_s: float = LOCKOUT_S
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)

    def locked(self, peer: str) -> float:
        """Seconds left in this peer's lock-out (0 when it may try)."""
        until = self._locked_until.get(peer)
        if until is None:
            return 0.0
        left = until - time.monotonic()
        if left <= 0:
            del self._locked_until[peer]
            return 0.0
        return left

    def fail(self, peer: str) -> bool:
        """Count a failure; True when this one locks the peer out."""
        now = time.monotonic()
        seen = self._failures.setdefault(peer, deque())
        seen.append(now)
        while seen and seen[0] < now - self.window_s:
            seen.popleft()
        if len(seen) >= self.max_failures:
            seen.clear()
            self._locked_until[peer] = now + self.lockout_s
            return True
        if len(self._failures) > 10_000:  # a scan from many addresses must not grow memory forever
            self._failures.clear()
        return False
