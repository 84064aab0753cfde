"""A Binance spot exchange on 127.0.0.1 that real ccxt talks to: REST, market streams, user data.

The subset ccxt's binance class uses for spot trading: ping, time, exchangeInfo,
tickers, depth, account, order (POST/GET/DELETE), openOrders (GET/DELETE),
allOrders, myTrades, userDataStream; the `/ws/<n>` market streams (SUBSCRIBE to
`<sym>@ticker` / `<sym>@bookTicker`) and the `/ws-api/v3` user data stream
(`userDataStream.subscribe.signature`, then executionReport events). Keys and
HMAC-SHA256 signatures are checked like Binance does and fail with its codes.

Like the real venue: per-symbol `orderTypes` (`order_types`, e.g. a symbol with
STOP_LOSS_LIMIT but no STOP_LOSS, refused with Binance's -2010 text); fees as
Binance spot charges them (`fee_model="binance_spot"`: a buy in the base asset,
a sell in the quote asset, BNB when `bnb_pays` and the account holds BNB);
cancel replies and cancel reports that carry a new clientOrderId (the order's own
as origClientOrderId / `C`); a user stream that is absent (`user_stream="absent"`:
404), does not speak ws-api (`"silent"`: connects, never answers) or is slow
(`user_stream_delay_s`). A small account with holdings from before the engine:
`balances={"USDT": Decimal(1000), "ETH": Decimal(10)}`.

Behind it sits the simulated venue's MatchingEngine and MarketSimulator. Prices
move only when a test calls `step()` / `push_tick()` (or `start_ticking()` for a
demo), so every fill happens when the test decides. Faults come from `faults`
(see tests/fakes/faults.py) and `drop_websockets()` / `refuse_websockets()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from engine.core.model import Fill, MarketTick, Order, OrderStatus, OrderUpdate
from engine.venues.market_sim import MarketSimulator
from engine.venues.matching import MatchingEngine
from tests.fakes import binance_wire as wire
from tests.fakes.binance_streams import BinanceStreams
from tests.fakes.faults import Fault, FaultKind, FaultPlan

RECV_WINDOW_MS = 5000
_PRIVATE = frozenset({"account", "order", "openOrders", "allOrders", "myTrades"})


def _now() -> datetime:
    return datetime.now(UTC)  # test code: the fake keeps wall-clock time like the real venue


# A real-looking account: little cash, coins held before the engine, BNB for fees.
SMALL_ACCOUNT = {"USDT": Decimal(1000), "ETH": Decimal(10), "BNB": Decimal("0.5")}
NO_STOP_MARKET = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"]


class BinanceError(Exception):
    def __init__(self, err: tuple[int, str], status: int = 400) -> None:
        super().__init__(err[1])
        self.code, self.msg, self.status = err[0], err[1], status


class FakeBinance(BinanceStreams):
    def __init__(
        self,
        api_key: str = "fake-key",
        api_secret: str = "fake-secret",
        symbols: Iterable[str] = ("BTC/USDT", "ETH/USDT"),
        balances: dict[str, Decimal] | None = None,
        seed: int = 7,
        *,
        order_types: dict[str, list[str]] | None = None,
        fee_model: str = "quote",
        bnb_pays: bool = False,
        asset_prices: dict[str, Decimal] | None = None,
        user_stream: str = "ws-api",
        user_stream_delay_s: float = 0.0,
    ) -> None:
        self.api_key, self._secret = api_key, api_secret
        self.sim = MarketSimulator(list(symbols), seed, tick_interval_s=1.0)
        self.instruments = self.sim.instruments()
        self.by_id = {wire.market_id(s): s for s in self.instruments}
        self.matching = MatchingEngine(
            self.instruments, balances or {"USDT": Decimal(100_000)}, venue="binance", fee_model=fee_model,
            bnb_pays=bnb_pays, asset_prices=asset_prices,
        )  # fmt: skip
        self.order_types = {s: list(order_types.get(s, wire.ALL_WIRE_TYPES)) for s in self.instruments} if order_types \
            else {s: list(wire.ALL_WIRE_TYPES) for s in self.instruments}
        if user_stream not in ("ws-api", "absent", "silent"):
            raise ValueError(f"user_stream must be ws-api, absent or silent, not {user_stream!r}")
        self.user_stream = user_stream
        self.user_stream_delay_s = user_stream_delay_s
        self.cancel_ids: dict[str, str] = {}  # original client id -> the new id its cancel reply carried
        self.faults = FaultPlan()
        self.submit_attempts: Counter[str] = Counter()  # POST /order per client id, duplicates included
        self.placed: Counter[str] = Counter()  # orders that reached the book per client id
        self.requests: list[tuple[str, str]] = []
        self._order_ids: dict[str, int] = {}
        self._client_of: dict[int, str] = {}
        self._trades: list[tuple[int, Fill]] = []
        self._ids = itertools.count(1000)
        self._volume24: dict[str, Decimal] = {}
        self._market_ws: dict[web.WebSocketResponse, set[str]] = {}
        self._user_ws: set[web.WebSocketResponse] = set()
        self._refuse_ws = 0
        self._ticker_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.step()  # one price per symbol so market orders work at once

    @classmethod
    def real_like(cls, **kw: Any) -> FakeBinance:
        """Binance as an operator's account meets it: 1,000 USDT with 10 ETH and 0.5 BNB held before,
        fees in the base asset on buys (or BNB when `bnb_pays`), ETH/USDT without STOP_LOSS."""
        symbols = list(kw.pop("symbols", ("BTC/USDT", "ETH/USDT")))
        defaults: dict[str, Any] = {
            "balances": dict(SMALL_ACCOUNT), "fee_model": "binance_spot",
            "order_types": {"ETH/USDT": NO_STOP_MARKET}, "asset_prices": {"BNB": Decimal(600)},
        }  # fmt: skip
        return cls(symbols=symbols, **{**defaults, **kw})

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> FakeBinance:
        app = web.Application(middlewares=[self._record, self.faults.middleware])
        app.router.add_route("*", "/api/v3/{name:.+}", self._rest)
        app.router.add_get("/ws-api/v3", self._ws_api)
        app.router.add_get("/ws/{stream}", self._ws_market)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self.stop_ticking()
        for ws in [*self._market_ws, *self._user_ws]:
            with contextlib.suppress(Exception):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeBinance:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v3"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def ws_api_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws-api/v3"

    # -- market control --------------------------------------------------------------------------

    def step(self) -> list[MarketTick]:
        """Advance every symbol by one simulated tick; fills and stream events follow."""
        ticks = self.sim.step(_now())
        for tick in ticks:
            self._apply_tick(tick)
        return ticks

    def push_tick(
        self, symbol: str, bid: Decimal, ask: Decimal, last: Decimal | None = None, volume: Decimal = Decimal(0)
    ) -> MarketTick:
        tick = MarketTick(symbol, _now(), bid, ask, last if last is not None else ask, volume)
        self._apply_tick(tick)
        return tick

    def start_ticking(self, interval_s: float = 0.25) -> None:
        async def run() -> None:
            while True:
                self.step()
                await asyncio.sleep(interval_s)

        self.stop_ticking()
        self._ticker_task = asyncio.get_running_loop().create_task(run())

    def stop_ticking(self) -> None:
        if self._ticker_task is not None:
            self._ticker_task.cancel()
            self._ticker_task = None

    def _apply_tick(self, tick: MarketTick) -> None:
        self._volume24[tick.symbol] = self._volume24.get(tick.symbol, Decimal(0)) + tick.volume
        self._publish(self.matching.on_tick(tick))
        event = self._ticker_event(tick.symbol)
        stream = wire.market_id(tick.symbol).lower()
        book = {"u": wire.ms(tick.ts), "s": event["s"], "b": event["b"], "B": "1", "a": event["a"], "A": "1"}
        for ws, streams in list(self._market_ws.items()):
            if f"{stream}@ticker" in streams:
                self._send(ws, event)
            if f"{stream}@bookTicker" in streams:
                self._send(ws, book)

    def _ticker_event(self, symbol: str) -> dict[str, Any]:
        tick = self.matching.last_tick(symbol)
        assert tick is not None
        inst = self.instruments[symbol]
        return wire.ticker_24hr(inst, tick.bid, tick.ask, tick.last, self._volume24.get(symbol, Decimal(0)),
                                wire.ms(tick.ts))  # fmt: skip

    def fail_next(self, path: str, kind: FaultKind | str, n: int = 1, method: str = "*", **kw: Any) -> None:
        """Fault the next n requests of e.g. "/api/v3/order" (see Fault for delay_s, retry_after_s, status)."""
        self.faults.add(path, Fault(FaultKind(kind), **kw), n, method)

    # -- orders ----------------------------------------------------------------------------------

    def order_id(self, client_id: str) -> int | None:
        return self._order_ids.get(client_id)

    def _publish(self, updates: list[OrderUpdate]) -> None:
        for update in updates:
            order = update.order
            oid = self._order_ids.get(order.client_id)
            if oid is None:
                continue  # a rejection never reached the book
            trade_id = -1
            if update.fill is not None:
                trade_id = next(self._ids)
                self._trades.append((trade_id, update.fill))
            cancel_id = self.cancel_ids.get(order.client_id) if order.status is OrderStatus.CANCELED else None
            report = wire.execution_report(order, oid, wire.ms(_now()), update.fill, trade_id, cancel_id)
            for ws in list(self._user_ws):
                payload = {"subscriptionId": 0, "event": report}
                if self.user_stream_delay_s > 0:  # a slow user stream: the REST reply comes first
                    asyncio.get_event_loop().call_later(self.user_stream_delay_s, self._send, ws, payload)
                else:
                    self._send(ws, payload)

    def _send(self, ws: web.WebSocketResponse, payload: Any) -> None:
        if ws.closed:
            return
        task = asyncio.get_event_loop().create_task(ws.send_str(json.dumps(payload)))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a dead socket is not our error

    def _place(self, p: dict[str, str]) -> dict[str, Any]:
        symbol = self._symbol(p)
        cid = p.get("newClientOrderId") or f"fake-{next(self._ids)}"
        self.submit_attempts[cid] += 1
        if cid in self._order_ids:
            # Binance: "Orders with the same newClientOrderID can be accepted only when the previous one is
            # filled, otherwise the order will be rejected." A resent market order that filled trades twice.
            previous = self.matching.order(cid)
            if previous is None or previous.status is not OrderStatus.FILLED:
                raise BinanceError(wire.ERR_DUPLICATE)
            self.matching._orders.pop(cid, None)
        wire_type = p.get("type", "").upper()
        kind = wire.WIRE_TO_TYPE.get(wire_type)
        if kind is None or "quantity" not in p or "side" not in p:
            raise BinanceError(wire.ERR_MANDATORY)
        if wire_type not in self.order_types[symbol]:
            raise BinanceError((-2010, wire.TYPE_REFUSED.get(wire_type, "Unsupported order combination.")))
        now = _now()
        order = Order(
            cid, symbol, wire.side_of(p["side"]), kind, Decimal(p["quantity"]),
            price=Decimal(p["price"]) if "price" in p else None,
            stop_price=Decimal(p["stopPrice"]) if "stopPrice" in p else None,
            created_at=now,
        )  # fmt: skip
        oid = next(self._ids)
        self._order_ids[cid] = oid  # before submit, so the updates it makes are published
        self._client_of[oid] = cid
        updates = self.matching.submit(order, None, now)
        final = updates[-1].order
        if final.status is OrderStatus.REJECTED:
            del self._order_ids[cid], self._client_of[oid]
            self.matching._orders.pop(cid, None)  # Binance forgets rejected requests; a retry may succeed
            raise BinanceError(wire.reject_code(final.reason))
        self.placed[cid] += 1
        trades_before = len(self._trades)
        self._publish(updates)
        return wire.order_json(final, oid, self._trades[trades_before:])

    def _find(self, p: dict[str, str], err: tuple[int, str]) -> Order:
        self._symbol(p)
        cid = p.get("origClientOrderId")
        if cid is None and "orderId" in p:
            cid = self._client_of.get(int(p["orderId"]))
        order = self.matching.order(cid) if cid else None
        if order is None:
            raise BinanceError(err)
        return order

    def _cancel(self, order: Order, new_client_id: str | None = None) -> dict[str, Any]:
        if not order.status.is_working:
            raise BinanceError(wire.ERR_CANCEL_UNKNOWN)
        # Binance names the cancel request itself: newClientOrderId, or a fresh random id.
        cancel_id = new_client_id or f"cancel{next(self._ids)}x{order.client_id[-6:]}"
        self.cancel_ids[order.client_id] = cancel_id
        update = self.matching.cancel(order.client_id, _now())
        assert update is not None
        self._publish([update])
        return wire.order_json(update.order, self._order_ids[order.client_id], cancel_client_id=cancel_id)

    def _symbol(self, p: dict[str, str], required: bool = True) -> str:
        raw = p.get("symbol")
        if raw is None and not required:
            return ""
        if raw is None:
            raise BinanceError(wire.ERR_MANDATORY)
        if raw not in self.by_id:
            raise BinanceError(wire.ERR_BAD_SYMBOL)
        return self.by_id[raw]

    # -- REST ------------------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        return await handler(request)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = await request.text()
        params = dict(parse_qsl(request.query_string, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        try:
            if name in _PRIVATE:
                self._authenticate(request, body)
            elif name == "userDataStream":
                self._check_key(request)
            result = self._route(request.method, name, params)
        except BinanceError as exc:
            return web.json_response({"code": exc.code, "msg": exc.msg}, status=exc.status)
        if result is None:
            return web.json_response({"code": -1000, "msg": f"unsupported {request.method} {name}"}, status=404)
        return web.json_response(result)

    def _check_key(self, request: web.Request) -> None:
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise BinanceError(wire.ERR_KEY_FORMAT, 401)
        if key != self.api_key:
            raise BinanceError(wire.ERR_KEY_INVALID, 401)

    def _authenticate(self, request: web.Request, body: str) -> None:
        self._check_key(request)
        query, q_sig = wire.strip_signature(request.query_string)
        form, b_sig = wire.strip_signature(body)
        signature = q_sig or b_sig
        if signature is None or signature != wire.sign(query + form, self._secret):
            raise BinanceError(wire.ERR_SIGNATURE)
        params = dict(parse_qsl(query + ("&" if query and form else "") + form))
        window = int(params.get("recvWindow", RECV_WINDOW_MS))
        if abs(wire.ms(_now()) - int(params.get("timestamp", 0))) > window:
            raise BinanceError(wire.ERR_TIMESTAMP)

    def _route(self, method: str, name: str, p: dict[str, str]) -> Any:
        if name == "ping":
            return {}
        if name == "time":
            return {"serverTime": wire.ms(_now())}
        if name == "exchangeInfo":
            symbols = [wire.symbol_info(i, self.order_types[s]) for s, i in self.instruments.items()]
            return {"timezone": "UTC", "serverTime": wire.ms(_now()), "rateLimits": [], "exchangeFilters": [],
                    "symbols": symbols}  # fmt: skip
        if name in ("ticker/24hr", "ticker/bookTicker", "ticker/price"):
            return self._tickers(name, p)
        if name == "depth":
            tick = self.matching.last_tick(self._symbol(p))
            assert tick is not None
            return {"lastUpdateId": wire.ms(tick.ts), "bids": [[wire.num(tick.bid), "1.00000000"]],
                    "asks": [[wire.num(tick.ask), "1.00000000"]]}  # fmt: skip
        if name == "account":
            balances = [
                {"asset": b.asset, "free": wire.num(b.free), "locked": wire.num(b.locked)}
                for b in self.matching.balances().values()
            ]
            return {"makerCommission": 8, "takerCommission": 10, "canTrade": True, "canWithdraw": False,
                    "canDeposit": False, "updateTime": wire.ms(_now()), "accountType": "SPOT",
                    "balances": balances, "permissions": ["SPOT"]}  # fmt: skip
        if name == "order":
            if method == "POST":
                return self._place(p)
            if method == "GET":
                order = self._find(p, wire.ERR_UNKNOWN_ORDER)
                return wire.order_json(order, self._order_ids[order.client_id])
            if method == "DELETE":
                return self._cancel(self._find(p, wire.ERR_CANCEL_UNKNOWN), p.get("newClientOrderId"))
        if name == "openOrders":
            symbol = self._symbol(p, required=method == "DELETE")
            orders = self.matching.open_orders(symbol or None)
            if method == "GET":
                return [wire.order_json(o, self._order_ids[o.client_id]) for o in orders]
            if method == "DELETE":
                if not orders:
                    raise BinanceError(wire.ERR_CANCEL_UNKNOWN)  # what Binance answers when none are open
                return [self._cancel(o) for o in orders]
        if name == "allOrders" and method == "GET":
            symbol = self._symbol(p)
            known = [self.matching.order(cid) for cid in self._order_ids]
            return [wire.order_json(o, self._order_ids[o.client_id]) for o in known if o and o.symbol == symbol]
        if name == "myTrades" and method == "GET":
            return self._my_trades(p)
        if name == "userDataStream":
            return {"listenKey": "fake-listen-key"} if method == "POST" else {}
        return None

    def _tickers(self, name: str, p: dict[str, str]) -> Any:
        if "symbol" in p:
            wanted = [self._symbol(p)]
        elif "symbols" in p:
            wanted = [self._symbol({"symbol": s}) for s in json.loads(p["symbols"])]
        else:
            wanted = list(self.instruments)
        out = []
        for symbol in wanted:
            event = self._ticker_event(symbol)
            full = wire.rest_ticker(event)
            if name == "ticker/bookTicker":
                full = {k: full[k] for k in ("symbol", "bidPrice", "bidQty", "askPrice", "askQty")}
            elif name == "ticker/price":
                full = {"symbol": full["symbol"], "price": full["lastPrice"]}
            out.append(full)
        return out[0] if "symbol" in p else out

    def _my_trades(self, p: dict[str, str]) -> list[dict[str, Any]]:
        symbol = self._symbol(p)
        start = int(p.get("startTime", 0))
        from_id = int(p.get("fromId", 0))
        order_id = int(p["orderId"]) if "orderId" in p else None
        limit = min(int(p.get("limit", 500)), 1000)
        out = []
        for tid, fill in self._trades:
            oid = self._order_ids[fill.client_id]
            if fill.symbol != symbol or wire.ms(fill.ts) < start or tid < from_id:
                continue
            if order_id is not None and oid != order_id:
                continue
            out.append(wire.trade_json(tid, fill, oid))
        return out[:limit]

__all__ = ["BinanceError", "FakeBinance", "Fault", "FaultKind"]
