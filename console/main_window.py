"""The main window: top bar and big buttons fixed, everything else in movable docks.

The docks live in an inner QMainWindow used as a plain widget (`console.dock_area`),
so no layout the operator makes (or restores) can cover the trading state or EMERGENCY STOP.
The window wires the panels, the menus and the bridge's deliveries. Operator commands
are called inside the click handlers themselves: the engine is HALTED before the
handler returns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QMainWindow,
    QMessageBox,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from console.dock_area import DockArea
from console.menus import build_file_and_help_menus
from console.operator_actions import OperatorActions
from console.performance_dock import PerformanceDock
from console.screen_fit import DockAutoSizer, fit_to_screen
from engine.activation.stages import STAGE_LABELS
from engine.core.model import Fill, MarketTick, Order, Position, RuleValue
from widgets import format as fmt
from widgets.alert_feed import AlertFeed
from widgets.approval_dialog import ApprovalsPanel
from widgets.big_buttons import BigButtons
from widgets.dialogs import CloseAllDialog, ResumeDialog
from widgets.equity_chart import EquityChart
from widgets.gauges import GaugePanel
from widgets.price_chart import PriceChart
from widgets.theme import apply_theme
from widgets.top_bar import TopBar
from widgets.trading_tables import FillsTable, OrdersTable, PositionsTable, fill_row, order_row, position_row

if TYPE_CHECKING:
    from engine.app.console_view import ConsoleEngine as Engine
    from engine.core.events import (
        AlertAcknowledged,
        AlertEvent,
        ConnectionEvent,
        EquityEvent,
        ProgressEvent,
        StageEvent,
        StateChanged,
    )

log = logging.getLogger(__name__)

EMERGENCY_SHORTCUTS = ("Ctrl+Shift+X", "F12")


class MainWindow(QMainWindow):
    shutdownRequested = Signal(str)  # the policy chosen for the venue when the window closes

    def __init__(self, engine: Engine, store: QSettings | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.settings = engine.settings
        self.operator = engine.settings.engine.operator
        self.store = store if store is not None else QSettings()
        self.setWindowTitle(f"Trading Console — {engine.venue.name} ({_mode(engine)})")
        self._close_allowed = False
        self._closing = False
        self.close_all_dialog: CloseAllDialog | None = None
        self.resume_dialog: ResumeDialog | None = None
        self.message_box: QMessageBox | None = None
        self.operator_actions = OperatorActions(engine, self)  # every command goes through the OperatorAPI

        self.top_bar = TopBar()
        self.top_bar.set_venue(engine.venue.name, _mode(engine))
        self.on_stage_changed(None)
        self.big_buttons = BigButtons()
        self.big_buttons.emergencyStop.connect(self.emergency_stop)
        self.big_buttons.closeAllRequested.connect(self.request_close_all)
        self.big_buttons.resumeRequested.connect(self.request_resume)
        self.big_buttons.pullStopsRequested.connect(self.operator_actions.request_pull_stops)
        self.big_buttons.closeAllRetry.connect(self.operator_actions.retry_close_all)
        self.big_buttons.closeAllStop.connect(self.operator_actions.stop_close_all)

        self.positions = PositionsTable(now=engine.clock.now)
        self.positions.closeRequested.connect(self.request_close_position)
        self.positions.selectedSymbol.connect(self._symbol_chosen)
        self._chart_chosen = False  # until the operator picks a row, the price chart follows what is held
        self.orders = OrdersTable()
        self.orders.cancelRequested.connect(self.cancel_order)
        self.fills = FillsTable()
        self.equity_chart = EquityChart()
        self.price_chart = PriceChart()
        self.gauges = GaugePanel(columns=2)
        self.alerts = AlertFeed()
        self.alerts.acknowledged.connect(self._queue_alert_ack)
        self._alert_acks: list[str] = []
        self.approvals_panel = ApprovalsPanel()
        self.performance = PerformanceDock(engine.journal, engine.settings, engine.clock.now, engine.bus, self,
                                           active=lambda: not engine.stopped.is_set())
        self.approvals: Any = None  # console.approvals_ui.ApprovalsController, set by console.app
        self.wizard: Any = None  # console.wizard.WizardLauncher, set by console.app

        self.dock_host = DockArea(
            (
                ("positions", "Positions", self.positions),
                ("gauges", "Risk", self.gauges),
                ("equity", "Equity and daily P&&L", self.equity_chart),
                ("price", "Price", self.price_chart),
                ("alerts", "Alerts", self.alerts),
                ("orders", "Open orders", self.orders),
                ("fills", "Fills", self.fills),
                ("approvals", "Approvals", self.approvals_panel),
                ("performance", "Performance", self.performance.view),
            ),
            scrolled=frozenset({"gauges"}),
        )
        self.docks = self.dock_host.docks

        # The command strip (state, equity, P&L and the big buttons) is fixed above the docks and is
        # never a dock: no layout the operator makes or restores can hide, cover or squeeze it. The docks'
        # small minimum (console.dock_area) keeps the window inside the screen (which is what pushed
        # EMERGENCY STOP off the right edge before).
        self.command_strip = QWidget()
        self.command_strip.setObjectName("commandStrip")
        strip = QHBoxLayout(self.command_strip)
        strip.setContentsMargins(0, 0, 0, 0)
        strip.setSpacing(0)
        strip.addWidget(self.top_bar, 1)
        self.big_buttons.setObjectName("bigButtonColumn")
        self.big_buttons.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        strip.addWidget(self.big_buttons, 0)
        self.dock_host.setMinimumSize(320, 200)
        central = QWidget()
        v = QVBoxLayout(central)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(0)
        v.addWidget(self.command_strip)
        v.addWidget(self.dock_host, 1)
        self.setCentralWidget(central)

        self._build_menus()
        self.shortcuts = []
        for seq in EMERGENCY_SHORTCUTS:
            sc = QShortcut(QKeySequence(seq), self)
            sc.setContext(Qt.ShortcutContext.ApplicationShortcut)  # works even from a floating dock
            sc.activated.connect(self.emergency_stop)
            self.shortcuts.append(sc)
        self.big_buttons.emergency_button.setToolTip(
            self.big_buttons.emergency_button.toolTip() + f"\nShortcut: {' or '.join(EMERGENCY_SHORTCUTS)}"
        )
        self.show_state(engine.risk.state.value, getattr(engine.risk, "state_reason", ""))
        self._shown_once = False
        self._restored = self.restore_layout()
        fit_to_screen(self, restored=self._restored)
        self.dock_sizer = DockAutoSizer(
            self, list(self.docks.values()), self.dock_host.size_docks, enabled=not self._restored
        )

    # ---- layout --------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            if not self._restored:
                QTimer.singleShot(0, self.dock_host.size_docks)

    def reset_layout(self) -> None:
        self.dock_host.reset()
        self.gauges.setVisible(True)
        self.dock_sizer.reset()

    def save_layout(self) -> None:
        s = self.store
        s.setValue("layout/docks", self.dock_host.layout_state())
        s.setValue("layout/geometry", self.saveGeometry())
        for key, table in (("positions", self.positions), ("orders", self.orders), ("fills", self.fills)):
            s.setValue(f"layout/header_{key}", QByteArray(table.header_state()))
        s.setValue("view/theme", self.theme_name)
        s.sync()

    def restore_layout(self) -> bool:
        s = self.store
        geometry = s.value("layout/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        for key, table in (("positions", self.positions), ("orders", self.orders), ("fills", self.fills)):
            header = s.value(f"layout/header_{key}")
            if isinstance(header, QByteArray):
                table.restore_header_state(bytes(header.data()))
        return self.dock_host.restore_layout_state(s.value("layout/docks"))

    # ---- menus ---------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        view = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        self.reset_layout_action = QAction("Reset layout", self)
        self.reset_layout_action.triggered.connect(self.reset_layout)
        view.addAction(self.reset_layout_action)
        view.addSeparator()
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        current = str(QApplication.instance().property("theme") or "dark")  # type: ignore[union-attr]
        for name, label in (("dark", "Dark theme"), ("light", "Light theme")):
            act = QAction(label, self, checkable=True)
            act.setChecked(name == current)
            act.triggered.connect(lambda _=False, n=name: self.set_theme(n))
            group.addAction(act)
            view.addAction(act)
            self.theme_actions[name] = act
        trading = self.menuBar().addMenu("&Trading")
        stop = QAction("EMERGENCY STOP", self)
        stop.setShortcutVisibleInContextMenu(True)
        stop.triggered.connect(self.emergency_stop)
        trading.addAction(stop)
        trading.addAction("Close all…").triggered.connect(self.request_close_all)
        trading.addAction("Resume…").triggered.connect(self.request_resume)
        # connected by console.app to console.wizard (the window knows no wizard internals)
        self.wizard_action = QAction("Activation wizard…", self)
        self.wizard_action.setToolTip("Venue, credentials, risk limits and the evidence for the next stage")
        activation = self.menuBar().addMenu("&Activation")
        activation.addAction(self.wizard_action)
        build_file_and_help_menus(self)
        from console.fleet import connect_attach_action  # File → Attach to engine… opens the fleet window

        connect_attach_action(self)

    @property
    def theme_name(self) -> str:
        return str(QApplication.instance().property("theme") or "dark")  # type: ignore[union-attr]

    def set_theme(self, name: str) -> None:
        apply_theme(QApplication.instance(), name)  # type: ignore[arg-type]
        self.theme_actions[name].setChecked(True)
        self.store.setValue("view/theme", name)

    # ---- operator commands (console.operator_actions: all through the OperatorAPI) ---------------
    def emergency_stop(self, *_args: object) -> None:
        """One click, no dialog: the engine is HALTED when this returns."""
        self.operator_actions.emergency_stop()

    def request_close_all(self) -> None:
        self.operator_actions.request_close_all()

    def request_resume(self) -> None:
        self.operator_actions.request_resume()

    def _resume_confirmed(self, reason: str) -> None:
        self.operator_actions.resume_confirmed(reason)

    def request_close_position(self, symbol: str) -> None:
        self.operator_actions.request_close_position(symbol)

    def cancel_order(self, client_id: str) -> None:
        self.operator_actions.cancel_order(client_id)

    def _inform(self, title: str, text: str, icon: QMessageBox.Icon = QMessageBox.Icon.Warning) -> None:
        self.operator_actions.inform(title, text, icon)

    def select_symbol(self, symbol: str) -> None:
        self.price_chart.set_symbol(symbol)
        self.docks["price"].setWindowTitle(f"Price — {symbol}")

    def _symbol_chosen(self, symbol: str) -> None:
        self._chart_chosen = True
        self.select_symbol(symbol)

    def _follow_position(self, changed: dict[str, Position | None]) -> None:
        """Show a held symbol (the one that just opened) unless the chart already shows one or the
        operator chose: a position's stop and entry lines are what an operator looks for."""
        held = self.positions.model.keys()
        if self._chart_chosen or not held or self.price_chart.symbol() in held:
            return
        opened = [s for s, p in changed.items() if p is not None and s in held]
        self.select_symbol(opened[-1] if opened else sorted(held)[0])

    # ---- immediate deliveries from the bridge --------------------------------------------------
    def show_state(self, state: str, reason: str = "") -> None:
        self.top_bar.set_state(state, reason)
        self.big_buttons.set_state(state)

    def on_stage_changed(self, ev: StageEvent | None) -> None:
        stage = ev.stage if ev is not None else self.engine.stage_manager.stage
        self.top_bar.set_stage(STAGE_LABELS.get(stage, stage))

    def on_state_changed(self, ev: StateChanged) -> None:
        self.show_state(ev.new.value, ev.reason)

    def on_alert(self, ev: AlertEvent) -> None:
        self.alerts.add_alert(ev.alert_id, ev.level, ev.message, ev.ts, code=ev.code)

    def _queue_alert_ack(self, alert_id: str) -> None:
        # "Acknowledge all" emits one signal per alert: collect them into one journaled, audited act
        if not self._alert_acks:
            QTimer.singleShot(0, self._send_alert_acks)
        self._alert_acks.append(alert_id)

    def _send_alert_acks(self) -> None:
        ids, self._alert_acks = self._alert_acks, []
        center = self.engine.alert_center
        if len(ids) == 1:
            center.acknowledge(ids[0], self.operator)
        elif ids:
            center.acknowledge_many(ids, self.operator)

    def on_alert_acknowledged(self, ev: AlertAcknowledged) -> None:
        for alert_id in ev.alert_ids:  # acknowledged elsewhere (or echoed back): mark without re-sending
            self.alerts.acknowledge(alert_id, notify=False)

    def on_progress(self, ev: ProgressEvent) -> None:
        self.operator_actions.on_progress(ev)  # with the venue's refusals, Retry and Stop

    # ---- coalesced deliveries from the bridge (~20 Hz) -----------------------------------------
    def show_prices(self, prices: dict[str, MarketTick]) -> None:
        chart = self.price_chart
        for sym, tick in prices.items():
            chart.append_price(sym, tick.ts, float(tick.last))
        if chart.symbol() is None and prices:
            fmt.register_instruments(self.engine.instruments)  # prices and sizes in each instrument's precision
            self.select_symbol(next(iter(prices)))
        pf = self.engine.portfolio  # the equity figure follows the market, not the 5 s samples
        self.top_bar.set_equity(pf.equity)
        self.top_bar.set_day_pnl(pf.day_pnl, pf.day_pnl_pct)

    def show_positions(self, changed: dict[str, Position | None]) -> None:
        for sym, p in changed.items():
            if p is None:
                self.positions.remove(sym)
                self.price_chart.set_levels(sym, None, None, None)
            else:
                p = self.engine.portfolio.position(sym) or p  # the book also knows the stop and target
                self.positions.upsert(position_row(p))
                # the SL line only where a stop really rests or is watched
                protection = getattr(p, "protection", None)
                stop = p.stop_loss if protection is None else (getattr(p, "protection_price", None) or p.stop_loss)
                self.price_chart.set_levels(sym, stop, p.take_profit, p.avg_price,  # type: ignore[arg-type]
                                            stop_status=protection)
        self.positions._fit_once()
        self._follow_position(changed)
        self.big_buttons.set_unprotected(self.positions.unprotected_symbols(), self.positions.row_count())

    def show_orders(self, orders: Sequence[Order]) -> None:
        for o in orders:
            if o.status.is_terminal:
                self.orders.remove(o.client_id)
            else:
                self.orders.upsert(order_row(o))
        self.orders._fit_once()

    def show_fills(self, fills: Sequence[tuple[Fill, Order]]) -> None:
        for f, _o in fills:
            self.fills.upsert(fill_row(f))
            self.price_chart.add_fill(f.symbol, f.ts, f.side.value, float(f.price), float(f.qty))
        self.fills._fit_once()

    def show_equity(self, points: Sequence[EquityEvent]) -> None:
        for ev in points:
            self.equity_chart.append(ev.ts, float(ev.equity))

    def show_daily_pnl(self, days: Sequence[tuple[date, float]]) -> None:
        self.equity_chart.set_daily_pnl(days)

    def show_risk(self, rules: Sequence[RuleValue]) -> None:
        self.gauges.set_rules(rules)

    def show_connection(self, ev: ConnectionEvent) -> None:
        self.top_bar.set_connection(ev.connected, ev.latency_ms, ev.data_age_s)

    # ---- closing -------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if self._close_allowed:
            self.save_layout()
            event.accept()
            return
        event.ignore()
        if self._closing:
            return
        self.operator_actions.request_quit()  # keeps protection by default; asks again mid close-all

    def _close_chosen(self, policy: str | None) -> None:
        if policy is None:
            return  # the operator stays
        self._closing = True
        self.save_layout()
        self.shutdownRequested.emit(policy)

    def finish_close(self) -> None:
        """Called once the engine has shut down: the window may go."""
        self._close_allowed = True
        self.close()


def _mode(engine: Engine) -> str:
    mode: Any = engine.venue.mode
    return str(getattr(mode, "value", mode))


__all__ = ["MainWindow"]
