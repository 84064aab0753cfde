"""Webhooks against a local HTTP receiver: formats, retries, 429, giving up, pacing, and the order path.

The receiver is aiohttp on 127.0.0.1. Waits are condition polls with deadlines; backoff and
Retry-After waits go through an injected ``sleep`` that records what was asked for, so the
tests check the waiting without spending it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backends import fail

from engine.alerts.notify.dispatcher import AlertDispatcher
from engine.alerts.notify.named_secrets import load_named_secret, store_named_secret
from engine.alerts.notify.webhook import WebhookChannel
from engine.core.alerts_config import WebhookConfig
from engine.core.events import AlertEvent, EventBus
from engine.core.model import AlertLevel, OrderStatus
from engine.core.paths import AppPaths
from engine.persistence.secrets import CredentialStore
from tests.engine_rig import buy, make_engine, settings_for, started, stop, until
from tests.fakes.webhook_receiver import SECRET_PATH, Receiver
from tests.test_secrets import memory_keyring  # noqa: F401  (the fixture, used through pytestmark)

TS = datetime(2026, 2, 2, 9, 30, tzinfo=UTC)

# One list: a second `pytestmark =` used to replace the first, silently dropping the 60 s timeout.
pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("memory_keyring")]  # never the operator's keyring


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


class Sleeps:
    """A ``sleep`` that records the delay, advances a fake clock, and only yields."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.t = 1000.0

    async def __call__(self, delay: float) -> None:
        self.asked.append(delay)
        self.t += delay
        await asyncio.sleep(0)


def hook(name: str = "ops", fmt: str = "json", **kw: Any) -> WebhookConfig:
    return WebhookConfig(name=name, format=fmt, url_secret=f"{name}-url", **kw)  # type: ignore[arg-type]


def alert(level: AlertLevel = AlertLevel.WARNING, code: str = "venue_error", message: str = "venue said no",
          alert_id: str = "a-1") -> AlertEvent:  # fmt: skip
    return AlertEvent(TS, level, code, message, key=code, alert_id=alert_id)


def channel(cfg: WebhookConfig, url: str, sleeps: Sleeps, **kw: Any) -> WebhookChannel:
    return WebhookChannel(cfg, lambda: url, backoff_s=0.5, sleep=sleeps, monotonic=lambda: sleeps.t, **kw)


Dispatching = tuple[AlertDispatcher, EventBus, list[AlertEvent]]


@asynccontextmanager
async def dispatching(*channels: WebhookChannel, **kw: Any) -> AsyncIterator[Dispatching]:
    """A dispatcher on a bus whose alerts are recorded, like the engine's ``alert``."""
    bus = EventBus()
    seen: list[AlertEvent] = []
    bus.subscribe(seen.append, AlertEvent)

    def raise_alert(level: AlertLevel, code: str, message: str, key: str) -> None:
        bus.publish(AlertEvent(TS, level, code, message, key))

    d = AlertDispatcher(bus, list(channels), raise_alert, **kw)
    d.start()
    try:
        yield d, bus, seen
    finally:
        await d.aclose(grace_s=0)


def test_slack_discord_and_json_bodies_are_delivered_and_info_is_not() -> None:
    async def scenario() -> None:
        sleeps = Sleeps()
        async with Receiver() as rx:
            chans = [channel(hook("s", "slack"), rx.url("/slack"), sleeps),
                     channel(hook("d", "discord"), rx.url("/discord"), sleeps),
                     channel(hook("j", "json"), rx.url("/json"), sleeps)]  # fmt: skip
            async with dispatching(*chans) as (d, bus, _):
                bus.publish(alert(AlertLevel.INFO, "heartbeat", "below every channel's level"))
                bus.publish(alert(AlertLevel.CRITICAL, "stop_loss_hit", "Stop loss hit on BTC/USDT " + "x" * 3000))
                # The receiver records a body before it answers; the sender counts it only once it has read
                # the answer. Waiting for the receiver alone and then asserting the sender's count raced.
                await until(lambda: len(rx.delivered) == 3 and all(s.delivered == 1 for s in d.stats().values()),
                            what="three deliveries, counted by the sender")  # fmt: skip
                bodies = dict(rx.delivered)
                assert all(s.failed == 0 for s in d.stats().values())
        assert "CRITICAL" in bodies["/slack"]["text"] and "Stop loss hit on BTC/USDT" in bodies["/slack"]["text"]
        assert len(bodies["/discord"]["content"]) == 2000 and "stop_loss_hit" in bodies["/discord"]["content"]
        j = bodies["/json"]
        assert (j["level"], j["code"], j["alert_id"]) == ("CRITICAL", "stop_loss_hit", "a-1")
        assert j["ts"] == TS.isoformat() and j["message"].startswith("Stop loss hit on BTC/USDT")
        assert not any(b.get("code") == "heartbeat" for _, b in rx.requests)

    run(scenario())


