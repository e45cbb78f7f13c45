"""Durations as users write them: parsing, formatting, refusals and round trips."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from wellkept.durations import HINT, Duration, format_duration, parse_duration


@pytest.mark.parametrize(("text", "expected"), [
    ("30s", timedelta(seconds=30)),
    ("15min", timedelta(minutes=15)),
    ("12h", timedelta(hours=12)),
    ("30d", timedelta(days=30)),
    ("2w", timedelta(weeks=2)),
    ("250ms", timedelta(milliseconds=250)),
    ("1.5s", timedelta(seconds=1.5)),
    ("0.5h", timedelta(minutes=30)),
    ("90 seconds", timedelta(seconds=90)),
    ("3 minutes", timedelta(minutes=3)),
    ("1 hour", timedelta(hours=1)),
    ("2 days", timedelta(days=2)),
    ("1 week", timedelta(weeks=1)),
    ("5sec", timedelta(seconds=5)),
    ("2hrs", timedelta(hours=2)),
    ("0s", timedelta(0)),
])
def test_parse_single_units(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("1h30min", timedelta(hours=1, minutes=30)),
    ("1h 30min", timedelta(hours=1, minutes=30)),
    ("1d12h", timedelta(days=1, hours=12)),
    ("2w3d4h5min6s", timedelta(weeks=2, days=3, hours=4, minutes=5, seconds=6)),
    ("1s500ms", timedelta(seconds=1.5)),
])
def test_parse_compound(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_parse_ignores_case_and_surrounding_whitespace() -> None:
    assert parse_duration("  30D ") == timedelta(days=30)
    assert parse_duration("15MIN") == timedelta(minutes=15)
    assert parse_duration("30 d") == timedelta(days=30)


def test_parse_passes_timedelta_through() -> None:
    value = timedelta(minutes=7)
    assert parse_duration(value) is value


@pytest.mark.parametrize("bad", [
    "30m",        # minutes or months? refused on purpose
    "m",
    "30",         # a bare number: seconds or days? refused on purpose
    "1.5",
    "",
    "   ",
    "30x",
    "d",
    "1h30",       # trailing number without a unit
    "-5s",
    "30 dayz",
    "1e3s",
    "thirty days",
])
def test_parse_refuses_bad_strings_with_a_hint(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert HINT in message
    assert "15min" in message and "30d" in message


@pytest.mark.parametrize("bad", [30, 30.0, 0, True, False, None, [1], {"d": 1}])
def test_parse_refuses_non_strings(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)


def test_refusal_of_m_says_to_write_min() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("5m")
    assert "min" in str(info.value)


@pytest.mark.parametrize(("value", "text"), [
    (timedelta(weeks=2), "2w"),
    (timedelta(days=90), "90d"),
    (timedelta(days=30), "30d"),
    (timedelta(hours=12), "12h"),
    (timedelta(hours=36), "36h"),
    (timedelta(minutes=15), "15min"),
    (timedelta(minutes=90), "90min"),
    (timedelta(seconds=30), "30s"),
    (timedelta(seconds=1.5), "1.5s"),
    (timedelta(milliseconds=250), "0.25s"),
    (timedelta(0), "0s"),
    (45.0, "45s"),
    (3600, "1h"),
])
def test_format_picks_the_shortest_exact_unit(value: timedelta | float, text: str) -> None:
    assert format_duration(value) == text


@pytest.mark.parametrize("text", ["30s", "15min", "12h", "30d", "2w", "90d", "1.5s", "36h"])
def test_canonical_spellings_round_trip_exactly(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize("text", ["1h30min", "1d12h", "1500ms", "0.5min", "2w3d4h5min6s"])
def test_non_canonical_spellings_round_trip_in_value(text: str) -> None:
    value = parse_duration(text)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize("value", [
    timedelta(seconds=1_000_001),          # 11d 13h 46min 41s: not a whole number of minutes
    timedelta(days=12, seconds=1),
    timedelta(seconds=100_000.5),
    timedelta(microseconds=10),
])
def test_format_of_awkward_values_parses_back_to_the_same_value(value: timedelta) -> None:
    """format_duration must give an exact, parseable spelling (no `1e+06s`, no rounding)."""
    text = format_duration(value)
    assert parse_duration(text) == value, f"{value!r} formatted as {text!r}"


_UNIT_NAMES = ["ms", "s", "sec", "min", "mins", "h", "hr", "hours", "d", "days", "w", "weeks"]
_part = st.tuples(st.integers(min_value=0, max_value=5000), st.sampled_from(_UNIT_NAMES))


@given(st.lists(_part, min_size=1, max_size=4))
@example([(1_000_001, "s")])
@example([(12, "d"), (1, "s")])
@example([(1, "h"), (30, "min")])
def test_property_format_of_parse_parses_back_to_the_same_value(
        parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{amount}{unit}" for amount, unit in parts)
    value = parse_duration(text)
    formatted = format_duration(value)
    assert parse_duration(formatted) == value, f"{text!r} -> {formatted!r}"


@given(st.integers(min_value=0, max_value=10**9))
def test_property_whole_seconds_round_trip(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


class _Model(BaseModel):
    every: Duration


def test_duration_field_validates_and_serialises_in_config_units() -> None:
    model = _Model.model_validate({"every": "1h30min"})
    assert model.every == timedelta(minutes=90)
    assert model.model_dump() == {"every": "90min"}
    assert model.model_dump_json() == '{"every":"90min"}'
    assert _Model.model_validate(model.model_dump()) == model


@pytest.mark.parametrize("bad", ["30", 30, "30m", "", True])
def test_duration_field_refuses_bad_values_with_the_hint(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        _Model.model_validate({"every": bad})
    assert "invalid duration" in str(info.value)
    assert HINT in str(info.value)
