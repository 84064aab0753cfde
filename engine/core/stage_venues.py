"""A stage allows only its venue modes: the Paper stage never reaches a real venue.

An engine at the Paper stage once ran `binance (live)` and placed orders. The modes a stage
allows are its `stages.<name>.venue_modes` within a fixed ceiling no config can widen:
Paper runs only the simulated venue; Testnet the simulated venue, Binance testnet and
Alpaca paper; the live stages whatever their venue_modes list (live, by default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.core.config_errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from engine.core.config import Settings

_ALL = frozenset({"simulated", "paper", "testnet", "live"})
STAGE_CEILING: dict[str, frozenset[str]] = {
    "paper": frozenset({"simulated"}),
    "testnet": frozenset({"simulated", "testnet", "paper"}),
    "live_micro": _ALL,
    "live_scaling": _ALL,
    "production": _ALL,
}
_LABEL = {"paper": "Paper", "testnet": "Testnet", "live_micro": "Live micro", "live_scaling": "Live scaling",
          "production": "Production"}  # fmt: skip


class StageVenueRefused(ConfigError):
    """The configured venue mode is not one the stage allows; nothing may trade."""


def venue_mode_of(settings: Settings) -> tuple[str, str | None]:
    """(field, mode) of the configured venue: ("engine.venue", "simulated"), ("venues.binance.mode", "live"),
    or ("venues.binance", None) when the venue has no section (and so no mode)."""
    venue = settings.engine.venue
    if venue == "simulated":
        return "engine.venue", "simulated"
    conf = settings.venues.of(venue)
    if conf is None:
        return f"venues.{venue}", None
    return f"venues.{venue}.mode", conf.mode.value


def allowed_modes(settings: Settings, stage: str) -> list[str]:
    """What `stage` allows, in the order its venue_modes list them."""
    if stage not in STAGE_CEILING:
        raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(STAGE_CEILING)})")
    ceiling = STAGE_CEILING[stage]
    return [m for m in settings.stages.stage(stage).venue_modes if m in ceiling]


def stage_venue_problem(settings: Settings, stage: str) -> ConfigProblem | None:
    """Why `stage` refuses the configured venue, or None when it allows it."""
    field, mode = venue_mode_of(settings)
    if mode is None:
        rule = f"is required when engine.venue is {settings.engine.venue!r}: its mode says testnet, paper or live"
        return ConfigProblem(field, "", rule)
    allowed = allowed_modes(settings, stage)
    if mode in allowed:
        return None
    venue = settings.engine.venue
    running = "the simulated venue" if venue == "simulated" else f"{venue} in {mode} mode"
    rule = (
        f"is not allowed at the {_LABEL[stage]} stage, which runs only {', '.join(allowed) or 'nothing'} "
        f"(the config asks for {running}); change {field} or move the engine to a stage that allows it"
    )
    if mode not in STAGE_CEILING[stage] and mode in settings.stages.stage(stage).venue_modes:
        rule += f" (stages.{stage}.venue_modes lists {mode!r}, which the {_LABEL[stage]} stage never allows)"
    return ConfigProblem(field, repr(mode), rule)


def check_stage_allows(settings: Settings, stage: str, file: str = "<config>") -> None:
    """Raise StageVenueRefused when the stage does not allow the configured venue mode."""
    problem = stage_venue_problem(settings, stage)
    if problem is not None:
        raise StageVenueRefused(file, [problem])


def running_venue_refusal(settings: Settings, stage: str, venue_name: str, mode: str) -> str | None:
    """For an engine already running (after a promote or a demote): why `stage` does not allow the
    venue it is connected to, or None. `mode` is the venue object's own mode ("testnet", "live"...)."""
    allowed = allowed_modes(settings, stage)
    if mode in allowed:
        return None
    return (f"the {_LABEL[stage]} stage runs only {', '.join(allowed) or 'nothing'}, but the engine is connected "
            f"to {venue_name} in {mode} mode: restart on a venue the stage allows")  # fmt: skip