def test_retried_after_500s_with_growing_backoff() -> None:
    async def scenario() -> None:
        sleeps = Sleeps()
        async with Receiver() as rx:
            rx.script = [(500, {}), (503, {}), (502, {})]
            async with dispatching(channel(hook(max_retries=5), rx.url(), sleeps)) as (d, bus, seen):
                bus.publish(alert())
                await until(lambda: d.stats()["webhook 'ops'"].delivered == 1, what="delivery after three 5xx")
                stats = d.stats()["webhook 'ops'"]
        assert len(rx.requests) == 4
        assert sleeps.asked == [0.5, 1.0, 2.0]  # exponential backoff between the attempts
        assert (stats.delivered, stats.failed, stats.retries) == (1, 0, 3)
        assert not [a for a in seen if a.code == "alert_delivery_failed"]

    run(scenario())


def test_429_waits_as_long_as_retry_after_says() -> None:
    async def scenario() -> None:
        sleeps = Sleeps()
        async with Receiver() as rx:
            rx.script = [(429, {"Retry-After": "7"})]
            async with dispatching(channel(hook(), rx.url(), sleeps)) as (_, bus, _seen):
                bus.publish(alert())
                await until(lambda: len(rx.delivered) == 1, what="delivery after a 429")
        assert len(rx.requests) == 2
        assert 7.0 in sleeps.asked

    run(scenario())


def test_gives_up_after_max_retries_and_says_so_without_the_url() -> None:
    async def scenario() -> None:
        sleeps = Sleeps()
        async with Receiver() as bad, Receiver() as good:
            bad.script = [(500, {})] * 10
            failing = channel(hook("ops", max_retries=2), bad.url(), sleeps)
            other = channel(hook("backup", min_level="WARNING"), good.url("/backup"), sleeps)
            async with dispatching(failing, other) as (d, bus, seen):
                bus.publish(alert(AlertLevel.CRITICAL, "breaker_trip", "daily loss limit hit"))
                await until(lambda: any(a.code == "alert_delivery_failed" for a in seen), what="the failure alert")
                failed = next(a for a in seen if a.code == "alert_delivery_failed")
                # the failure alert went to the healthy channel, never back to the failing one
                await until(lambda: len(good.delivered) == 2, what="the failure alert on the other channel")
                assert d.stats()["webhook 'ops'"].queued == 0 and len(bad.requests) == 3
                stats = d.stats()
        assert failed.level is AlertLevel.WARNING
        assert "webhook 'ops'" in failed.message and "HTTP 500" in failed.message and "breaker_trip" in failed.message
        for secret in (SECRET_PATH, "xoxb", str(bad.port), "127.0.0.1"):
            assert secret not in failed.message
        assert [b["code"] for _, b in good.delivered] == ["breaker_trip", "alert_delivery_failed"]
        assert (stats["webhook 'ops'"].failed, stats["webhook 'ops'"].delivered) == (1, 0)
        assert "HTTP 500" in stats["webhook 'ops'"].last_error

    run(scenario())


