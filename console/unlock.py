"""The master password of the encrypted credential file, asked at start in a dialog.

Where no keyring service runs, API keys live in an encrypted file (scrypt + Fernet) that needs
the master password. A real venue in the config then needs it before the engine can be built:
it is asked here, checked by decrypting the venue's entry off the loop (scrypt is deliberately
slow), and a wrong one is refused on the dialog, which stays open. Opened with ``open()`` and
awaited, never ``exec()`` (qasync). The password lives in the returned store only.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from engine.core.config import Settings
from engine.persistence.secrets import CredentialError, CredentialStore, WrongMasterPassword


def needs_unlock(settings: Settings, data_dir: Path, store: CredentialStore | None = None) -> bool:
    """A real venue, credentials in the encrypted file, and no password yet."""
    if settings.engine.venue == "simulated":
        return False
    store = store or CredentialStore(data_dir)
    return store.needs_master_password and store.file.exists()


def venue_account(settings: Settings) -> str:
    conf = settings.venues.of(settings.engine.venue)
    return str(getattr(conf, "account", None) or "default")


class MasterPasswordDialog(QDialog):
    def __init__(self, venue: str, file: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Unlock the API keys")
        self.prompt = QLabel(f"The {venue} API keys are in the encrypted file\n{file}\nEnter the master password "
                             "chosen in the activation wizard.")  # fmt: skip
        self.prompt.setWordWrap(True)
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.error = QLabel()
        self.error.setObjectName("refusal")
        self.error.setVisible(False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Unlock")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("Quit")
        layout = QVBoxLayout(self)
        layout.addWidget(self.prompt)
        layout.addWidget(self.password)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(460)

    def show_error(self, text: str) -> None:
        self.error.setText(f"✖ {text}")
        self.error.setVisible(True)
        self.password.selectAll()
        self.password.setFocus()


async def ask_master_password(settings: Settings, data_dir: Path, parent: QWidget | None = None,
                              store: CredentialStore | None = None) -> CredentialStore | None:  # fmt: skip
    """An unlocked store, or None when the operator quits. Loops on a wrong password, saying so."""
    store = store or CredentialStore(data_dir)
    venue, account = settings.engine.venue, venue_account(settings)
    dialog = MasterPasswordDialog(venue, store.file, parent)
    loop = asyncio.get_running_loop()
    attempts: asyncio.Queue[str | None] = asyncio.Queue()
    dialog.buttons.accepted.connect(lambda: attempts.put_nowait(dialog.password.text()))
    dialog.rejected.connect(lambda: attempts.put_nowait(None))
    dialog.open()
    try:
        while True:
            password = await attempts.get()
            if password is None:
                return None
            if not password:
                dialog.show_error("Enter the master password.")
                continue
            dialog.buttons.setEnabled(False)
            candidate = CredentialStore(data_dir, master_password=password, use_keyring=False)
            try:  # decrypting proves the password; scrypt runs off the loop
                found = await loop.run_in_executor(None, candidate.load, venue, account)
            except WrongMasterPassword:
                dialog.show_error("Wrong master password.")
                continue
            except CredentialError as exc:
                dialog.show_error(str(exc))
                continue
            finally:
                dialog.buttons.setEnabled(True)
            if found is None:
                dialog.show_error(f"The file has no {venue} key for the account {account!r}: store one in the "
                                  "activation wizard.")  # fmt: skip
                continue
            dialog.accept()
            return candidate
    finally:
        dialog.password.clear()  # the password is not kept in a widget
        dialog.deleteLater()
