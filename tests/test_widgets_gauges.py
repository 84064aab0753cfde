"""The risk gauges, driven with plain rule values (offscreen Qt): state by utilisation and the rule's
own warn level, text and tooltip that explain the limit, formatting by unit, the state colour
painted, and a panel that lays gauges out in columns and updates them in place.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from engine.core.model import RuleValue
from widgets.gauges import GaugePanel, RiskGauge, format_rule_value
from widgets.theme import current_palette

pytestmark = pytest.mark.gui


# ---- gauges -------------------------------------------------------------------------------------


def rule(value: float, limit: float = 0.05, unit: str = "%", warn_at: float = 0.8, **kw) -> RuleValue:
    return RuleValue(
        name=kw.get("name", "daily_loss"),
        label=kw.get("label", "Daily loss"),
        value=value,
        limit=limit,
        unit=unit,
        description=kw.get("description", "Loss since 00:00 UTC as a share of equity; at the limit, halt."),
        warn_at=warn_at,
    )


@pytest.mark.parametrize(
    ("value", "expected", "word"),
    [
        (0.012, "ok", "OK"),
        (0.039, "ok", "OK"),
        (0.04, "warn", "WARN"),  # exactly warn_at (0.04 / 0.05 is 0.7999… in floats)
        (0.049, "warn", "WARN"),
        (0.05, "limit", "LIMIT"),
        (0.07, "limit", "LIMIT"),
    ],
)
def test_gauge_state_by_utilisation(qtbot, value, expected, word):
    gauge = RiskGauge(rule(value))
    qtbot.addWidget(gauge)
    assert gauge.state() == expected
    assert gauge.state_word() == word
    pal = current_palette()
    assert (
        gauge.colour().name()
        == QColor({"ok": pal.green, "warn": pal.amber, "limit": pal.red}[expected]).name()
    )


def test_gauge_respects_the_rules_own_warn_level(qtbot):
    gauge = RiskGauge(rule(0.031, warn_at=0.6))
    qtbot.addWidget(gauge)
    assert gauge.state() == "warn"
    gauge.set_rule(rule(0.029, warn_at=0.6))
    assert gauge.state() == "ok"


def test_gauge_text_and_tooltip_explain_the_limit(qtbot):
    gauge = RiskGauge(rule(0.012))
    qtbot.addWidget(gauge)
    assert gauge.value_text() == "1.20% / 5.00%"
    tip = gauge.toolTip()
    assert "Daily loss" in tip and "at the limit, halt" in tip
    assert "5.00%" in tip and "4.00%" in tip  # the limit and where amber starts
    assert "24% used" in tip  # the share of the limit used is a detail, on hover only
    assert "Daily loss" in gauge.accessibleName() and "OK" in gauge.accessibleName()


def test_gauge_reads_actual_over_limit_not_the_share_used(qtbot):
    # 0.27% lost against a 5% limit is 5% of the limit used: the gauge says 0.27%, not 5%
    gauge = RiskGauge(rule(0.0027))
    qtbot.addWidget(gauge)
    assert gauge.value_text() == "0.27% / 5.00%"
    assert gauge.accessibleName() == "Daily loss: 0.27% / 5.00%, OK"


def test_gauge_panel_puts_as_many_columns_as_fit(qtbot):
    panel = GaugePanel(columns=3)
    qtbot.addWidget(panel)
    panel.set_rules([rule(0.01, name=f"r{i}", label=f"Rule {i}") for i in range(5)])
    panel.resize(200, 600)
    panel.show()
    assert panel.columns() == 1
    panel.resize(400, 600)
    assert panel.columns() == 2
    panel.resize(1200, 600)
    assert panel.columns() == 3


def test_gauge_value_formatting_by_unit():
    assert format_rule_value(0.012, "%") == "1.20%"
    assert format_rule_value(0.0004, "%") == "0.04%"
    assert format_rule_value(3, "") == "3"
    assert format_rule_value(1234.5, "") == "1,234.50"
    assert format_rule_value(2.4, "/s") == "2.4/s"
    assert format_rule_value(45_250.5, "USDT") == "45,250.50 USDT"
    assert format_rule_value(45_250.5, "USDT", compact=True) == "45.3k USDT"


def test_gauge_without_a_limit_is_off_not_alarming(qtbot):
    gauge = RiskGauge(rule(3, limit=0, unit=""))
    qtbot.addWidget(gauge)
    assert gauge.state() == "ok" and gauge.state_word() == "OFF"
    assert gauge.value_text() == "3 / no limit"


def _count_near(img: QImage, colour: QColor, tol: int = 30) -> int:
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    arr = np.frombuffer(img.constBits(), dtype=np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    b, g, r = (arr[..., i].astype(int) for i in range(3))
    near = (abs(r - colour.red()) < tol) & (abs(g - colour.green()) < tol) & (abs(b - colour.blue()) < tol)
    return int(near.sum())


def test_gauge_paints_its_state_colour(qtbot):
    red = QColor(current_palette().red)
    at_limit = RiskGauge(rule(0.06))
    calm = RiskGauge(rule(0.005))
    for g in (at_limit, calm):
        qtbot.addWidget(g)
        g.resize(180, 165)
    assert _count_near(at_limit.grab().toImage(), red) > 200
    assert _count_near(calm.grab().toImage(), red) == 0


def test_gauge_panel_updates_gauges_in_place(qtbot):
    panel = GaugePanel(columns=2)
    qtbot.addWidget(panel)
    panel.set_rules(
        [rule(0.01, name="daily_loss"), rule(2, limit=5, unit="", name="positions", label="Positions")]
    )
    first = panel.gauge("daily_loss")
    second = panel.gauge("positions")
    assert first is not None and second is not None

    panel.set_rules(
        [
            rule(0.045, name="daily_loss"),
            rule(5, limit=5, unit="", name="positions", label="Positions"),
            rule(1.0, limit=10, unit="/s", name="order_rate", label="Order rate"),
        ]
    )
    assert panel.gauge("daily_loss") is first and panel.gauge("positions") is second
    assert panel.names() == ["daily_loss", "positions", "order_rate"]
    assert len(panel.findChildren(RiskGauge)) == 3
    assert first.state() == "warn" and second.state() == "limit"
    assert panel.worst_state() == "limit"