def test_two_failing_channels_do_not_bounce_failure_alerts_between_them() -> None:
    async def scenario() -> tuple[Receiver, Receiver, list[AlertEvent]]:
        sleeps = Sleeps()
        async with Receiver() as a, Receiver() as b:
            a.script, b.script = [(500, {})] * 10, [(500, {})] * 10
            chans = [channel(hook(n, max_retries=0), rx.url(), sleeps) for n, rx in (("a", a), ("b", b))]
            async with dispatching(*chans, failure_alert_interval_s=0) as (d, bus, seen):
                bus.publish(alert())

                def settled() -> bool:
                    busy = any(lane.busy for lane in d._lanes)
                    return len(seen) == 5 and not busy and all(s.queued == 0 for s in d.stats().values())

                await until(settled, what="both channels to settle")
        return a, b, seen

    a, b, seen = run(scenario())
    # each channel got the alert and the other's failure report, and nothing more
    assert [body["code"] for _, body in a.requests] == ["venue_error", "alert_delivery_failed"]
    assert [body["code"] for _, body in b.requests] == ["venue_error", "alert_delivery_failed"]
    failures = [x for x in seen if x.code == "alert_delivery_failed"]
    assert len(failures) == 4 and sum(x.key.endswith(":relay") for x in failures) == 2  # shown in the app only


def test_network_errors_are_retried_and_reported_without_host_or_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async def scenario() -> None:
        # A port that is bound but never listened on refuses every connection, and stays ours for the
        # whole test (a port freed by a closed receiver could be taken by any other process meanwhile).
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed_door:
            closed_door.bind(("127.0.0.1", 0))
            port = closed_door.getsockname()[1]
            await refused_at(f"http://127.0.0.1:{port}{SECRET_PATH}", port)

    async def refused_at(url: str, port: int) -> None:
        sleeps = Sleeps()
        async with dispatching(channel(hook(max_retries=1), url, sleeps)) as (_, bus, seen):
            bus.publish(alert())
            await until(lambda: any(a.code == "alert_delivery_failed" for a in seen), what="the failure alert")
        failed = next(a for a in seen if a.code == "alert_delivery_failed")
        assert "network error" in failed.message and "2 attempt" in failed.message
        assert SECRET_PATH not in failed.message and str(port) not in failed.message
        assert "network error" in caplog.text and SECRET_PATH not in caplog.text  # nor in the log

    run(scenario())


def test_rate_limit_holds_in_any_minute() -> None:
    async def scenario() -> None:
        sleeps = Sleeps()
        async with Receiver(now=lambda: sleeps.t) as rx:
            chan = channel(hook(rate_limit_per_min=6), rx.url(), sleeps)
            async with dispatching(chan) as (_, bus, _seen):
                for i in range(5):
                    bus.publish(alert(alert_id=f"a-{i}"))
                await until(lambda: len(rx.delivered) == 5, what="five deliveries")
        gaps = [b - a for a, b in zip(rx.arrivals, rx.arrivals[1:], strict=False)]
        assert all(g >= 10.0 - 1e-9 for g in gaps), gaps  # 6 a minute: one every 10 s
        assert [b["alert_id"] for _, b in rx.delivered] == [f"a-{i}" for i in range(5)]

    run(scenario())


def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    async def scenario() -> None:
        sleeps = Sleeps()
        async with Receiver() as rx:
            chan = channel(hook(), rx.url(), sleeps)
            async with dispatching(chan, queue_size=2) as (d, bus, _):
                for i in range(5):  # published before the lane's task runs once
                    bus.publish(alert(alert_id=f"a-{i}"))
                assert d.stats()["webhook 'ops'"].dropped == 3
                await until(lambda: len(rx.delivered) == 2, what="the two kept alerts")
        assert [b["alert_id"] for _, b in rx.delivered] == ["a-3", "a-4"]

    run(scenario())


def test_daily_summary_goes_out_regardless_of_min_level_when_sending_is_on() -> None:
    summary = AlertEvent(TS, AlertLevel.INFO, "daily_summary", "Daily summary 2026-02-02\nDay P&L +12.00")

    async def scenario(send: bool) -> list[tuple[str, dict[str, Any]]]:
        sleeps = Sleeps()
        async with Receiver() as rx:
            chan = channel(hook("ops", "slack", min_level="CRITICAL"), rx.url(), sleeps)
            async with dispatching(chan, send_daily_summary=send) as (_, bus, _seen):
                bus.publish(summary)
                bus.publish(alert(AlertLevel.EMERGENCY, "estop", "marker after the summary"))
                await until(lambda: any("marker" in b["text"] for _, b in rx.delivered), what="the marker")
            return rx.delivered

    sent = run(scenario(True))
    assert sent[0][1]["text"] == summary.message
    assert len(run(scenario(False))) == 1


