"""Channels by name: a new channel is one module and one entry here."""

from __future__ import annotations

from bot.channels.base import Channel
from bot.channels.sms import sms
from bot.channels.telegram import telegram
from bot.channels.ussd import ussd
from bot.channels.whatsapp import whatsapp

CHANNELS: dict[str, Channel] = {
    sms.name: sms,
    whatsapp.name: whatsapp,
    telegram.name: telegram,
    ussd.name: ussd,
}
