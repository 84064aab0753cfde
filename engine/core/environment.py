"""Environment check: a key must match the endpoint it is used against, and both the chosen mode.

A paper or testnet key sent to a live endpoint fails at best; a live key sent to a test
endpoint means someone believes they are testing with real credentials. Both are refused
before anything is stored or connected, with a message saying what to change. Pure
functions: no network, no secrets in messages (only the key's kind is ever named).
"""

from __future__ import annotations

from urllib.parse import urlparse

VENUES = ("simulated", "binance", "alpaca")
MODES = ("simulated", "paper", "testnet", "live")
KEY_KINDS = ("paper", "testnet", "live")

# (venue, mode) -> the endpoint the wizard proposes
DEFAULT_ENDPOINTS: dict[tuple[str, str], str] = {
    ("binance", "testnet"): "https://testnet.binance.vision",
    ("binance", "live"): "https://api.binance.com",
    ("alpaca", "paper"): "https://paper-api.alpaca.markets",
    ("alpaca", "live"): "https://api.alpaca.markets",
}

# Hosts whose environment is known. Anything else cannot be told apart and is refused.
_HOSTS: dict[str, dict[str, str]] = {
    "binance": {
        "api.binance.com": "live",
        "api1.binance.com": "live",
        "api2.binance.com": "live",
        "api3.binance.com": "live",
        "api4.binance.com": "live",
        "api-gcp.binance.com": "live",
        "stream.binance.com": "live",
        "testnet.binance.vision": "testnet",
        "stream.testnet.binance.vision": "testnet",
        "demo-api.binance.com": "testnet",
    },
    "alpaca": {
        "api.alpaca.markets": "live",
        "paper-api.alpaca.markets": "paper",
    },
}
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_TEST_ENVIRONMENTS = frozenset({"paper", "testnet"})
_LABEL = {"binance": "Binance", "alpaca": "Alpaca", "simulated": "Simulated"}


def classify_endpoint(venue: str, endpoint_url: str) -> str:
    """"live", "paper", "testnet", "local" (127.0.0.1: a test double) or "unknown"."""
    host = (urlparse(endpoint_url if "//" in endpoint_url else f"//{endpoint_url}").hostname or "").lower()
    if host in _LOCAL_HOSTS:
        return "local"
    return _HOSTS.get(venue, {}).get(host, "unknown")


def infer_key_kind(venue: str, key: str) -> str | None:
    """Where the venue tells: Alpaca paper keys start with PK, live keys with AK."""
    if venue == "alpaca":
        k = key.strip().upper()
        if k.startswith("PK"):
            return "paper"
        if k.startswith("AK"):
            return "live"
    return None


def _env_word(env: str) -> str:
    return "LIVE" if env == "live" else "PAPER/TESTNET"


def environment_check(venue: str, mode: str, key_kind: str, endpoint_url: str) -> tuple[bool, str]:
    """(ok, message). Refuses test keys against live endpoints, live keys against test endpoints,
    and endpoints that do not belong to the chosen mode."""
    if venue not in VENUES:
        return False, f"unknown venue {venue!r}; venues are {', '.join(VENUES)}"
    if mode not in MODES:
        return False, f"unknown mode {mode!r}; modes are {', '.join(MODES)}"
    if venue == "simulated" or mode == "simulated":
        if venue != mode:
            return False, "the simulated venue runs only in simulated mode"
        return True, "Simulated venue: no keys and no network needed."
    name = _LABEL[venue]
    env = classify_endpoint(venue, endpoint_url)
    if env == "unknown":
        return False, (
            f"Refused: {endpoint_url or '(no endpoint)'} is not a known {name} endpoint, so live cannot be "
            f"told from paper/testnet. Use the proposed endpoint for {name} {mode}."
        )
    if env == "local":
        env = mode  # a local test double stands for whichever environment was chosen
    elif (env == "live") != (mode == "live"):
        return False, (
            f"Refused: {endpoint_url} is a {_env_word(env)} endpoint but the mode is {name} {mode}. "
            f"Pick the endpoint that matches the mode."
        )
    if key_kind not in KEY_KINDS:
        return False, "Say whether the API key is a live key or a paper/testnet key."
    if key_kind == "live" and env in _TEST_ENVIRONMENTS:
        return False, (
            f"Refused: a LIVE key against the {name} {_env_word(env)} endpoint {endpoint_url}. "
            f"Use a {env} key here, or choose {name} live."
        )
    if key_kind in _TEST_ENVIRONMENTS and env == "live":
        return False, (
            f"Refused: a {key_kind.upper()} key against the {name} LIVE endpoint {endpoint_url}. "
            f"Use a live key, or choose {name} {'paper' if venue == 'alpaca' else 'testnet'}."
        )
    return True, f"OK: a {key_kind} key against the {name} {env} endpoint {endpoint_url}."