def test_a_missing_secret_is_a_delivery_failure_naming_the_secret(tmp_path: Path) -> None:
    async def scenario() -> list[AlertEvent]:
        from engine.core.alerts_config import AlertsConfig

        cfg = AlertsConfig(webhooks=[hook("ops")])
        bus = EventBus()
        seen: list[AlertEvent] = []
        bus.subscribe(seen.append, AlertEvent)
        d = AlertDispatcher.from_settings(cfg, bus, lambda lv, c, m, k: bus.publish(AlertEvent(TS, lv, c, m, k)),
                                          lambda: CredentialStore(tmp_path))  # fmt: skip
        d.start()
        bus.publish(alert())
        await until(lambda: len(seen) == 2, what="the failure alert")
        await d.aclose()
        return seen

    failed = run(scenario())[1]
    assert failed.code == "alert_delivery_failed"
    assert "'ops-url'" in failed.message and "TRADING_CONSOLE_SECRET_OPS_URL" in failed.message


def test_cli_stores_the_url_and_the_channel_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from console.__main__ import main

    monkeypatch.setenv("TRADING_CONSOLE_HOME", str(tmp_path))
    data_dir = AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs").data_dir

    async def scenario() -> list[tuple[str, dict[str, Any]]]:
        from engine.core.alerts_config import AlertsConfig

        async with Receiver() as rx:
            monkeypatch.setattr("sys.stdin", io.StringIO(rx.url() + "\n"))
            assert main(["secrets", "set", "ops-url"]) == 0
            bus = EventBus()
            d = AlertDispatcher.from_settings(AlertsConfig(webhooks=[hook("ops")]), bus, lambda *a: None,
                                              lambda: CredentialStore(data_dir))  # fmt: skip
            d.start()
            bus.publish(alert())
            await until(lambda: len(rx.delivered) == 1, what="delivery through the stored URL")
            await d.aclose()
            return rx.delivered

    assert run(scenario())[0][1]["code"] == "venue_error"
    out = capsys.readouterr()
    assert "stored secret 'ops-url'" in out.out and SECRET_PATH not in out.out + out.err
    assert load_named_secret(CredentialStore(data_dir), "ops-url", ).endswith(SECRET_PATH)  # type: ignore[union-attr]
    assert not any(data_dir.glob("*.enc"))  # the keyring holds it, no file


def test_without_a_keyring_the_environment_gives_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keyring.set_keyring(fail.Keyring())  # the autouse fixture restores the previous backend

    async def scenario() -> int:
        from engine.core.alerts_config import AlertsConfig

        async with Receiver() as rx:
            monkeypatch.setenv("TRADING_CONSOLE_SECRET_OPS_URL", rx.url())
            bus = EventBus()
            d = AlertDispatcher.from_settings(AlertsConfig(webhooks=[hook("ops")]), bus, lambda *a: None,
                                              lambda: CredentialStore(tmp_path))  # fmt: skip
            d.start()
            bus.publish(alert())
            await until(lambda: len(rx.delivered) == 1, what="delivery through the environment's URL")
            await d.aclose()
            return len(rx.delivered)

    assert run(scenario()) == 1


def test_a_hanging_webhook_never_blocks_an_order(tmp_path: Path) -> None:
    """Acceptance: an order is submitted and filled while the webhook request still hangs."""

    async def scenario() -> None:
        async with Receiver() as rx:
            rx.hang = True
            store_named_secret(CredentialStore(tmp_path), "ops-url", rx.url())
            settings = settings_for()
            settings.alerts.webhooks = [hook("ops", timeout_s=600, max_retries=0)]
            e = await started(make_engine(tmp_path, settings))
            e.notifier.grace_s = 0.1
            e.alert(AlertLevel.CRITICAL, "venue_error", "the venue is slow")
            await until(lambda: rx.hanging == 1, what="the webhook request to hang")
            order = e.submit_intent(buy(e, "BTC/USDT"))
            assert order is not None
            await until(lambda: e.book.get(order.client_id).status is OrderStatus.FILLED, what="the fill")
            assert e.venue.submits and e.portfolio.qty("BTC/USDT") > 0  # type: ignore[attr-defined]
            assert rx.hanging == 1 and rx.delivered == []  # the webhook is still hanging
            assert e.notifier.stats()["webhook 'ops'"].delivered == 0
            await stop(e)

    run(scenario())
