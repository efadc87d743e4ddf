"""Bench only: counts every SQL statement and transaction of this process (an SQLAlchemy event hook on the
`Engine` class, so it sees every engine a service makes, of any tree — the baseline's too, which has no hook of
its own).

The harness puts this directory first on `PYTHONPATH` of the platform's processes and sets
`YIMEN_BENCH_SQL_DIR`; Python imports `sitecustomize` at start-up. Without that variable it does nothing. A
daemon thread writes the running totals to `$YIMEN_BENCH_SQL_DIR/<pid>.json` (atomically, by rename) when the
harness asks, by writing a new token to `$YIMEN_BENCH_SQL_DIR/ask`, before and after a phase: the file carries
the token it answers. (It used to write every 0.1 s whenever a count changed; under load that was a JSON dump
ten times a second in every process, a quarter of notify's samples with statement texts on, and it inflated
every process's CPU figure.) Between asks the thread only reads one file, once a second: every 50 ms, that
wakeup was the largest part of an idle process's CPU (0.002 cores each, a quarter of the platform's idle
figure). Nothing here imports the project: it must work on any commit the harness is pointed at."""

import os

_DIR = os.environ.get("YIMEN_BENCH_SQL_DIR")
#: How often the counter looks for the harness's question (bench/system.py waits up to 5 s for the answers).
ASK_POLL_SECONDS = 1.0


def _install(directory: str) -> None:
    import json
    import threading
    import time

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    counts = {"statements": 0, "transactions": 0, "commits": 0, "rollbacks": 0,
              "select": 0, "insert": 0, "update": 0, "delete": 0, "other": 0,
              # Round trips that are not statements: new connections, pool checkouts, server-side prepares
              # (a prepared-statement cache miss) and pre-pings (BEGIN; ping; ROLLBACK on asyncpg).
              "connects": 0, "checkouts": 0, "prepares": 0, "pings": 0}
    lock = threading.Lock()
    #: With YIMEN_BENCH_SQL_TEXTS=1, also how often each statement text ran (to find what to cut).
    texts: dict[str, int] | None = {} if os.environ.get("YIMEN_BENCH_SQL_TEXTS") == "1" else None

    def on_statement(_conn, _cursor, statement, _params, _context, _executemany) -> None:  # noqa: ANN001
        word = statement.lstrip().split(None, 1)[0].lower() if statement.strip() else "other"
        if word == "with":  # a CTE: count it by what it does after the WITH
            low = statement.lower()
            word = next((w for w in ("insert", "update", "delete") if f"{w} " in low), "select")
        kind = word if word in ("select", "insert", "update", "delete") else "other"
        with lock:
            counts["statements"] += 1
            counts[kind] += 1
            if texts is not None:
                key = " ".join(statement.split())[:160]
                texts[key] = texts.get(key, 0) + 1

    def on_begin(_conn) -> None:  # noqa: ANN001
        with lock:
            counts["transactions"] += 1

    def on_commit(_conn) -> None:  # noqa: ANN001
        with lock:
            counts["commits"] += 1

    def on_rollback(_conn) -> None:  # noqa: ANN001
        with lock:
            counts["rollbacks"] += 1

    def bump(key: str) -> None:
        with lock:
            counts[key] += 1

    from sqlalchemy.pool import Pool

    event.listen(Pool, "connect", lambda *_a: bump("connects"))
    event.listen(Pool, "checkout", lambda *_a: bump("checkouts"))
    try:  # PostgreSQL only, and only where the driver is installed
        import asyncpg.connection
        from sqlalchemy.dialects.postgresql import asyncpg as sa_asyncpg

        prepare = asyncpg.connection.Connection.prepare

        async def counted_prepare(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
            bump("prepares")
            return await prepare(self, *a, **kw)

        asyncpg.connection.Connection.prepare = counted_prepare
        adapted = getattr(sa_asyncpg, "AsyncAdapt_asyncpg_connection", None)
        if adapted is not None and hasattr(adapted, "_async_ping"):
            ping = adapted._async_ping

            async def counted_ping(self):  # noqa: ANN001, ANN202
                bump("pings")
                return await ping(self)

            adapted._async_ping = counted_ping
    except ImportError:
        pass

    # The garbage collector's own CPU time (the collecting thread's, so a preempted collection counts no more), how
    # many collections and full ones ran. No lock: a collection may start while this thread holds `lock`.
    import gc

    counts.update(gc_collections=0, gc_full=0, gc_us=0)
    gc_started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started[0] = time.thread_time()
            return
        counts["gc_us"] += int((time.thread_time() - gc_started[0]) * 1e6)
        counts["gc_collections"] += 1
        if info.get("generation") == 2:
            counts["gc_full"] += 1

    gc.callbacks.append(on_gc)

    event.listen(Engine, "before_cursor_execute", on_statement)
    event.listen(Engine, "begin", on_begin)
    event.listen(Engine, "commit", on_commit)
    event.listen(Engine, "rollback", on_rollback)

    path = os.path.join(directory, f"{os.getpid()}.json")

    ask = os.path.join(directory, "ask")

    def writer() -> None:
        answered = None
        while True:
            try:
                with open(ask) as f:
                    token = f.read().strip()
            except OSError:
                token = ""
            if token != answered:
                with lock:
                    snapshot: dict = dict(counts)
                    if texts is not None:
                        snapshot["texts"] = dict(texts)
                snapshot["answers"] = token
                tmp = path + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(snapshot, f)
                os.replace(tmp, path)
                answered = token
            time.sleep(ASK_POLL_SECONDS)

    threading.Thread(target=writer, name="bench-sql-counter", daemon=True).start()


if _DIR:
    try:
        _install(_DIR)
    except ImportError:  # a process without SQLAlchemy (none of ours, but harmless)
        pass
