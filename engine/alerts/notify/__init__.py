"""Outbound alert channels (webhooks, e-mail), delivered off the trading path.

The in-app feed is the bridge's job and the tray and sound are the console's
(``console/notify_desktop.py``); this package only leaves the machine.
"""

from engine.alerts.notify.channel import Channel, DeliveryFailed
from engine.alerts.notify.dispatcher import AlertDispatcher, ChannelStats

__all__ = ["AlertDispatcher", "Channel", "ChannelStats", "DeliveryFailed"]
