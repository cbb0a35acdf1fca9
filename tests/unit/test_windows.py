from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watchkeeper.windows import format_duration, parse_duration, parse_time, window_start


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("14d", timedelta(days=14)),
        ("2w", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),
        (30, timedelta(seconds=30)),
    ],
)
def test_parse_duration(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["soon", "5", "1y", "-1h", ""])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    for text in ["90s", "15m", "1h", "14d", "2w"]:
        assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)
    assert format_duration(timedelta(days=14)) == "2w"


def test_window_start_is_utc_aligned() -> None:
    at = datetime(2026, 3, 1, 13, 47, tzinfo=UTC)
    assert window_start(at, timedelta(hours=1)) == datetime(2026, 3, 1, 13, tzinfo=UTC)
    assert window_start(at, timedelta(days=1)) == datetime(2026, 3, 1, tzinfo=UTC)
    assert window_start(at, timedelta(minutes=15)) == datetime(2026, 3, 1, 13, 45, tzinfo=UTC)


def test_parse_time_treats_naive_as_utc() -> None:
    assert parse_time("2026-03-01T10:00:00") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_time("2026-03-01T10:00:00+02:00") == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert parse_time("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_an_hour_at_the_edge_of_time_has_no_windows_rather_than_an_overflow() -> None:
    from watchkeeper.monitor.windows import windows_of_hour

    last = datetime(9999, 12, 31, 23, tzinfo=UTC)
    assert list(windows_of_hour(last, timedelta(hours=1))) == []
    assert list(windows_of_hour(datetime(1, 1, 1, tzinfo=UTC), timedelta(days=1))) == [
        datetime(1, 1, 1, tzinfo=UTC)
    ]
