"""The benchmark table's targets: at most for costs, at least for throughputs, and the verdict each row shows."""

from __future__ import annotations

import pytest

from bench.table import TIMES, Bound, Row, Target, render


@pytest.mark.parametrize(
    ("ratio", "verdict"), [(1.29, f"≤1.3{TIMES} ✓"), (1.3, f"≤1.3{TIMES} ✓"), (1.31, f"≤1.3{TIMES} ✗")]
)
def test_an_at_most_target_is_met_up_to_its_limit(ratio: float, verdict: str) -> None:
    assert Target(1.3).verdict(app=0.002, ratio=ratio) == verdict


@pytest.mark.parametrize(("ratio", "verdict"), [(10.1, f"≥10{TIMES} ✓"), (10, f"≥10{TIMES} ✓"), (9.9, f"≥10{TIMES} ✗")])
def test_an_at_least_target_is_met_from_its_limit_up(ratio: float, verdict: str) -> None:
    assert Target(10, Bound.AT_LEAST).verdict(app=77.0, ratio=ratio) == verdict


@pytest.mark.parametrize(("app", "verdict"), [(1, "≤1 ✓"), (2, "≤1 ✗")])
def test_a_count_target_judges_the_apps_own_figure_not_the_ratio(app: float, verdict: str) -> None:
    assert Target(1, of_ratio=False).verdict(app=app, ratio=app / 50) == verdict


def test_the_table_shows_each_rows_figures_ratio_and_the_verdict_on_that_ratio() -> None:
    throughput = Target(3, Bound.AT_LEAST)
    rows = [
        Row("make_call throughput, 4 concurrent vs 1", 30.4, 7.7, throughput, per_second=True, paired_ratio=2.9),
        Row("make_call p50, 4 concurrent vs 1", 0.1375, 0.125, Target(1.2)),
        Row("TCP connections to Twilio", 1, 50, Target(1, of_ratio=False), count=True),
    ]

    lines = render(rows).splitlines()

    assert [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines[2:]] == [
        ["make_call throughput, 4 concurrent vs 1", "30.4/s", "7.7/s", f"2.90{TIMES}", f"≥3{TIMES} ✗"],
        ["make_call p50, 4 concurrent vs 1", "137.5 ms", "125.0 ms", f"1.10{TIMES}", f"≤1.2{TIMES} ✓"],
        ["TCP connections to Twilio", "1", "50", f"0.02{TIMES}", "≤1 ✓"],
    ]
