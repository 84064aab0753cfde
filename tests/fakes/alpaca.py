"""An Alpaca broker on 127.0.0.1 that real alpaca-py talks to: trading REST v2, market data, trade_updates.

The subset AlpacaVenue uses: account, assets/{symbol}, clock, orders (POST, GET
list, GET by id, GET :by_client_order_id, DELETE one, DELETE all), positions (GET,
DELETE all with cancel_orders), account/activities/FILL; latest quotes for stocks
(/v2/stocks/quotes/latest) and crypto (/v1beta3/crypto/us/latest/quotes) on the
same server; the `/stream` websocket (authenticate -> authorized, listen ->
trade_updates events new / partial_fill / fill / canceled / rejected, sent as
binary frames like Alpaca does). Keys are checked on the APCA-API-KEY-ID /
APCA-API-SECRET-KEY headers and on the stream's authenticate message.

Symbols are Alpaca's own: "AAPL" (USD) and "BTC/USD"; positions name crypto
without the slash, as Alpaca does. A MatchingEngine fills the orders; prices
move only when a test calls `push_tick()`. Faults: `fail_next()` / `faults` (tests/fakes/faults.py),
`drop_websockets()`, `refuse_websockets(n)`, `send_garbage()`.

Like a real account: `holdings` held before the engine (shares, coins) next to a
small `cash`; `refused_types` answered 422 (e.g. {"stop"} for a broker refusing
stop orders); stop_limit orders; one-minute bars for warm-ups
(/v2/stocks/bars, /v1beta3/crypto/us/bars).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from engine.core.model import Instrument, MarketTick, Order, OrderStatus, OrderType, OrderUpdate, Side
from engine.venues.matching import MatchingEngine
from tests.fakes import alpaca_wire as w
from tests.fakes.faults import Fault, FaultKind, FaultPlan


class FakeAlpaca:
    def __init__(
        self,
        api_key: str = "PKFAKEKEY",
        secret_key: str = "fake-secret",
        symbols: Iterable[str] = ("AAPL", "MSFT", "BTC/USD"),
        cash: Decimal = Decimal(100_000),
        prices: dict[str, Decimal] | None = None,
        *,
        holdings: dict[str, Decimal] | None = None,
        refused_types: Iterable[str] = (),
        stream_mode: str = "normal",
        stream_delay_s: float = 0.0,
    ) -> None:
        """stream_mode "silent": the trade stream connects and never answers (no authorization);
        "no_listen": it authorizes and never confirms the trade_updates subscription.
        stream_delay_s: every trade update leaves that late (a slow stream)."""
        self.api_key, self._secret = api_key, secret_key
        self.instruments = {s: self._instrument(s) for s in symbols}
        start = {"USD": cash, **{self.instruments[s].base: q for s, q in (holdings or {}).items()}}
        self.matching = MatchingEngine(self.instruments, start, maker_fee=0, taker_fee=0, venue="alpaca")
        self.refused_types = set(refused_types)
        self.stream_mode = stream_mode
        self.stream_delay_s = stream_delay_s
        self._sending: set[asyncio.Task[None]] = set()
        self.faults = FaultPlan()
        self.submit_attempts: Counter[str] = Counter()  # POST /v2/orders per client id, duplicates included
        self.placed: Counter[str] = Counter()  # orders that reached the book per client id
        self.requests: list[tuple[str, str]] = []
        self.activities: list[dict[str, Any]] = []
        self.bar_requests = 0
        self._by_uuid: dict[str, str] = {}  # alpaca order id -> client id
        self._ws: set[web.WebSocketResponse] = set()
        self._refuse_ws = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        for symbol in self.instruments:
            price = (prices or {}).get(symbol, Decimal(60000) if "/" in symbol else Decimal(200))
            self.push_tick(symbol, price - Decimal("0.05"), price + Decimal("0.05"))

    @classmethod
    def real_like(cls, **kw: Any) -> FakeAlpaca:
        """An operator's account: 1,000 USD, 5 AAPL held before the engine, stop orders refused (422)."""
        defaults: dict[str, Any] = {"cash": Decimal(1000), "holdings": {"AAPL": Decimal(5)}, "refused_types": {"stop"}}
        return cls(**{**defaults, **kw})

    @staticmethod
    def _instrument(symbol: str) -> Instrument:
        base, _, quote = symbol.partition("/")
        lot = Decimal("0.0001") if quote else Decimal(1)
        return Instrument(symbol, base, quote or "USD", Decimal("0.01"), lot, lot, Decimal(0), "alpaca")

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> FakeAlpaca:
        app = web.Application(middlewares=[self._record, self._auth, self.faults.middleware])
        r = app.router
        r.add_get("/stream", self._stream)
        r.add_get("/v2/account", self._account)
        r.add_get("/v2/clock", self._clock)
        r.add_get("/v2/assets/{symbol:.+}", self._asset)
        r.add_post("/v2/orders", self._submit)
        r.add_get("/v2/orders", self._list_orders)
        r.add_delete("/v2/orders", self._cancel_all)
        r.add_get("/v2/orders:by_client_order_id", self._by_client_id)
        r.add_get("/v2/orders/{id}", self._get_order)
        r.add_delete("/v2/orders/{id}", self._cancel)
        r.add_get("/v2/positions", self._positions)
        r.add_delete("/v2/positions", self._close_all)
        r.add_get("/v2/account/activities/FILL", self._fills)
        r.add_get("/v2/stocks/quotes/latest", self._quotes)
        r.add_get("/v1beta3/crypto/us/latest/quotes", self._quotes)
        r.add_get("/v2/stocks/bars", self._bars)
        r.add_get("/v1beta3/crypto/us/bars", self._bars)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        await self.drop_websockets()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeAlpaca:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    # -- control ---------------------------------------------------------------------------------

    def push_tick(self, symbol: str, bid: Decimal, ask: Decimal, volume: Decimal = Decimal(0)) -> MarketTick:
        tick = MarketTick(symbol, w.now(), bid, ask, (bid + ask) / 2, volume)
        self._publish(self.matching.on_tick(tick))
        return tick

    async def drop_websockets(self) -> None:
        for ws in list(self._ws):
            with contextlib.suppress(Exception):
                await ws.close()
        self._ws.clear()

    def fail_next(self, path: str, kind: FaultKind | str, n: int = 1, method: str = "*", **kw: Any) -> None:
        """Fault the next n requests of e.g. "/v2/orders" (see Fault for delay_s, retry_after_s, status)."""
        self.faults.add(path, Fault(FaultKind(kind), **kw), n, method)

    def refuse_websockets(self, n: int) -> None:
        self._refuse_ws = n

    async def send_garbage(self) -> None:
        for ws in list(self._ws):
            await ws.send_bytes(b'{"stream": "trade_updates", "data": {')

    def open_orders(self) -> list[Order]:
        return self.matching.open_orders()

    def positions(self) -> dict[str, Decimal]:
        return self.matching.positions()

    # -- wire ------------------------------------------------------------------------------------

    def order_id(self, order: Order) -> str:
        oid = str(uuid.uuid5(w.NS, order.client_id))
        self._by_uuid[oid] = order.client_id
        return oid

    def order_json(self, o: Order) -> dict[str, Any]:
        return {
            "id": self.order_id(o), "client_order_id": o.client_id, "symbol": o.symbol,
            "asset_class": "crypto" if "/" in o.symbol else "us_equity",
            "created_at": w.iso(o.created_at), "updated_at": w.iso(o.updated_at), "submitted_at": w.iso(o.created_at),
            "filled_at": w.iso(o.updated_at) if o.status is OrderStatus.FILLED else None,
            "qty": str(o.qty), "filled_qty": str(o.filled_qty),
            "filled_avg_price": None if o.avg_fill_price is None else str(o.avg_fill_price),
            "order_class": "simple", "order_type": w.TYPE[o.order_type], "type": w.TYPE[o.order_type],
            "side": o.side.value, "time_in_force": "gtc" if "/" in o.symbol else "day",
            "limit_price": None if o.price is None else str(o.price),
            "stop_price": None if o.stop_price is None else str(o.stop_price),
            "status": w.STATUS.get(o.status, "new"), "extended_hours": False,
        }  # fmt: skip

    def _publish(self, updates: list[OrderUpdate]) -> None:
        for u in updates:
            o = u.order
            oid = self.order_id(o)
            data: dict[str, Any] = {"order": self.order_json(o), "timestamp": w.iso(o.updated_at or w.now())}
            if u.fill is not None:
                f = u.fill
                data.update(event="fill" if o.status is OrderStatus.FILLED else "partial_fill",
                            price=str(f.price), qty=str(f.qty), execution_id=str(uuid.uuid4()))  # fmt: skip
                self.activities.append({
                    "id": f"{f.ts:%Y%m%d%H%M%S%f}::{uuid.uuid4()}", "activity_type": "FILL",
                    "transaction_time": w.iso(f.ts), "type": data["event"], "price": str(f.price),
                    "qty": str(f.qty), "side": f.side.value, "symbol": o.symbol.replace("/", ""),
                    "leaves_qty": str(o.remaining), "order_id": oid, "cum_qty": str(o.filled_qty),
                    "order_status": w.STATUS[o.status],
                })  # fmt: skip
            else:
                data["event"] = w.STATUS.get(o.status, "new")
            frame = json.dumps({"stream": "trade_updates", "data": data}).encode()
            for ws in list(self._ws):
                if self.stream_delay_s > 0:  # a slow stream: the REST reply comes first
                    asyncio.get_running_loop().call_later(self.stream_delay_s, self._send_later, ws, frame)
                else:
                    self._send_later(ws, frame)

    def _send_later(self, ws: web.WebSocketResponse, frame: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._send(ws, frame))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, ws: web.WebSocketResponse, frame: bytes) -> None:
        with contextlib.suppress(Exception):
            await ws.send_bytes(frame)

    # -- middleware ------------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        return await handler(request)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/stream":
            return await handler(request)
        key = request.headers.get("APCA-API-KEY-ID")
        secret = request.headers.get("APCA-API-SECRET-KEY")
        if key != self.api_key or secret != self._secret:
            return w.error(401, 40110000, "request is not authorized")
        return await handler(request)

    # -- trading REST ----------------------------------------------------------------------------

    async def _account(self, request: web.Request) -> web.Response:
        usd = self.matching.balances().get("USD")
        cash = usd.total if usd else Decimal(0)
        free = usd.free if usd else Decimal(0)
        held = sum((q * self._last(s) for s, q in self.matching.positions().items()), Decimal(0))
        return web.json_response({
            "id": str(uuid.uuid5(w.NS, self.api_key)), "account_number": "PA0000FAKE", "status": "ACTIVE",
            "currency": "USD", "cash": str(cash), "buying_power": str(free), "portfolio_value": str(cash + held),
            "equity": str(cash + held), "long_market_value": str(held),
            "trading_blocked": False, "account_blocked": False, "pattern_day_trader": False,
        })  # fmt: skip

    async def _clock(self, request: web.Request) -> web.Response:
        now = w.iso(w.now())
        return web.json_response({"timestamp": now, "is_open": True, "next_open": now, "next_close": now})

    async def _asset(self, request: web.Request) -> web.Response:
        inst = self.instruments.get(request.match_info["symbol"])
        if inst is None:
            return w.error(404, 40410000, "asset not found")
        return web.json_response({
            "id": str(uuid.uuid5(w.NS, inst.symbol)), "class": "crypto" if "/" in inst.symbol else "us_equity",
            "exchange": "CRYPTO" if "/" in inst.symbol else "NASDAQ", "symbol": inst.symbol, "status": "active",
            "tradable": True, "min_order_size": str(inst.min_qty), "min_trade_increment": str(inst.lot_size),
            "price_increment": str(inst.tick_size),
        })  # fmt: skip

    async def _submit(self, request: web.Request) -> web.Response:
        body = await request.json()
        cid = str(body.get("client_order_id") or uuid.uuid4())
        self.submit_attempts[cid] += 1
        if self.matching.order(cid) is not None:
            return w.error(422, 40010001, "client_order_id must be unique")
        if body["type"] in self.refused_types:
            return w.error(422, 42210000, f"order type {body['type']} is not supported for this asset")
        kind = w.KIND[body["type"]]
        order = Order(
            cid, body["symbol"], Side(body["side"]), kind, Decimal(str(body["qty"])),
            price=Decimal(str(body["limit_price"])) if body.get("limit_price") else None,
            stop_price=Decimal(str(body["stop_price"])) if body.get("stop_price") else None,
        )  # fmt: skip
        updates = self.matching.submit(order, None, w.now())
        first = updates[0].order
        if first.status is OrderStatus.REJECTED:
            message = first.reason
            if "insufficient" in message:
                short = "buying power" if order.side is Side.BUY else "qty available for order"
                return w.error(403, 40310000, f"insufficient {short} ({message})")
            return w.error(422, 40010001, message)
        self.placed[cid] += 1
        self._publish(updates)
        final = self.matching.order(cid) or first
        return web.json_response(self.order_json(final))

    async def _list_orders(self, request: web.Request) -> web.Response:
        symbols = [s for s in request.query.get("symbols", "").split(",") if s]
        orders = [o for o in self.matching.open_orders() if not symbols or o.symbol in symbols]
        return web.json_response([self.order_json(o) for o in orders])

    def _order_response(self, cid: str | None) -> web.Response:
        order = self.matching.order(cid) if cid else None
        if order is None or order.status is OrderStatus.REJECTED:
            return w.error(404, 40410000, "order not found")
        return web.json_response(self.order_json(order))

    async def _by_client_id(self, request: web.Request) -> web.Response:
        return self._order_response(request.query.get("client_order_id"))

    async def _get_order(self, request: web.Request) -> web.Response:
        return self._order_response(self._by_uuid.get(request.match_info["id"]))

    async def _cancel(self, request: web.Request) -> web.Response:
        cid = self._by_uuid.get(request.match_info["id"])
        order = self.matching.order(cid) if cid else None
        if order is None:
            return w.error(404, 40410000, "order not found")
        if not order.status.is_working:
            return w.error(422, 42210000, f'order is already in "{w.STATUS[order.status]}" state')
        update = self.matching.cancel(order.client_id, w.now())
        self._publish([update] if update else [])
        return web.Response(status=204)

    async def _cancel_all(self, request: web.Request) -> web.Response:
        updates = self.matching.cancel_all(None, w.now())
        self._publish(updates)
        return web.json_response([{"id": self.order_id(u.order), "status": 200, "body": {}} for u in updates],
                                 status=207)  # fmt: skip

    async def _positions(self, request: web.Request) -> web.Response:
        out = []
        for symbol, qty in self.matching.positions().items():
            tick = self.matching.last_tick(symbol)
            price = str(tick.last) if tick else "0"
            out.append({
                "asset_id": str(uuid.uuid5(w.NS, symbol)), "symbol": symbol.replace("/", ""),
                "exchange": "CRYPTO" if "/" in symbol else "NASDAQ",
                "asset_class": "crypto" if "/" in symbol else "us_equity", "avg_entry_price": price,
                "qty": str(abs(qty)), "side": "long" if qty > 0 else "short", "cost_basis": "0",
                "market_value": "0", "current_price": price, "qty_available": str(self._available(symbol)),
            })  # fmt: skip
        return web.json_response(out)

    async def _close_all(self, request: web.Request) -> web.Response:
        if request.query.get("cancel_orders") in ("true", "True"):
            self._publish(self.matching.cancel_all(None, w.now()))
        out = []
        for n, (symbol, qty) in enumerate(sorted(self.matching.positions().items())):
            cid = f"close-{symbol}-{w.now():%H%M%S%f}-{n}"
            order = Order(cid, symbol, Side.SELL if qty > 0 else Side.BUY, OrderType.MARKET, abs(qty))
            updates = self.matching.submit(order, None, w.now())
            self.placed[cid] += 1
            self._publish(updates)
            final = self.matching.order(cid) or updates[0].order
            out.append({"symbol": symbol.replace("/", ""), "status": 200, "body": self.order_json(final)})
        return web.json_response(out, status=207)

    async def _fills(self, request: web.Request) -> web.Response:
        rows = self.activities
        after = request.query.get("after")
        if after:
            cut = datetime.fromisoformat(after.replace("Z", "+00:00"))
            rows = [a for a in rows if datetime.fromisoformat(a["transaction_time"].replace("Z", "+00:00")) > cut]
        token = request.query.get("page_token")
        if token:
            ids = [a["id"] for a in rows]
            rows = rows[ids.index(token) + 1 :] if token in ids else []
        size = int(request.query.get("page_size", 100))
        return web.json_response(rows[:size])

    def _last(self, symbol: str) -> Decimal:
        tick = self.matching.last_tick(symbol)
        return tick.last if tick else Decimal(0)

    def _available(self, symbol: str) -> Decimal:
        bal = self.matching.balances().get(self.instruments[symbol].base)
        return bal.free if bal else Decimal(0)

    # -- market data -----------------------------------------------------------------------------

    async def _bars(self, request: web.Request) -> web.Response:
        """One-minute bars from start to end around the last price (a gentle deterministic wave)."""
        start = datetime.fromisoformat(request.query["start"].replace("Z", "+00:00"))
        end_text = request.query.get("end")
        end = datetime.fromisoformat(end_text.replace("Z", "+00:00")) if end_text else w.now()
        limit = int(request.query.get("limit") or 10_000)
        out: dict[str, list[dict[str, Any]]] = {}
        for symbol in request.query.get("symbols", "").split(","):
            if symbol not in self.instruments:
                continue
            last, bars = self._last(symbol), []
            t = start.replace(second=0, microsecond=0)
            n = 0
            while t < end and len(bars) < limit:
                close = last * (1 + Decimal((n % 7) - 3) / 1000)
                bars.append({"t": w.iso(t), "o": float(close), "h": float(close), "l": float(close),
                             "c": float(close), "v": 100, "n": 10, "vw": float(close)})  # fmt: skip
                t += timedelta(minutes=1)
                n += 1
            out[symbol] = bars
        self.bar_requests += 1
        return web.json_response({"bars": out, "next_page_token": None})

    async def _quotes(self, request: web.Request) -> web.Response:
        out = {}
        for symbol in request.query.get("symbols", "").split(","):
            tick = self.matching.last_tick(symbol)
            if tick is not None:
                out[symbol] = {"t": w.iso(tick.ts), "bp": float(tick.bid), "ap": float(tick.ask),
                               "bs": 1, "as": 1, "bx": "V", "ax": "V", "c": ["R"], "z": "C"}  # fmt: skip
        return web.json_response({"quotes": out})

    # -- trade_updates websocket -----------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if self._refuse_ws > 0:
            self._refuse_ws -= 1
            return web.Response(status=503, text="stream unavailable")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                req = json.loads(msg.data)
            except ValueError:
                continue
            action, data = req.get("action"), req.get("data") or {}
            if self.stream_mode == "silent" or (self.stream_mode == "no_listen" and action == "listen"):
                continue
            if action in ("authenticate", "auth"):
                ok = data.get("key_id") == self.api_key and data.get("secret_key") == self._secret
                status = "authorized" if ok else "unauthorized"
                reply = {"stream": "authorization", "data": {"action": "authenticate", "status": status}}
                await ws.send_bytes(json.dumps(reply).encode())
                if not ok:
                    break
            elif action == "listen":
                self._ws.add(ws)
                await ws.send_bytes(
                    json.dumps({"stream": "listening", "data": {"streams": ["trade_updates"]}}).encode()
                )
        self._ws.discard(ws)
        return ws
