"""Database plumbing: one async engine per service, a naming convention for stable migrations, and a
transaction per request or per event handled (the caller's `async with` commits or rolls back)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from sqlalchemy import CursorResult, MetaData, Result, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.util import greenlet_spawn

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


class Database:
    """The engine and session factory of one service, and the signal that wakes its outbox relay."""

    def __init__(
        self, url: str, *, info: dict[str, Any] | None = None, echo: bool = False, pool_size: int = 10,
        max_overflow: int = 0,
    ) -> None:
        self.url = url
        # No `pool_pre_ping`: on asyncpg it is BEGIN, a ping and ROLLBACK, three round trips on every checkout
        # (about 270 per five-department case, more than the statements themselves). `_drop_closed` below
        # catches a connection the server closed without a round trip.
        kwargs: dict[str, Any] = {"echo": echo}
        if is_sqlite(url):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # Six services (and their replicas) share one server's max_connections (100 by default): a small
            # pool each, and more replicas rather than bigger pools. No overflow by default: an overflow
            # connection is closed when it is handed back, so a burst above the pool paid a new connection
            # (TLS attempt, start-up, type introspection) and re-prepared every statement on it.
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=10,
                          # Recycled now and then so that a server-side idle limit never meets a stale one.
                          pool_recycle=1800,
                          # A service runs a few hundred distinct statements; asyncpg prepares each once per
                          # connection and SQLAlchemy keeps them in this LRU (100 by default, which a
                          # service's statement set overflows, so it re-prepared in a loop).
                          connect_args={"prepared_statement_cache_size": 500})
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._kwargs = kwargs
        self._apart: AsyncEngine | None = None
        if not is_sqlite(url):
            event.listen(self.engine.sync_engine.pool, "checkout", _drop_closed)
        if is_sqlite(url):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        #: Set after every commit that wrote events; the relay waits on it. `commit_signal()` hands out more.
        self.committed = asyncio.Event()
        self._signals: list[asyncio.Event] = [self.committed]
        self._marked: dict[str, list[asyncio.Event]] = {}
        sync_cls = type("YimenSession", (Session,), {})
        event.listen(sync_cls, "after_commit", self._after_commit)
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=sync_cls, info={**(info or {}), "database": self}
        )

    def _after_commit(self, session: Session) -> None:
        if session.info.pop("outbox_dirty", False):
            for signal in self._signals:
                signal.set()
        for mark, signals in self._marked.items():
            if session.info.pop(mark, False):
                for signal in signals:
                    signal.set()

    def commit_signal(self, mark: str | None = None) -> asyncio.Event:
        """An event set after each commit that wrote events, for a background job that should react at once
        (a webhook sender) rather than on its next poll. The job clears it before it looks for work. With
        `mark`: after each commit whose session the writer marked (`session.info[mark] = True`) instead, so that
        a job whose queue no event announces waits on its own writes rather than polling for them."""
        signal = asyncio.Event()
        if mark is None:
            self._signals.append(signal)
        else:
            self._marked.setdefault(mark, []).append(signal)
        return signal

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends, rolls back if it raises.

        What `async with self.sessionmaker() as session, session.begin()` does, in one trip into the greenlet
        instead of three and without a task: every service transaction pays this (bench/session_cpu.py). The
        transaction is begun and entered as a context in the caller's task (no I/O: the connection is taken by the
        first statement), so using the session after a `rollback()` inside the block still raises as before; its
        exit (commit or rollback, the session's hooks in it) is the one greenlet. Closing a session whose
        transaction has ended only forgets its objects, done in place; one whose commit or rollback failed still
        holds a connection and is closed as `AsyncSession`'s own exit closes it (to completion if cancelled)."""
        session = self.sessionmaker()
        sync = session.sync_session
        trans = sync.begin()
        trans.__enter__()
        try:
            try:
                yield session
            except BaseException as exc:
                await greenlet_spawn(trans.__exit__, type(exc), exc, exc.__traceback__)
                raise
            await greenlet_spawn(trans.__exit__, None, None, None)
        finally:
            if sync.in_transaction():
                await session.__aexit__(None, None, None)
            else:
                sync.close()

    @asynccontextmanager
    async def apart(self) -> AsyncIterator[AsyncConnection | None]:
        """A connection of its own in autocommit, from a small pool of its own: each statement on it is a
        transaction of its own, committed at once whatever becomes of the caller's, for a write that every caller
        would otherwise queue on until the others commit (a counter row). One round trip, no BEGIN and COMMIT;
        its own pool, so a caller holding one of the main pool's connections never waits for another from it.

        Its commits do not wait for the WAL to reach the disk (`synchronous_commit=off`): what the caller then
        commits (synchronously, later) flushes the WAL up to its own commit, which takes every earlier commit
        with it. So a write apart is lost in a crash only with the caller's own transaction: use it only for a
        write whose loss is then harmless (a serial no committed row uses). None on SQLite, whose one writer is
        the caller's transaction itself (a second connection would wait for it): the caller then writes in its
        own transaction."""
        if is_sqlite(self.url):
            yield None
            return
        if self._apart is None:
            args = {**self._kwargs.get("connect_args", {}), "server_settings": {"synchronous_commit": "off"}}
            self._apart = create_async_engine(self.url, **{**self._kwargs, "pool_size": 2, "max_overflow": 0,
                                                           "isolation_level": "AUTOCOMMIT", "connect_args": args})
            event.listen(self._apart.sync_engine.pool, "checkout", _drop_closed)
        async with self._apart.connect() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._apart is not None:
            await self._apart.dispose()


