"""What counts as the database failing (answered 503 with Retry-After, nothing changed) rather than a bug (500 with
a reference): a pool that has no connection to give, however the error reaches the handler."""

from __future__ import annotations

import asyncio
import struct

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import infrastructure_failure


def _raised_from(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise RuntimeError("while submitting") from inner
    except RuntimeError as outer:
        return outer


def test_a_pool_timeout_is_the_database_failing_alone_wrapped_or_from_concurrent_steps():
    timeout = PoolTimeout("QueuePool limit of size 10 overflow 0 reached")
    assert infrastructure_failure(timeout)
    assert infrastructure_failure(_raised_from(timeout))
    assert infrastructure_failure(ExceptionGroup("submit", [ValueError("x"), timeout]))
    assert infrastructure_failure(_raised_from(ExceptionGroup("submit", [_raised_from(timeout)])))


def test_a_bug_is_not_the_database_failing():
    assert not infrastructure_failure(ValueError("bad"))
    assert not infrastructure_failure(ExceptionGroup("submit", [ValueError("x"), KeyError("y")]))


async def _postgres_that_refuses(sqlstate: str, message: str) -> asyncio.Server:
    """A server speaking just enough of PostgreSQL's protocol to refuse a login as a restarting server does:
    SSL declined, then the startup message answered by a FATAL ErrorResponse with this SQLSTATE."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!I", await reader.readexactly(4))[0]
                code = struct.unpack("!I", (await reader.readexactly(size - 4))[:4])[0]
                if code != 80877103:  # anything but an SSLRequest is the startup message
                    break
                writer.write(b"N")
            fields = b"".join(k + v.encode() + b"\0" for k, v in
                              ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message)))
            writer.write(b"E" + struct.pack("!I", len(fields) + 5) + fields + b"\0")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


@pytest.mark.parametrize(("sqlstate", "message"), [
    ("57P03", "the database system is not yet accepting connections"),  # crash recovery after a restart
    ("57P03", "the database system is starting up"),
    ("57P01", "terminating connection due to administrator command"),  # a fast shutdown
    ("53300", "sorry, too many clients already"),
])
async def test_a_postgres_that_is_restarting_is_the_database_failing(sqlstate, message):
    """What a consumer saw while a crashed PostgreSQL replayed its WAL, through the real driver and SQLAlchemy: a
    bare `DBAPIError` around asyncpg's error, not an `OperationalError`. Counted as the event's fault, it used up
    the event's deliveries and parked good events in the dead-letter subject (`make chaos`, the restart test)."""
    server = await _postgres_that_refuses(sqlstate, message)
    port = server.sockets[0].getsockname()[1]
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/yimen")
    try:
        with pytest.raises(DBAPIError) as raised:
            async with engine.connect():
                pass
        assert message in str(raised.value)
        assert infrastructure_failure(raised.value)
    finally:
        await engine.dispose()
        server.close()
        await server.wait_closed()


def test_an_error_of_the_statement_is_not_the_database_failing():
    """A statement the server refuses (here a unique violation) is the event's or the code's, whatever wraps it."""
    from asyncpg.exceptions import UniqueViolationError
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

    adapted = AsyncAdapt_asyncpg_dbapi.IntegrityError("duplicate key", UniqueViolationError("duplicate key"))
    assert adapted.sqlstate == "23505"
    assert not infrastructure_failure(_raised_from(adapted))
