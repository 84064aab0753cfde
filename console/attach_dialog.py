"""File → Attach to engine…: where the engine is and how to prove who we are.

Non-modal, opened with open(): an attach in progress never stands between the operator
and a stop button. A loopback URL takes the engine's token file (over an SSH
port-forward, a copy of the server's token); an https URL takes the client certificate,
key and CA made by `trading-console certs`.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from console.remote_client import Endpoint, RemoteError
from engine.core.paths import app_paths


class AttachDialog(QDialog):
    endpointChosen = Signal(object)  # Endpoint

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Attach to engine")
        self.setModal(False)
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://127.0.0.1:8765  ·  https://server:8765  ·  local")
        self.token_file = QLineEdit()
        self.token_file.setPlaceholderText("file holding the engine's control token (loopback / SSH forward)")
        self.cert = QLineEdit()
        self.key = QLineEdit()
        self.ca = QLineEdit()
        for w, hint in ((self.cert, "client.pem"), (self.key, "client-key.pem"), (self.ca, "ca.pem")):
            w.setPlaceholderText(f"{hint} (mutual TLS, from `trading-console certs`)")
        self.error = QLabel()
        self.error.setStyleSheet("color: #d23c3c;")
        self.error.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Engine URL", self.url)
        form.addRow("Token file", self.token_file)
        form.addRow("Client certificate", self.cert)
        form.addRow("Client key", self.key)
        form.addRow("CA certificate", self.ca)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Attach")
        buttons.accepted.connect(self.try_accept)
        buttons.rejected.connect(self.reject)
        v = QVBoxLayout(self)
        v.addLayout(form)
        v.addWidget(self.error)
        v.addWidget(buttons)

    def endpoint(self) -> Endpoint:
        url = self.url.text().strip()
        if url == "local":
            return Endpoint.local(app_paths())
        return Endpoint.from_options(url, None, self.token_file.text().strip() or None,
                                     self.cert.text().strip() or None, self.key.text().strip() or None,
                                     self.ca.text().strip() or None)  # fmt: skip

    def try_accept(self) -> None:
        try:
            endpoint = self.endpoint()
        except RemoteError as exc:
            self.error.setText(str(exc))
            return
        self.endpointChosen.emit(endpoint)
        self.accept()