def _drop_closed(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """A pessimistic disconnect check that costs no round trip: asyncpg notices at once when the server closes a
    connection (a restart, `pg_terminate_backend`, an idle timeout), so a closed one is refused at checkout and
    the pool hands out a fresh one instead (SQLAlchemy retries the checkout on `DisconnectionError`). A
    connection that breaks silently (a network partition) fails its first statement instead, which invalidates
    the pool's older connections too; callers already treat that as a retryable infrastructure failure. Runs on
    every checkout: nothing in it may cost more than the check (an import here was a lookup per transaction)."""
    driver = getattr(dbapi_conn, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this connection")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers proceed while the relay or a request writes; busy_timeout queues writers instead of
    # failing them at once.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.transaction() as session:
        session.info["request"] = request
        yield session


#: The request's unit of work. `scope="function"` commits before the response is sent, so a client never
#: sees a success whose commit later failed.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


#: SQLSTATEs of a server that is there but cannot serve now: admin_shutdown, crash_shutdown, cannot_connect_now,
#: too_many_connections.
_SERVER_UNAVAILABLE = frozenset({"57P01", "57P02", "57P03", "53300"})


def infrastructure_failure(exc: BaseException) -> bool:
    """The database (or the network to it) failed, not the event: a connection refused, dropped or invalidated."""
    from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    seen: BaseException | None = exc
    for _ in range(5):  # the driver's error is often wrapped by SQLAlchemy's
        if seen is None:
            break
        if isinstance(seen, BaseExceptionGroup):  # from concurrent steps (a TaskGroup): one failing is enough
            return any(infrastructure_failure(e) for e in seen.exceptions)
        if isinstance(seen, OSError | DisconnectionError | InterfaceError | OperationalError | PoolTimeout):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if type(seen).__module__.startswith("asyncpg") and "Connection" in type(seen).__name__:
            return True
        # The server itself says it cannot serve now (asyncpg's error and SQLAlchemy's adapter of it carry the
        # SQLSTATE, wrapped in a bare DBAPIError): class 08, or shutting down / still recovering after a crash
        # ("the database system is not yet accepting connections"), or out of connection slots.
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str) and (state.startswith("08") or state in _SERVER_UNAVAILABLE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def dialect_of(session: AsyncSession) -> str:
    """`postgresql` or `sqlite`: the dialect the session talks to (SQLite when it is not bound yet)."""
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def affected(result: Result[Any]) -> int:
    """The rows an INSERT/UPDATE/DELETE touched (its result is a cursor result; the async API types it as
    the general `Result`)."""
    return cast(CursorResult[Any], result).rowcount or 0
