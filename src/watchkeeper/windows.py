"""Durations and UTC-aligned windows. Time is always passed in, never read here."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


LONGEST = timedelta(days=36_600)  # a century: longer is a typo, and overflows date arithmetic
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)  # the times a query may name
LATEST_TIME = datetime(3000, 1, 1, tzinfo=UTC)


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """A duration such as ``"90s"``, ``"15m"``, ``"1h"``, ``"14d"`` (or seconds) as a timedelta."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 1h, 15m or 14d")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if not match:
            raise ValueError(
                f"{text!r} is not a duration; use a number and a unit: ms, s, m, h, d, w"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)].total_seconds()
    if not 0 <= seconds <= LONGEST.total_seconds():
        raise ValueError(f"{text!r} is not a duration between 0 and {LONGEST.days} days")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit].total_seconds()
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds}s"


def as_utc(value: datetime) -> datetime:
    """A naive datetime is taken to be UTC; an aware one is converted to UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_time(text: str | datetime) -> datetime:
    """An ISO 8601 time (naive means UTC) as an aware UTC datetime."""
    if isinstance(text, datetime):
        found = as_utc(text)
    else:
        try:
            found = as_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
        except (ValueError, OverflowError) as exc:
            raise ValueError(
                f"{text!r} is not an ISO 8601 time such as 2026-01-31T12:00:00Z"
            ) from exc
    if not EARLIEST_TIME <= found < LATEST_TIME:
        raise ValueError(
            f"{text!s} is outside the times watchkeeper answers for "
            f"({EARLIEST_TIME.year} to {LATEST_TIME.year - 1})"
        )
    return found


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH = EPOCH


def window_start(at: datetime, size: timedelta) -> datetime:
    """The start of the UTC-aligned window of ``size`` that contains ``at``."""
    step = int(size.total_seconds() * 1_000_000)
    offset = int((as_utc(at) - _EPOCH) / timedelta(microseconds=1))
    return _EPOCH + timedelta(microseconds=offset - offset % step)
