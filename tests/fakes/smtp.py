"""A minimal SMTP server on 127.0.0.1 for the e-mail channel's tests (no aiosmtpd needed).

Speaks what smtplib uses: EHLO/HELO, STARTTLS (when given a TLS context), AUTH PLAIN,
MAIL, RCPT, DATA, RSET, NOOP, QUIT. Received messages are kept, parsed.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_to: list[str]
    message: EmailMessage
    tls: bool
    user: str | None


class FakeSmtpServer:
    def __init__(self, tls: ssl.SSLContext | None = None, users: dict[str, str] | None = None) -> None:
        self.tls = tls
        self.users = users or {}
        self.mails: list[ReceivedMail] = []
        self.failed_logins = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> FakeSmtpServer:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state: dict[str, object] = {"tls": False, "user": None, "from": "", "rcpt": []}

        async def reply(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        try:
            await reply("220 fake.smtp ESMTP ready")
            while line := await reader.readline():
                cmd, _, arg = line.decode().rstrip("\r\n").partition(" ")
                cmd = cmd.upper()
                if cmd in ("EHLO", "HELO"):
                    ext = ["fake.smtp", "8BITMIME"]
                    if self.tls is not None and not state["tls"]:
                        ext.append("STARTTLS")
                    if self.users:
                        ext.append("AUTH PLAIN")
                    await reply("\r\n".join(f"250{'-' if i < len(ext) - 1 else ' '}{e}" for i, e in enumerate(ext)))
                elif cmd == "STARTTLS" and self.tls is not None:
                    await reply("220 go ahead")
                    await writer.start_tls(self.tls)
                    state["tls"] = True
                elif cmd == "AUTH" and arg.upper().startswith("PLAIN"):
                    await self._auth(arg, reader, state, reply)
                elif cmd == "MAIL":
                    state["from"], state["rcpt"] = arg.partition(":")[2].strip("<> "), []
                    await reply("250 ok")
                elif cmd == "RCPT":
                    state["rcpt"].append(arg.partition(":")[2].strip("<> "))  # type: ignore[attr-defined]
                    await reply("250 ok")
                elif cmd == "DATA":
                    await reply("354 end with <CRLF>.<CRLF>")
                    await self._data(reader, state)
                    await reply("250 queued")
                elif cmd in ("RSET", "NOOP"):
                    await reply("250 ok")
                elif cmd == "QUIT":
                    await reply("221 bye")
                    break
                else:
                    await reply("502 not implemented")
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _auth(self, arg: str, reader: asyncio.StreamReader, state: dict[str, object], reply) -> None:  # type: ignore[no-untyped-def]
        token = arg[5:].strip()
        if not token:
            await reply("334 ")
            token = (await reader.readline()).decode().strip()
        _, user, password = base64.b64decode(token).decode().split("\0")
        if self.users.get(user) == password:
            state["user"] = user
            await reply("235 authenticated")
        else:
            self.failed_logins += 1
            await reply("535 authentication failed")

    async def _data(self, reader: asyncio.StreamReader, state: dict[str, object]) -> None:
        lines: list[bytes] = []
        while (raw := await reader.readline()) not in (b".\r\n", b".\n", b""):
            lines.append(raw[1:] if raw.startswith(b"..") else raw)  # undo dot-stuffing
        msg = message_from_bytes(b"".join(lines), policy=policy.default)
        self.mails.append(ReceivedMail(str(state["from"]), list(state["rcpt"]), msg,  # type: ignore[call-overload]
                                       bool(state["tls"]), state["user"]))  # type: ignore[arg-type]
