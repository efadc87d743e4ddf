"""The cycle's per-hop gaps (bench/system.py `gaps`): which hop of a case a tail latency is spent in."""

from __future__ import annotations

from bench.system import CaseTrace, gaps, gaps_line


def _trace(submitted: float, **steps: tuple[float, float]) -> CaseTrace:
    t = CaseTrace(submitted_at=submitted)
    t.seen = dict(steps)
    # Every event made 10 ms before it was published (its producer's commit and relay).
    t.emitted = {k: (a - 0.01, b - 0.01) for k, (a, b) in steps.items()}
    return t


def test_each_hop_runs_from_the_latest_point_before_it_and_says_its_relay_part():
    two_stages = _trace(10.0, accepted=(10.1, 10.1), task_assigned=(10.2, 10.5), stage_completed=(10.5, 10.5),
                        decided=(10.7, 10.7), certificate=(11.7, 11.7), delivered=(11.8, 11.8))
    # One stage: its only assignment is also the last, before the stage completes; that hop is 0, not negative.
    one_stage = _trace(20.0, accepted=(20.1, 20.1), task_assigned=(20.2, 20.2), stage_completed=(20.4, 20.4),
                       decided=(20.5, 20.5), certificate=(20.6, 20.6), delivered=(20.7, 20.7))
    hops = gaps([two_stages, one_stage])
    assert list(hops) == ["submit→accepted", "accepted→task_assigned_first", "task_assigned_first→stage_completed",
                          "stage_completed→task_assigned_last", "task_assigned_last→decided", "decided→certificate",
                          "certificate→delivered"]
    assert hops["decided→certificate"] == {"p50": 1000, "p99": 1000, "max": 1000,
                                           "relay_p50": 10, "relay_p99": 10, "relay_max": 10}
    assert hops["stage_completed→task_assigned_last"]["max"] == 0
    # From the completion (20.4), not from the assignment (20.2).
    assert gaps([one_stage])["task_assigned_last→decided"]["max"] == 100
    assert "decided→certificate 1000/1000/1000 (relay 10/10/10)" in gaps_line(hops)
