"""The activation wizard's stage pages: the evidence for the next stage (measured off the loop by
``StageManager.evaluate_async``), the typed confirmation for live stages, and the summary whose
Finish saves the setup and may promote. The promotion goes through the OperatorAPI, scheduled with
``asyncio.ensure_future``; the page shows the engine's answer, and a refusal names every failing
criterion and by how much.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWizardPage,
)

from console.wizard_common import CONFIRM_PHRASE, Page, show_verdict, text_label
from engine.activation.stages import STAGE_LABELS, Criterion, Evaluation
from widgets import format as fmt
from widgets import theme

if TYPE_CHECKING:
    from console.wizard import ActivationWizard
    from engine.app.console_view import ConsoleEngine as Engine

log = logging.getLogger(__name__)


def show_value(c: Criterion, value: float | None) -> str:
    if value is None:
        return "not measured"
    if c.unit == "fraction":
        return fmt.fmt_fraction_pct(value)
    if c.unit == "days":
        return f"{value:.1f} days" if value != 1 else "1 day"
    return f"{value:g}"


class EvidenceTable(QTableWidget):
    HEADERS = ("Criterion", "Measured", "Needs", "Result")

    def __init__(self) -> None:
        super().__init__(0, len(self.HEADERS))
        self.setHorizontalHeaderLabels(list(self.HEADERS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        h = self.horizontalHeader()
        h.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

    def set_criteria(self, criteria: list[Criterion], red_flag: bool = False) -> None:
        pal = theme.current_palette()
        self.setRowCount(len(criteria))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for row, c in enumerate(criteria):
            result = "✔ PASS" if c.passed else ("✖ RED FLAG" if red_flag else "✖ FAIL")
            cells = (c.description, show_value(c, c.value), f"{c.comparison} {show_value(c, c.threshold)}", result)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col in (1, 2):
                    item.setTextAlignment(right)
                if col == 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    item.setBackground(QColor(pal.green if c.passed else pal.red))
                    item.setForeground(QColor(pal.on_strong))
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if col == 0:
                    item.setToolTip(c.explain())
                self.setItem(row, col, item)

        # exactly as tall as its rows: the verdict below stays next to them, not under an empty band
        height = self.horizontalHeader().sizeHint().height() + self.verticalHeader().length()
        self.setFixedHeight(height + 2 * self.frameWidth() + 6)

    def results(self) -> list[str]:
        return [self.item(r, 3).text() for r in range(self.rowCount())]


class EvidencePage(QWizardPage):
    def __init__(self, wiz: ActivationWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Evidence")
        self.table = EvidenceTable()
        self.flags = EvidenceTable()
        self.flags_caption = QLabel("RED FLAGS TRIPPED")
        self.flags_caption.setProperty("role", "caption")
        self.verdict = text_label(name="evidenceVerdict")
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.flags_caption)
        layout.addWidget(self.flags)
        layout.addWidget(self.verdict)
        layout.addStretch(1)
        self._task: asyncio.Future[Evaluation] | None = None

    def initializePage(self) -> None:
        stage = self.wiz.engine.stage_manager.stage
        target = self.wiz.target_stage
        to = f" → {STAGE_LABELS[target]}" if target else " (last stage)"
        self.setSubTitle(f"Every criterion of the {STAGE_LABELS[stage]} stage{to}, measured from the journal.")
        self.wiz.evaluation = None
        self.table.setRowCount(0)
        self.flags.setVisible(False)
        self.flags_caption.setVisible(False)
        show_verdict(self.verdict, None, "Measuring…")
        self._task = asyncio.ensure_future(self.wiz.engine.stage_manager.evaluate_async())
        self._task.add_done_callback(self._measured)
        self.completeChanged.emit()

    def _measured(self, task: asyncio.Future[Evaluation]) -> None:
        if task is not self._task:
            return
        try:
            ev = task.result()
        except Exception as exc:
            log.exception("evaluation failed")
            show_verdict(self.verdict, False, f"The evidence could not be measured: {exc}")
            return
        self.show_evaluation(ev)

    def show_evaluation(self, ev: Evaluation) -> None:
        self.wiz.evaluation = ev
        self.table.set_criteria(list(ev.criteria))
        self.flags.set_criteria(list(ev.red_flags), red_flag=True)
        self.flags.setVisible(bool(ev.red_flags))
        self.flags_caption.setVisible(bool(ev.red_flags))
        target = self.wiz.target_stage
        n = len(ev.criteria)
        criteria = fmt.fmt_count(n, "criterion")
        if target is None:
            show_verdict(self.verdict, ev.passed, "Production is the last stage: nothing to promote to.")
        elif ev.passed:
            show_verdict(self.verdict, True, f"All {criteria} pass: promotion to {STAGE_LABELS[target]} is allowed.")
        else:
            lines = [c.explain() for c in ev.failing] + [f"red flag: {c.explain()}" for c in ev.red_flags]
            failing = len(ev.failing) + len(ev.red_flags)
            head = f"Promotion to {STAGE_LABELS[target]} is refused: {failing} of {criteria} fail."
            text = head + "\n• " + "\n• ".join(lines)
            show_verdict(self.verdict, False, text)
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.wiz.evaluation is not None  # failing evidence still lets the setup be saved

    def nextId(self) -> int:
        return Page.CONFIRM if self.wiz.needs_confirmation() else Page.SUMMARY


class ConfirmPage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Real money")
        self.setSubTitle("This step risks real money. Type the phrase below exactly to continue.")
        self.phrase = QLineEdit()
        self.phrase.setPlaceholderText(CONFIRM_PHRASE)
        self.phrase.textChanged.connect(lambda _t: self.completeChanged.emit())
        layout = QVBoxLayout(self)
        prompt = text_label(f"Type:  {CONFIRM_PHRASE}")
        prompt.setObjectName("dialogHeadline")
        layout.addWidget(prompt)
        layout.addWidget(self.phrase)
        layout.addStretch(1)

    def isComplete(self) -> bool:
        return self.phrase.text() == CONFIRM_PHRASE

    def nextId(self) -> int:
        return Page.SUMMARY


class SummaryPage(QWizardPage):
    def __init__(self, wiz: ActivationWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Summary")
        self.summary = text_label()
        self.promote = QCheckBox()
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Why promote now (required, audited)")
        self.result = text_label(name="promotionResult")
        for sig in (self.promote.toggled, self.reason.textChanged):
            sig.connect(lambda *_: self.completeChanged.emit())
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.promote)
        layout.addWidget(self.reason)
        layout.addWidget(self.result)
        layout.addStretch(1)
        self.busy = False
        self._task: asyncio.Future[tuple[bool, str]] | None = None

    def initializePage(self) -> None:
        w = self.wiz
        venue, mode = w.venue_page.choice()
        stage, target = w.engine.stage_manager.stage, w.target_stage
        risk = w.risk_page.values()
        ev = w.evaluation
        pct = {k: fmt.fmt_fraction_pct(risk[k] or 0) for k in ("risk_per_trade", "daily_loss_limit", "max_drawdown")}
        cap = f", capital cap {fmt.fmt_money(risk['capital_cap'], decimals=0)}" if risk["capital_cap"] else ""
        endpoint = f", endpoint {w.venue_page.endpoint.text()}" if venue != "simulated" else ""
        evidence = "every criterion passes" if ev and ev.passed else "criteria failing (see the previous page)"
        lines = [
            f"Venue: {venue} ({mode}){endpoint}",
            f"Credentials: {'stored in the ' + w.stored_backend if w.stored_backend else 'none needed'}",
            f"Risk per trade {pct['risk_per_trade']}, daily loss limit {pct['daily_loss_limit']}, maximum drawdown "
            f"{pct['max_drawdown']}, at most {fmt.fmt_count(risk['max_concurrent_positions'], 'position')}{cap}",
            f"Stage: {STAGE_LABELS[stage]}" + (f" → {STAGE_LABELS[target]}" if target else ""),
            f"Evidence: {evidence}",
            "A venue change takes effect at the next start.",
        ]
        self.summary.setText("\n".join(lines))
        self.promote.setText(f"Promote to {STAGE_LABELS[target]} now" if target else "Nothing to promote to")
        self.promote.setEnabled(target is not None)
        self.promote.setChecked(bool(target and ev and ev.passed))
        self.result.clear()

    def isComplete(self) -> bool:
        if self.busy:
            return False
        return not self.promote.isChecked() or bool(self.reason.text().strip())

    def validatePage(self) -> bool:
        """Finish: save the setup; promote when asked, and finish only when the engine agrees."""
        if self.wiz.promotion is not None and self.wiz.promotion[0]:
            return True  # QWizard.accept() validates again after the engine said yes
        when, note = self.wiz.venue_verdict(*self.wiz.venue_page.choice())
        if when is None or (when == "after_promotion" and not self.promote.isChecked()):
            show_verdict(self.result, False, f"Not saved. {note}" + (" Tick the promotion above, or go back and choose "
                                                                 "another venue." if when else ""))  # fmt: skip
            return False
        try:  # a venue that needs the next stage is saved only once the engine has promoted
            self.wiz.apply_setup(include_venue=when == "now")
        except ValueError as exc:  # limits that contradict each other, a config the next start would refuse
            show_verdict(self.result, False, f"Not saved: {exc}")
            return False
        if not self.promote.isChecked():
            return True
        self.busy = True
        self.completeChanged.emit()
        show_verdict(self.result, None, "Asking the engine to promote…")
        self._task = asyncio.ensure_future(promote(self.wiz.engine, self.wiz.operator, self.reason.text().strip()))
        self._task.add_done_callback(self._promoted)
        return False  # the wizard closes once the engine has answered yes

    def _promoted(self, task: asyncio.Future[tuple[bool, str]]) -> None:
        self.busy = False
        try:
            ok, msg = task.result()
        except Exception as exc:
            log.exception("promotion failed")
            ok, msg = False, f"promotion failed: {exc}"
        if ok and self.wiz.venue_verdict(*self.wiz.venue_page.choice())[0] == "after_promotion":
            try:  # the stage that allows the venue is the engine's now
                self.wiz.apply_setup(include_venue=True)
            except ValueError as exc:
                ok, msg = False, f"promoted, but the venue was not saved: {exc}"
        self.wiz.promotion = (ok, msg)
        if ok:
            show_verdict(self.result, True, msg)
            self.wiz.accept()
        else:
            show_verdict(self.result, False, f"Promotion refused: {msg}")
        self.completeChanged.emit()


async def promote(engine: Engine, operator: str, reason: str) -> tuple[bool, str]:
    """Through the OperatorAPI (audited, one command id), as every operator command goes."""
    api = getattr(engine, "api", None)
    if api is None:  # an engine without the API layer (older kernels)
        return await engine.promote(operator, reason)  # type: ignore[attr-defined, no-any-return]
    result = await api.promote(reason, operator)
    return bool(result.ok), str(result.message)
