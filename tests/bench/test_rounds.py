"""`--rounds` (bench/compare.py): each round's department tasks/s beside Temporal with WAL, and the median ratio
that the target is judged by when the shared machine's speed drifts between the two sides."""

from __future__ import annotations

from bench.compare import round_figures, rounds_table
from bench.floors import python_speed


def ours(tasks: float, cpu: float, speed: float) -> dict:
    return {"python_speed_ms": speed, "figures": {
        "department_tasks_decided": {"per_second": tasks},
        "cycle_5_departments_10_clients": {"platform_cpu_ms_per_case": cpu}}}


def temporal(tasks: float | None, cpu: float, speed: float) -> dict:
    if tasks is None:
        return {"python_speed_ms": {"activities-sqlite-wal": speed},
                "runs": {"activities-sqlite-wal": {"error": "TimeoutExpired(...)"}}, "summary": {}}
    return {"python_speed_ms": {"activities-sqlite-wal": speed}, "summary": {"activities-sqlite-wal": {
        "best_tasks_per_second": tasks, "cpu_ms_per_case_10_clients": cpu}}}


def test_a_round_compares_our_tasks_per_second_with_temporal_with_wal():
    r = round_figures(ours(78.1, 159.7, 60.2), temporal(70.49, 150.95, 71.0))
    assert r["ratio"] == 1.108
    assert r["ours_cpu_ms_per_case_10_clients"] == 159.7 and r["peer_cpu_ms_per_case_10_clients"] == 150.95
    assert (r["ours_python_speed_ms"], r["peer_python_speed_ms"]) == (60.2, 71.0)
    assert r["peer_error"] is None


def test_the_table_gives_every_round_and_the_median_ratio():
    rounds = [round_figures(ours(t, 160, 60), temporal(p, 150, 60)) for t, p in ((90, 100), (110, 100), (105, 100))]
    table = rounds_table(rounds)
    assert "| 1 | 90 | 100 | 0.9 |" in table and "| 3 | 105 | 100 | 1.05 |" in table
    assert "Median ratio of 3 round(s): **1.05** (lowest 0.9, highest 1.1)" in table


def test_an_even_number_of_rounds_takes_the_mean_of_the_middle_two():
    rounds = [round_figures(ours(t, 160, 60), temporal(100, 150, 60)) for t in (90, 120)]
    assert "**1.05**" in rounds_table(rounds)


def test_a_round_whose_peer_failed_has_no_ratio_and_says_why():
    rounds = [round_figures(ours(100, 160, 60), temporal(100, 150, 60)),
              round_figures(ours(100, 160, 60), temporal(None, 0, 60))]
    assert rounds[1]["ratio"] is None
    table = rounds_table(rounds)
    assert "Median ratio of 1 round(s): **1**" in table
    assert "No ratio in round(s) 2" in table and "TimeoutExpired" in table


def test_python_speed_is_a_positive_time_in_milliseconds():
    ms = python_speed(repeat=1)
    assert 0 < ms < 10_000
