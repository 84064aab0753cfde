"""EMERGENCY STOP from anywhere in the app: no dialog may block it.

Qt blocks a window's input, its ApplicationShortcuts included, while a modal dialog is
open, and a modal dialog (the wizard, a file dialog, a message box opened with ``open()``)
can stay up for half an hour. So one object, installed on the QApplication:

- sees every key press in every window, modal dialogs and popups included, and turns F12
  and Ctrl+Shift+X into the stop (a shortcut map entry could be blocked; an application
  event filter cannot);
- makes every dialog non-modal before it is first shown (at its Polish event: changing a
  QMessageBox's modality later, in its Show event, leaves it invisible), so a click on the main
  window's EMERGENCY STOP is never swallowed; a dialog re-opened later is caught at Show. A
  dialog that truly must stay modal sets the property ``KEEP_MODAL`` and carries its own stop
  button;
- gives a QWizard (the activation wizard) its own EMERGENCY STOP button, since it is large
  enough to cover the main one on a small screen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox, QPushButton, QWizard

from widgets.dialogs import STOP_BUTTON_TEXT, style_stop_button

log = logging.getLogger(__name__)

EMERGENCY_KEYS = (QKeySequence("F12"), QKeySequence("Ctrl+Shift+X"))
KEEP_MODAL = "tcKeepModal"  # dynamic property: this dialog must block other windows
_GUARDED = "tcStopGuarded"
_WIZARD_STOP = QWizard.WizardButton.CustomButton1
_CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def is_emergency_key(event: QKeyEvent) -> bool:
    """F12 (any modifiers: a hurried hand may hold one) or Ctrl+Shift+X (with or without others)."""
    key = event.key()
    if key == Qt.Key.Key_F12:
        return True
    return key == Qt.Key.Key_X and (event.modifiers() & _CTRL_SHIFT) == _CTRL_SHIFT


class StopGuard(QObject):
    """Installed on the QApplication by ``install``; removed when its parent (the window) goes."""

    def __init__(self, on_stop: Callable[[str], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.on_stop = on_stop
        self.triggered = 0  # how many key presses became a stop (tests, diagnostics)

    @classmethod
    def install(cls, app: QApplication, on_stop: Callable[[str], None], parent: QObject) -> StopGuard:
        # Qt's own file dialog, not the platform's: it is a QDialog this guard can see and test
        app.setAttribute(Qt.ApplicationAttribute.AA_DontUseNativeDialogs, True)
        guard = cls(on_stop, parent)
        app.installEventFilter(guard)
        return guard

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) and is_emergency_key(event):
            # claim the key so no shortcut fires as well: the KeyPress that follows is the one stop
            event.accept()
            return True
        if kind == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) and is_emergency_key(event):
            event.accept()
            if not event.isAutoRepeat():  # a held key is one stop, not a burst of commands
                self.triggered += 1
                self._stop(f"key {QKeySequence(event.keyCombination()).toString()}")
            return True
        if kind == QEvent.Type.Polish and isinstance(obj, QDialog) and obj.isWindow():
            self._unblock(obj)  # first show: open() has set the modality, nothing is mapped yet
        elif kind == QEvent.Type.Show and isinstance(obj, QDialog) and obj.isWindow():
            if not isinstance(obj, QMessageBox):  # a re-opened dialog (Polish comes once per widget)
                self._unblock(obj)
            self._add_wizard_button(obj)
        return False

    def _unblock(self, dialog: QDialog) -> None:
        if not dialog.property(KEEP_MODAL) and dialog.windowModality() != Qt.WindowModality.NonModal:
            dialog.setWindowModality(Qt.WindowModality.NonModal)

    def _add_wizard_button(self, dialog: QDialog) -> None:
        if isinstance(dialog, QWizard) and not dialog.property(_GUARDED):
            dialog.setProperty(_GUARDED, True)
            dialog.setButtonText(_WIZARD_STOP, STOP_BUTTON_TEXT)
            dialog.setOption(QWizard.WizardOption.HaveCustomButton1, True)
            button = dialog.button(_WIZARD_STOP)
            if isinstance(button, QPushButton):
                style_stop_button(button)
            dialog.customButtonClicked.connect(
                lambda which: self._stop("wizard button") if which == _WIZARD_STOP.value else None
            )

    def _stop(self, source: str) -> None:
        try:
            self.on_stop(source)
        except Exception:  # an event filter must never raise into Qt
            log.exception("emergency stop from %s failed", source)


def wizard_stop_button(wizard: QWizard) -> object:
    """The wizard's own EMERGENCY STOP button (once the wizard has been shown)."""
    return wizard.button(_WIZARD_STOP)
