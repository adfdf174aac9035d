"""A link's conditions: delay, jitter and rate per direction, parsed from what a user types (``20ms``,
``2mbit``) and checked before anything changes.

Directions are named from the replica's point of view on its link to its source: ``to-replica`` carries the
binary log (primary -> replica), ``to-primary`` carries the replica's requests and semi-sync acks. A delay
is added to each direction shaped (netem's convention), so ``--delay 20ms`` on both adds 40 ms to a round
trip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

TO_REPLICA, TO_PRIMARY = "to-replica", "to-primary"
DIRECTIONS = (TO_REPLICA, TO_PRIMARY)
MAX_DELAY_MS = 10_000.0  # 10 s one way: more is no network replication can run over
MIN_RATE_BPS, MAX_RATE_BPS = 8_000, 100_000_000_000  # 8 kbit/s .. 100 gbit/s

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h)?\s*$", re.IGNORECASE)
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps|b|k|m|g)?\s*$",
                   re.IGNORECASE)
_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
# tc's units: kbit = 1000 bit/s; "bps" is bytes per second, as in tc
_BPS = {"bit": 1, "b": 1, "kbit": 1_000, "k": 1_000, "mbit": 1_000_000, "m": 1_000_000, "gbit": 1_000_000_000,
        "g": 1_000_000_000, "bps": 8, "kbps": 8_000, "mbps": 8_000_000, "gbps": 8_000_000_000}


def parse_delay(text: str | float | int, what: str = "--delay") -> float:
    """Milliseconds from ``20ms``, ``1.5s``, ``500us`` or a bare number of milliseconds; ConfigError for a
    negative, malformed or absurd (over 10 s) value."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        if text.strip().startswith("-"):
            raise ConfigError(f"{what} {text!r} is negative: a link cannot deliver before it was sent")
        m = _DURATION.match(text)
        if not m:
            raise ConfigError(f"{what} {text!r} is not a duration: use e.g. 20ms, 1.5s or 500us")
        value = float(m.group(1)) * _MS[(m.group(2) or "ms").lower()]
    if value < 0:
        raise ConfigError(f"{what} {value:g}ms is negative: a link cannot deliver before it was sent")
    if value > MAX_DELAY_MS:
        shown = text.strip() if isinstance(text, str) else _ms(value)
        raise ConfigError(f"{what} {shown} is absurd for a network link (at most {_ms(MAX_DELAY_MS)} one way)",
                          hint="a link that long is a partition: replab partition NODE")
    return value


def parse_rate(text: str | float | int) -> int:
    """Bits per second from ``2mbit``, ``512kbit``, ``1gbit`` (tc's units; ``bps`` = bytes/s)."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        if text.strip().startswith("-"):
            raise ConfigError(f"--rate {text!r} is negative")
        m = _RATE.match(text)
        if not m:
            raise ConfigError(f"--rate {text!r} is not a rate: use e.g. 2mbit, 512kbit or 1gbit")
        value = float(m.group(1)) * _BPS[(m.group(2) or "bit").lower()]
    if value <= 0:
        raise ConfigError("--rate 0 carries nothing: to cut a link use replab partition NODE")
    if value < MIN_RATE_BPS:
        raise ConfigError(f"--rate {rate_text(int(value))} is below {rate_text(MIN_RATE_BPS)}: replication cannot "
                          "even keep its connection alive over that", hint="to cut a link use replab partition NODE")
    if value > MAX_RATE_BPS:
        raise ConfigError(f"--rate {rate_text(int(value))} is absurd (at most {rate_text(MAX_RATE_BPS)})")
    return int(value)


def _ms(value: float) -> str:
    return f"{value / 1000:g}s" if value >= 1000 else f"{value:g}ms"


def rate_text(bps: int) -> str:
    for unit, size in (("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1_000)):
        if bps >= size:
            return f"{bps / size:g}{unit}"
    return f"{bps}bit"


@dataclass(frozen=True)
class Conditions:
    """One direction's conditions; all zero is a plain link."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_bps: int = 0

    def __bool__(self) -> bool:
        return bool(self.delay_ms or self.jitter_ms or self.rate_bps)

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in (("delay_ms", self.delay_ms), ("jitter_ms", self.jitter_ms),
                                  ("rate_bps", self.rate_bps)) if v}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Conditions:
        data = data or {}
        return cls(float(data.get("delay_ms") or 0), float(data.get("jitter_ms") or 0), int(data.get("rate_bps") or 0))

    def text(self) -> str:
        if not self:
            return "plain"
        parts = []
        if self.delay_ms or self.jitter_ms:
            parts.append(_ms(self.delay_ms) + (f" ±{_ms(self.jitter_ms)}" if self.jitter_ms else ""))
        if self.rate_bps:
            parts.append(rate_text(self.rate_bps))
        return " ".join(parts)


def conditions(delay: str | float | None = None, jitter: str | float | None = None,
               rate: str | float | None = None) -> Conditions:
    """Checked conditions from user values (None: not given). Jitter needs a delay at least as large."""
    delay_ms = parse_delay(delay) if delay is not None else 0.0
    jitter_ms = parse_delay(jitter, "--jitter") if jitter is not None else 0.0
    if jitter_ms > delay_ms:
        raise ConfigError(f"--jitter {_ms(jitter_ms)} is larger than --delay {_ms(delay_ms)}: a packet would leave "
                          "before it was sent", hint="give a --delay of at least the jitter")
    return Conditions(delay_ms, jitter_ms, parse_rate(rate) if rate is not None else 0)


def directions(direction: str | None) -> tuple[str, ...]:
    """The directions ``--direction`` names (both when None)."""
    if direction is None or direction == "both":
        return DIRECTIONS
    if direction not in DIRECTIONS:
        raise ConfigError(f"--direction {direction!r}: use to-replica (primary -> replica), to-primary "
                          "(replica -> primary) or leave it out for both")
    return (direction,)


def describe(link: dict[str, Conditions]) -> str:
    """``to-replica 20ms ±5ms 2mbit, to-primary 20ms`` (``plain`` when nothing is shaped)."""
    shaped = [f"{d} {link[d].text()}" for d in DIRECTIONS if link.get(d)]
    return ", ".join(shaped) if shaped else "plain"
