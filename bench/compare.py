"""`--baseline <git ref>`: the same harness on a worktree of the reference commit, then on this tree, one
after the other on the same machine, and each figure with its ratio to the baseline.

The baseline runs in a child process whose `deploy`, `shared` and `services` come from a detached git
worktree of the ref (so `deploy.launcher` starts the baseline's processes), and whose `bench` is a copy of
this tree's harness (so both trees are driven and measured by the same code). The venv is this one: the
dependencies of the trees compared are expected to be a superset of the baseline's (a ref whose pins differ
beyond that needs its own `make venv`). The little the harness must know of an older tree it finds by
probing (bench/system.py: a 404 or 422 where the newer tree has a route or a field)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def progress(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def run_baseline(ref: str, child_args: list[str]) -> dict[str, Any]:
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    scratch = Path(tempfile.mkdtemp(prefix="yimen-bench-baseline-"))
    tree = scratch / f"tree-{sha[:8]}"
    harness = scratch / "harness"
    progress(f"baseline: worktree of {ref} ({sha[:10]}) in {tree}")
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(tree), sha], cwd=ROOT, check=True)
    try:
        shutil.copytree(ROOT / "bench", harness / "bench",
                        ignore=shutil.ignore_patterns("results", "profiles", "__pycache__"))
        out = scratch / "baseline.json"
        env = {**os.environ, "PYTHONPATH": str(tree)}
        # cwd = the harness copy: `python -m bench` finds this tree's harness first, then the baseline's code.
        subprocess.run([sys.executable, "-m", "bench", *child_args, "--out", str(out)], cwd=harness, env=env,
                       check=True)
        report = json.loads(out.read_text())
        report["tree"] = {"ref": ref, "commit": sha}
        return report
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def _get(report: dict[str, Any], *path: str) -> Any:
    cur: Any = report
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def _submit_p50_at(report: dict[str, Any], rate: int) -> Any:
    steps = _get(report, "figures", "submit_highest_sustained_rate", "steps")
    for s in json.loads(steps) if steps else []:
        if s.get("offered_per_second") == rate:
            return s.get("p50_ms")
    return None


#: (label, how to read it, which way is better: +1 higher, -1 lower, 0 neither)
KEY_FIGURES: list[tuple[str, Any, int]] = [
    ("floor H: bare FastAPI request p50 ms", lambda r: _get(r, "floors", "H_fastapi_request", "p50_ms"), 0),
    ("floor C: bare PostgreSQL commit p50 ms", lambda r: _get(r, "floors", "C_commit_postgresql", "p50_ms"), 0),
    ("cycle, 5 departments, 10 clients: p50 ms",
     lambda r: _get(r, "figures", "cycle_5_departments_10_clients", "p50_ms"), -1),
    ("cycle, 5 departments, 10 clients: p99 ms",
     lambda r: _get(r, "figures", "cycle_5_departments_10_clients", "p99_ms"), -1),
    ("cycle, 5 departments, 10 clients: cases/s",
     lambda r: _get(r, "figures", "cycle_5_departments_10_clients", "cases_per_second"), 1),
    ("department tasks decided per second (best of 1/10/50 clients)",
     lambda r: _get(r, "figures", "department_tasks_decided", "per_second"), 1),
    ("platform CPU ms per five-department case (10 clients)",
     lambda r: _get(r, "figures", "cycle_5_departments_10_clients", "platform_cpu_ms_per_case"), -1),
    ("SQL statements per five-department case (10 clients)",
     lambda r: _get(r, "figures", "cycle_5_departments_10_clients", "sql_statements_per_case"), -1),
    ("SQL transactions per five-department case (10 clients)",
     lambda r: _get(r, "figures", "cycle_5_departments_10_clients", "sql_transactions_per_case"), -1),
    ("PostgreSQL pages touched per five-department case (10 clients; pg_stat_statements)",
     lambda r: _get(r, "figures", "cycle_5_departments_10_clients", "postgres_pages_per_case"), -1),
    ("SQL statements per five-department case (1 client)",
     lambda r: _get(r, "figures", "cycle_5_departments_1_clients", "sql_statements_per_case"), -1),
    ("SQL transactions per five-department case (1 client)",
     lambda r: _get(r, "figures", "cycle_5_departments_1_clients", "sql_transactions_per_case"), -1),
    ("status reads / bare request rate (10 clients)",
     lambda r: _get(r, "figures", "reads_10_clients", "ratio_status_to_bare_rate"), 1),
    ("guide reads / bare request rate (10 clients)",
     lambda r: _get(r, "figures", "reads_10_clients", "ratio_guide_to_bare_rate"), 1),
    ("submit: highest sustained rate /s", lambda r: _get(r, "figures", "submit_highest_sustained_rate", "per_second"), 1),
    ("submit: p50 ms at 5/s", lambda r: _submit_p50_at(r, 5), -1),
    ("submit: p50 at 5/s ÷ (H + C), floors back to back", lambda r: _ratio_h_c(r), -1),
    ("floor H paced at 5/s: p50 ms", lambda r: _get(r, "floors", "H_fastapi_request_at_5_per_second", "p50_ms"), 0),
    ("floor C paced at 5/s: p50 ms", lambda r: _get(r, "floors", "C_commit_postgresql_at_5_per_second", "p50_ms"), 0),
    ("submit: p50 at 5/s ÷ (H + C), floors paced at 5/s alike",
     lambda r: _get(r, "figures", "submit_at_5_per_second", "ratio_p50_to_H_plus_C_paced_alike"), -1),
    ("platform CPU ms per case, 1 client, no open cases",
     lambda r: _get(r, "figures", "cycle_5_departments_1_clients", "platform_cpu_ms_per_case"), -1),
    ("platform CPU ms per case, 1 client, ~1,000 open cases",
     lambda r: _get(r, "figures", "cycle_5_departments_1_clients_1000_open", "platform_cpu_ms_per_case"), -1),
    ("platform CPU ms per case, 1 client, 100,000 open cases",
     lambda r: _get(r, "figures", "cycle_5_departments_1_clients_100000_open", "platform_cpu_ms_per_case"), -1),
    ("idle platform CPU (cores), ~1,000 open cases, no traffic",
     lambda r: _get(r, "figures", "idle_with_open_cases", "platform_cores"), -1),
    ("idle platform CPU (cores), 100,000 open cases, no traffic",
     lambda r: _get(r, "figures", "idle_with_100000_open_cases", "platform_cores"), -1),
    ("cycle p50 ms, 10 clients, 100,000 open cases",
     lambda r: _get(r, "figures", "cycle_5_departments_10_clients_100000_open", "p50_ms"), -1),
]


def _ratio_h_c(r: dict[str, Any]) -> Any:
    p50 = _submit_p50_at(r, 5)
    h = _get(r, "floors", "H_fastapi_request", "p50_ms")
    c = _get(r, "floors", "C_commit_postgresql", "p50_ms")
    return round(p50 / (h + c), 2) if p50 and h and c else None


def _fmt(v: Any) -> str:
    return "—" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))


def comparison(base: dict[str, Any], cur: dict[str, Any]) -> str:
    ref = _get(base, "tree", "ref") or "baseline"
    commit = (_get(base, "tree", "commit") or "")[:10]
    lines = [f"## Against the baseline {ref} ({commit}), same machine, one run", "",
             f"Load average: baseline {base.get('load_average_at_start')} → {base.get('load_average_at_end')}; "
             f"this tree {cur.get('load_average_at_start')} → {cur.get('load_average_at_end')}.", "",
             "| figure | baseline | this tree | this ÷ baseline |", "|---|---|---|---|"]
    for label, read, _better in KEY_FIGURES:
        b, c = read(base), read(cur)
        ratio = round(c / b, 2) if isinstance(b, int | float) and isinstance(c, int | float) and b else None
        lines.append(f"| {label} | {_fmt(b)} | {_fmt(c)} | {_fmt(ratio)} |")
    # At 10 clients when that phase ran (`--phases smoke` has only the one-client cycle).
    phase = "cycle_5_departments_10_clients" if _get(cur, "figures", "cycle_5_departments_10_clients") \
        else "cycle_5_departments_1_clients"
    lines += ["", f"### Per process, per five-department case ({phase}): CPU ms, SQL statements, transactions",
              "", "| process | baseline CPU ms | this CPU ms | baseline statements | this statements "
              "| baseline transactions | this transactions |", "|---|---|---|---|---|---|---|"]
    bp = _get(base, "figures", phase, "per_case_by_process") or {}
    cp = _get(cur, "figures", phase, "per_case_by_process") or {}
    for name in sorted(set(bp) | set(cp)):
        b, c = bp.get(name, {}), cp.get(name, {})
        lines.append(f"| {name} | {_fmt(b.get('cpu_ms'))} | {_fmt(c.get('cpu_ms'))} | {_fmt(b.get('statements'))} "
                     f"| {_fmt(c.get('statements'))} | {_fmt(b.get('transactions'))} | {_fmt(c.get('transactions'))} |")
    return "\n".join(lines) + "\n"


def beside_peer(cur: dict[str, Any], peer: dict[str, Any]) -> str:
    s = peer.get("summary") or {}
    lines = ["## Beside the peer: Temporal, same run", ""]
    if not s:
        lines.append(f"The peer did not run: {json.dumps(peer.get('runs') or peer.get('error'))[:500]}")
        return "\n".join(lines) + "\n"
    ten = _get(cur, "figures", "cycle_5_departments_10_clients") or {}
    lines += ["| figure | Yimen | " + " | ".join(f"Temporal {k}" for k in s) + " |",
              "|---|---|" + "---|" * len(s)]
    rows = [("CPU ms per five-department case, 10 clients (platform / server + worker)",
             ten.get("platform_cpu_ms_per_case"), "cpu_ms_per_case_10_clients"),
            ("department tasks per second, best", _get(cur, "figures", "department_tasks_decided", "per_second"),
             "best_tasks_per_second"),
            ("p50 ms, 10 clients", ten.get("p50_ms"), "p50_ms_10_clients"),
            ("p99 ms, 10 clients", ten.get("p99_ms"), "p99_ms_10_clients"),
            ("cases/s, 10 clients", ten.get("cases_per_second"), "cases_per_second_10_clients"),
            ("floor H p50 ms (each harness its own)", _get(cur, "floors", "H_fastapi_request", "p50_ms"), "H_p50_ms")]
    for label, ours, key in rows:
        lines.append(f"| {label} | {_fmt(ours)} | " + " | ".join(_fmt(v.get(key)) for v in s.values()) + " |")
    lines += ["", "Targets: our platform CPU per case ≤ Temporal's (default SQLite) CPU per case; our department "
              "tasks/s > Temporal with WAL. Temporal's CPU is its dev server plus its one worker; ours is every "
              "service, their PostgreSQL backends and NATS."]
    return "\n".join(lines) + "\n"


#: `--rounds`: the peer's variant that our department tasks/s are compared with.
PEER_WAL = "activities-sqlite-wal"


def round_figures(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """One round of `--rounds` (ours, then the peer's): the figures the tasks/s target compares, with the
    machine's speed just before each side ran (`bench.floors.python_speed`), so that a round in which the shared
    host slowed down between the two shows as such."""
    wal = _get(peer, "summary", PEER_WAL) or {}
    ten = _get(ours, "figures", "cycle_5_departments_10_clients") or {}
    tasks = _get(ours, "figures", "department_tasks_decided", "per_second")
    theirs = wal.get("best_tasks_per_second")
    return {
        "ours_tasks_per_second": tasks, "peer_tasks_per_second": theirs,
        "ratio": round(tasks / theirs, 3) if isinstance(tasks, int | float) and theirs else None,
        "ours_cpu_ms_per_case_10_clients": ten.get("platform_cpu_ms_per_case"),
        "peer_cpu_ms_per_case_10_clients": wal.get("cpu_ms_per_case_10_clients"),
        "ours_python_speed_ms": _get(ours, "python_speed_ms"),
        "peer_python_speed_ms": _get(peer, "python_speed_ms", PEER_WAL),
        "peer_error": None if wal else json.dumps(peer.get("runs") or peer.get("error"))[:300],
    }


def rounds_table(rounds: list[dict[str, Any]]) -> str:
    """The rounds of `--rounds` and the median of their ratios: the figure the tasks/s target is judged by when the
    shared machine's speed drifts between one side's run and the other's."""
    lines = ["## Rounds: ours, then Temporal with WAL, alternating", "",
             "Python speed: ms of a fixed pure-Python loop just before each side ran (best of three; lower is "
             "faster), to show how the shared host drifted.", "",
             "| round | our tasks/s | Temporal WAL tasks/s | ratio | our CPU ms/case (10 clients) "
             "| Temporal WAL CPU ms/case | Python speed ours / Temporal's |", "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rounds, 1):
        lines.append(f"| {i} | {_fmt(r['ours_tasks_per_second'])} | {_fmt(r['peer_tasks_per_second'])} "
                     f"| {_fmt(r['ratio'])} | {_fmt(r['ours_cpu_ms_per_case_10_clients'])} "
                     f"| {_fmt(r['peer_cpu_ms_per_case_10_clients'])} "
                     f"| {_fmt(r['ours_python_speed_ms'])} / {_fmt(r['peer_python_speed_ms'])} |")
    ratios = sorted(r["ratio"] for r in rounds if r["ratio"] is not None)
    if ratios:
        mid = len(ratios) // 2
        median = ratios[mid] if len(ratios) % 2 else round((ratios[mid - 1] + ratios[mid]) / 2, 3)
        lines += ["", f"Median ratio of {len(ratios)} round(s): **{_fmt(median)}** (lowest {_fmt(ratios[0])}, "
                      f"highest {_fmt(ratios[-1])}); the target is > 1."]
    missing = [i for i, r in enumerate(rounds, 1) if r["ratio"] is None]
    if missing:
        lines += ["", f"No ratio in round(s) {', '.join(map(str, missing))}: "
                      + "; ".join(str(rounds[i - 1]["peer_error"]) for i in missing)]
    return "\n".join(lines) + "\n"
