"""The benchmark's statistics (the benchmark itself is a script, not a test)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import benchmark  # noqa: E402


def test_ratios_pair_each_repetition_rather_than_dividing_medians():
    # The machine slows by 3x for the last two repetitions: both implementations' runs
    # move together, so every pair says 0.5, while the medians' quotient does not.
    runs = {"nndl": [1.0, 1.0, 3.0, 3.0, 1.0], "torch": [2.0, 2.0, 6.0, 6.0, 2.0]}
    assert benchmark.paired_ratio(runs, "nndl", "torch") == (0.5, 0.5, 0.5)
    runs = {"nndl": [1.0, 3.0, 3.0], "torch": [4.0, 4.0, 2.0]}
    assert benchmark.paired_ratio(runs, "nndl", "torch") == (0.75, 0.25, 1.5)


def test_median_times_interleaves_and_keeps_every_run(monkeypatch):
    monkeypatch.setattr(benchmark, "SETTLE_S", 0.0)
    order = []
    jobs = {"a": (lambda: order.append("a") or 2.0, 10.0), "b": (lambda: order.append("b") or 1.0, 1.0)}
    med, runs = benchmark.median_times(jobs, 3)
    assert order == ["a", "b"] * 3
    assert med == {"a": 20.0, "b": 1.0} and runs == {"a": [20.0] * 3, "b": [1.0] * 3}
    assert benchmark.paired_ratio(runs, "a", "b") == pytest.approx((20.0, 20.0, 20.0))
