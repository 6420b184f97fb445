"""The bench's reading of the 70 % target (bench/run.py): the highest of three maxima is
Rabta's, and the median of three runs at 70 % of it decides."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import run as bench  # bench/ is a folder of scripts, not a package


def _open_loop(scenario: str, p99_ms: float, *, timeouts: int = 0) -> dict:
    return {
        "app": "rabta",
        "workers": 2,
        "scenario": scenario,
        "tool": "loadgen",
        "rate_target": 500.0,
        "rps": 499.0,
        "p99_ms": p99_ms,
        "by_status": {"200": {"p99_ms": p99_ms}},
        "statuses": {"200": 6000},
        "timeouts": timeouts,
        "errors": timeouts,
        "seconds": [],
        "cpu_ms": 1.5,
    }


def _closed(scenario: str, rps: float = 600.0) -> dict:
    return {
        "app": "rabta",
        "workers": 2,
        "scenario": scenario,
        "tool": "wrk",
        "rps": rps,
        "cpu_ms": 1.5,
    }


def _index(p99s: list[float], timeouts: tuple[int, ...] = (0, 0, 0)) -> dict:
    results = [_closed("sms", 580.0), _closed(bench.max_again(2), 801.0)]
    results += [_closed(bench.max_again(3), 642.0)]
    for n, (p99, late) in enumerate(zip(p99s, timeouts, strict=False), start=1):
        results.append(_open_loop(bench.steady_run(n), p99, timeouts=late))
    return {(r["app"], r["workers"], r["scenario"]): r for r in results}


@pytest.mark.parametrize(
    ("p99s", "met", "median"),
    [
        ([248.0, 42.7, 30.0], True, "42.7"),  # one slow run does not decide
        ([42.7, 60.0, 248.0], False, "60.0"),  # nor does one fast one
        ([20.0, 60.0], False, "60.0"),  # two runs: the slower of the middle ones
        ([49.0], True, None),  # a single run reads as it did before there were three
    ],
)
def test_the_median_run_decides(p99s: list[float], met: bool, median: str | None) -> None:
    target = bench.steady_target(_index(p99s))
    assert target is not None
    assert target["met"] is met
    if median is None:
        assert "median" not in target["measured"]
    else:
        assert f"the median of {len(p99s)} runs {median} ms" in target["measured"]
        assert "the highest of the maxima 580, 801, 642/s" in target["measured"]
    assert target["measured"].count("p99 of replies") == len(p99s)


def test_a_timeout_in_any_run_misses() -> None:
    target = bench.steady_target(_index([10.0, 10.0, 10.0], timeouts=(0, 3, 0)))
    assert target is not None
    assert target["met"] is False


def test_no_seventy_per_cent_run_no_target() -> None:
    assert bench.steady_target({}) is None


def test_the_highest_maximum_is_rabtas() -> None:
    top = bench.maximum_of(_index([10.0]))
    assert top is not None
    assert top["scenario"] == bench.max_again(2)
    assert top["rps"] == 801.0
