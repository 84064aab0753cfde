"""Periodic work on the engine clock: housekeeping, approvals, stage evidence, alert rules, protection,
account reads, reconciliation. A fast simulator runs it at simulated instants (deterministic)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.core.events import ConnectionEvent, RiskEvent
from engine.core.model import AlertLevel

if TYPE_CHECKING:
    from engine.app.kernel import Engine

ACCOUNT_EVERY_S = 60.0  # cash and fee-asset marks read back from the venue
MAX_SPEED_EVIDENCE_S = 1800.0  # --speed max: stage evidence at least every 30 simulated minutes
MAX_SPEED_TICK_S = 15.0  # --speed max: the once-a-second checks every 15 simulated seconds


class Periodic:
    def __init__(self, engine: Engine) -> None:
        self.e = engine

    def schedule(self) -> None:
        """Every periodic job on the engine clock: a fast simulator runs them on simulated time."""
        t = self.e.timers
        # As fast as the simulator goes, the once-a-second checks run every 15 simulated seconds: per
        # simulated second they would cost more than the trading they watch (nothing goes stale there).
        second = MAX_SPEED_TICK_S if self.e._max_speed else 1.0
        t.every("housekeeping", second, self._housekeeping)
        t.every("approvals", second, self.e.approval_gate.poll)
        t.every("stage_evidence", self._evidence_period, self._stage_evidence)
        t.every("alert_rules", second, self.e.alert_center.check)
        t.every("protection", second, self.e.protection.check)
        reconciler = self.e.reconciler
        if self.e.account.enabled:
            t.every("account", ACCOUNT_EVERY_S, self.e.account.periodic)
        if reconciler is not None and reconciler.enabled and reconciler.interval_s and reconciler.interval_s > 0:
            t.every("reconcile", reconciler.interval_s, reconciler.periodic)

    async def _housekeeping(self) -> None:
        """Checks that must run even when no market data arrives (on the engine clock)."""
        now = self.e.clock.now()
        last = max((t.ts for t in self.e.market.ticks.values()), default=self.e.started_at or now)
        self.e.breakers.on_data_age((now - last).total_seconds())
        self.e.breakers.on_clock(self.e.clock.monotonic())
        self.e.stage_manager.refresh_limits()  # the size schedule steps up with time
        self.e.daily_summary.check(now)  # engine-clock time: a fast simulator gets one per day
        ping = await self.e.venue.ping_ms()
        self.e.health.on_ping(ping)
        age = (now - last).total_seconds()
        self.e.bus.publish(ConnectionEvent(now, self.e.venue.name, self.e.connected, ping, age))
        self.e.bus.publish(RiskEvent(now, tuple(self.e.rule_values())))

    def _evidence_period(self) -> float:
        """The red-flag period; as fast as the simulator goes, at least every 30 simulated minutes
        (each evaluation costs tens of ms of pandas: per simulated minute it would be most of a backtest)."""
        period = self.e.settings.stages.red_flags.check_every_s
        if self.e._max_speed:
            return max(period, MAX_SPEED_EVIDENCE_S)
        return period

    async def _stage_evidence(self) -> None:
        """One evaluation of the stage's evidence feeds both the red flags and the criterion alerts.

        As fast as the simulator goes, it runs inline: a thread hop per simulated minute would
        make the run wait on the loop's selector far more than on the work itself."""
        sm = self.e.stage_manager
        if self.e._max_speed:
            self.e.journal.flush()
            ev = sm.evaluate()
        else:
            ev = await sm.evaluate_async()
        sm.apply_red_flags(ev)
        self.e.alert_center.rules.on_evaluation(ev)

    def failed(self, name: str, exc: Exception) -> None:
        self.e.alert(AlertLevel.WARNING, "periodic_failed", f"periodic job {name} failed: {type(exc).__name__}: {exc}",
                   key=f"periodic:{name}")  # fmt: skip
