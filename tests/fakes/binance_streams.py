"""The fake Binance's websockets: `/ws/<n>` market streams and the `/ws-api/v3` user data stream.

A mixin of FakeBinance, kept apart so each file stays readable. Market streams
answer SUBSCRIBE/UNSUBSCRIBE and carry `<sym>@ticker` / `<sym>@bookTicker`
events; the websocket API takes `userDataStream.subscribe.signature` (key and
HMAC signature checked) and then carries executionReport events.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes import binance_wire as wire


class BinanceStreams:
    api_key: str
    _secret: str
    by_id: dict[str, str]
    _market_ws: dict[web.WebSocketResponse, set[str]]
    _user_ws: set[web.WebSocketResponse]
    _refuse_ws: int
    user_stream: str
    market_stream: str = "live"  # or "silent"

    def _ticker_event(self, symbol: str) -> dict[str, Any]:
        raise NotImplementedError

    def _send(self, ws: web.WebSocketResponse, payload: Any) -> None:
        raise NotImplementedError

    # -- websocket faults ------------------------------------------------------------------------

    def drop_websockets(self) -> int:
        """Cut every open websocket without a close frame, as a dying connection does."""
        dropped = 0
        for ws in [*self._market_ws, *self._user_ws]:
            transport = getattr(ws, "_fake_transport", None)
            if transport is not None:
                transport.close()
                dropped += 1
        self._market_ws.clear()
        self._user_ws.clear()
        return dropped

    def refuse_websockets(self, n: int = 1) -> None:
        """The next n websocket handshakes fail with 503."""
        self._refuse_ws += n

    @property
    def websocket_count(self) -> int:
        return len(self._market_ws) + len(self._user_ws)

    # -- websockets ------------------------------------------------------------------------------

    async def _open_ws(self, request: web.Request) -> web.WebSocketResponse | None:
        if self._refuse_ws > 0:
            self._refuse_ws -= 1
            return None
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        ws._fake_transport = request.transport  # type: ignore[attr-defined]
        return ws

    async def _ws_market(self, request: web.Request) -> web.StreamResponse:
        ws = await self._open_ws(request)
        if ws is None:
            return web.Response(status=503, text="Service Unavailable")
        self._market_ws[ws] = streams = set()
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT or self.market_stream == "silent":
                    continue  # "silent": connected, the subscription never answered
                req = json.loads(msg.data)
                if req.get("method") == "SUBSCRIBE":
                    streams.update(req.get("params", []))
                elif req.get("method") == "UNSUBSCRIBE":
                    streams.difference_update(req.get("params", []))
                await ws.send_str(json.dumps({"result": None, "id": req.get("id")}))
                for stream in req.get("params", []) if req.get("method") == "SUBSCRIBE" else []:
                    symbol = self.by_id.get(stream.split("@")[0].upper())
                    if symbol and stream.endswith("@ticker"):
                        self._send(ws, self._ticker_event(symbol))  # the first event comes at once
        finally:
            self._market_ws.pop(ws, None)
        return ws

    async def _ws_api(self, request: web.Request) -> web.StreamResponse:
        if self.user_stream == "absent":
            return web.Response(status=404, text="Not Found")
        ws = await self._open_ws(request)
        if ws is None:
            return web.Response(status=503, text="Service Unavailable")
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT or self.user_stream == "silent":
                    continue  # "silent": a socket that does not speak ws-api never answers
                req = json.loads(msg.data)
                reply: dict[str, Any] = {"id": req.get("id"), "status": 200, "result": {}}
                if req.get("method") == "userDataStream.subscribe.signature":
                    error = self._ws_auth_error(req.get("params", {}))
                    if error is None:
                        self._user_ws.add(ws)
                        reply["result"] = {"subscriptionId": 0}
                    else:
                        reply = {"id": req.get("id"), "status": 401, "error": {"code": error[0], "msg": error[1]}}
                await ws.send_str(json.dumps(reply))
        finally:
            self._user_ws.discard(ws)
        return ws

    def _ws_auth_error(self, params: dict[str, Any]) -> tuple[int, str] | None:
        if params.get("apiKey") != self.api_key:
            return wire.ERR_KEY_INVALID
        signed = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")
        if params.get("signature") != wire.sign(signed, self._secret):
            return wire.ERR_SIGNATURE
        return None
