"""The email outbox against the real PostgreSQL and Mailpit: two senders, no duplicates,
and a message that could not be sent is retried later, not lost."""

import asyncio
import socket
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from flashbid_auth.emails import Mailer, deliver_pending, enqueue
from flashbid_auth.settings import Settings
from flashbid_auth.store import outbox

pytestmark = pytest.mark.stack


def mailer(profile, port: int | None = None) -> Mailer:
    settings = Settings(
        database_url="unused", smtp_host="127.0.0.1", smtp_port=port or profile.ports["smtp"]
    )
    return Mailer(settings)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def enqueue_codes(engine, addresses: list[str]) -> None:
    async with engine.begin() as connection:
        for address in addresses:
            data = {"display_name": "Test", "code": "123456"}
            await enqueue(connection, address, "verify_email", data)


def test_two_senders_deliver_every_message_exactly_once(profile, scratch_database, inbox) -> None:
    url = scratch_database("auth")
    addresses = [f"outbox-{uuid.uuid4().hex[:10]}@example.com" for _ in range(12)]

    async def run() -> None:
        engines = [create_async_engine(url) for _ in range(2)]
        await enqueue_codes(engines[0], addresses)

        async def sender(engine) -> None:
            while await deliver_pending(engine, mailer(profile), batch=3):
                pass

        await asyncio.gather(*(sender(engine) for engine in engines))
        async with engines[0].connect() as connection:
            unsent = await connection.scalar(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            )
        for engine in engines:
            await engine.dispose()
        assert unsent == 0

    asyncio.run(run())
    for address in addresses:
        assert "Your Flashbid verification code is 123456" in inbox.wait_for(address, "code")
        assert len(inbox.messages(address)) == 1


def test_a_failed_send_is_retried_later_and_then_delivered(
    profile, scratch_database, inbox
) -> None:
    url = scratch_database("auth")
    address = f"retry-{uuid.uuid4().hex[:10]}@example.com"

    async def run() -> None:
        engine = create_async_engine(url)
        await enqueue_codes(engine, [address])
        assert await deliver_pending(engine, mailer(profile, closed_port())) == 1
        async with engine.connect() as connection:
            row = (await connection.execute(sa.select(outbox))).one()
        assert row.sent_at is None and row.attempts == 1 and row.last_error
        assert row.next_attempt_at > row.created_at

        # not due yet: the next round leaves it alone even though SMTP works again
        assert await deliver_pending(engine, mailer(profile)) == 0
        async with engine.begin() as connection:  # its backoff has passed
            await connection.execute(outbox.update().values(next_attempt_at=sa.func.now()))
        assert await deliver_pending(engine, mailer(profile)) == 1
        await engine.dispose()

    asyncio.run(run())
    assert "123456" in inbox.wait_for(address, "code")
    assert len(inbox.messages(address)) == 1


def test_a_message_that_fails_alone_does_not_hold_back_the_rest_of_its_batch(
    profile, scratch_database, inbox
) -> None:
    url = scratch_database("auth")
    before, after = (f"batch-{uuid.uuid4().hex[:10]}@example.com" for _ in range(2))

    async def run():
        engine = create_async_engine(url)
        await enqueue_codes(engine, [before])
        async with engine.begin() as connection:  # a template this sender no longer has
            await connection.execute(
                outbox.insert().values(to_address="gone@example.com", template="gone", data={})
            )
        await enqueue_codes(engine, [after])
        assert await deliver_pending(engine, mailer(profile)) == 3  # one batch, one connection
        async with engine.connect() as connection:
            rows = (await connection.execute(sa.select(outbox).order_by(outbox.c.id))).all()
        await engine.dispose()
        return rows

    rows = asyncio.run(run())
    assert [row.sent_at is not None for row in rows] == [True, False, True]
    assert "gone" in rows[1].last_error and rows[1].attempts == 1
    for address in (before, after):
        assert "123456" in inbox.wait_for(address, "code")
